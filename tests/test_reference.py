"""Our decoder against an independent implementation: Hugging Face transformers.

1. transformers loads the very same GGUF file itself (its own loader, its own Llama code):
   the logits must agree to 1e-3.
2. A small random Llama checkpoint that transformers saves to a folder loads through our
   second loader and gives the same logits ("can I use my own model?").
"""

import json
import time
from pathlib import Path

import pytest
import torch

from prediction_machine.model import models, weights

transformers = pytest.importorskip("transformers")

PROMPTS = ["The capital of France is", "def fib(n):\n    return", "Once upon a time, 🙂 世界 12345"]


@pytest.mark.slow
def test_logits_match_transformers_on_the_same_gguf(lm):
    path = weights.smollm2_gguf_path()
    t0 = time.time()
    ref = transformers.AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, torch_dtype=torch.float32
    ).eval()
    print(f"transformers loaded the GGUF in {time.time() - t0:.1f} s")
    worst = 0.0
    for text in PROMPTS:
        ids = torch.tensor([lm.tokenizer.encode_ids(text)])
        with torch.no_grad():
            ours, _ = lm.model(ids)
            theirs = ref(ids).logits
        diff = (ours - theirs).abs().max().item()
        worst = max(worst, diff)
        assert torch.equal(ours[0, -1].argmax(), theirs[0, -1].argmax())
    print(f"max abs logit difference: {worst:.2e}")
    assert worst <= 1e-3


def test_local_hf_checkpoint_folder_loads_into_our_decoder(tmp_path: Path, lm):
    cfg = transformers.LlamaConfig(
        vocab_size=lm.config.vocab_size, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, rope_theta=5000.0,
        rms_norm_eps=1e-6, tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    ref = transformers.LlamaForCausalLM(cfg).eval()
    ref.save_pretrained(tmp_path, safe_serialization=True)
    (tmp_path / "tokenizer.json").write_text(lm.tokenizer.json)
    mine = models.load(str(tmp_path))
    assert mine.config.n_layers == 2 and mine.config.n_kv_heads == 2 and not mine.config.tie_embeddings
    ids = torch.tensor([lm.tokenizer.encode_ids("hello world, this is a test")])
    with torch.no_grad():
        diff = (mine.model(ids)[0] - ref(ids).logits).abs().max().item()
    assert diff < 1e-5, diff


def test_checkpoint_folder_errors_are_clear(tmp_path: Path):
    with pytest.raises(weights.WeightsError, match="not found"):
        models.load(str(tmp_path / "missing"))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(weights.WeightsError, match="tokenizer.json"):
        models.load(str(tmp_path))
    with pytest.raises(weights.WeightsError, match="unknown model"):
        models.load("no-such-model")
