"""The "what if" experiments that take the model apart: ablation, head scan, attribution, patching.

Each is checked against a second computation: ablation against transformers' own Llama with
the head zeroed through a PyTorch hook on the same weights, the head scan against single
ablations, attribution against the logit it splits, patching against the plain runs it mixes.
"""

from pathlib import Path

import pytest
import torch

from prediction_machine.experiments import ablation, attribution, head_scan, patching, readout
from prediction_machine.model import models

PROMPT = "ROMEO:\nWhat say you to"


@pytest.fixture(scope="module")
def tiny():
    return models.load("shakespeare-base", probe_layouts=False)


# ----------------------------------------------------------------------------- ablation


@pytest.fixture(scope="module")
def hf_pair(tmp_path_factory, tiny):
    """A small random Llama saved by transformers, and the same folder loaded by our loader."""
    transformers = pytest.importorskip("transformers")
    folder: Path = tmp_path_factory.mktemp("hf-llama")
    cfg = transformers.LlamaConfig(
        vocab_size=tiny.config.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, rope_theta=10000.0,
        rms_norm_eps=1e-5, tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    ref = transformers.LlamaForCausalLM(cfg).eval()
    ref.save_pretrained(folder, safe_serialization=True)
    (folder / "tokenizer.json").write_text(tiny.tokenizer.json)
    return ref, models.load(str(folder), probe_layouts=False)


def reference_probs(ref, ids: list[int], part: ablation.Part) -> torch.Tensor:
    """transformers' own forward pass with the part zeroed by a hook on its modules."""
    layer = ref.model.layers[part.layer]
    hd = ref.config.hidden_size // ref.config.num_attention_heads

    def zero_head(module, args):
        (x,) = args  # (B, T, H*hd): the heads, side by side, before o_proj mixes them
        x = x.clone()
        if part.kind == "head":
            x[..., part.head * hd : (part.head + 1) * hd] = 0
        else:
            x.zero_()
        return (x,)

    if part.kind == "mlp":
        handle = layer.mlp.register_forward_hook(lambda m, a, out: torch.zeros_like(out))
    else:
        handle = layer.self_attn.o_proj.register_forward_pre_hook(zero_head)
    try:
        with torch.no_grad():
            return ref(torch.tensor([ids])).logits[0, -1].softmax(-1)  # (V,)
    finally:
        handle.remove()


@pytest.mark.parametrize("part", [ablation.Part("head", 1, 2), ablation.Part("head", 0, 0),
                                  ablation.Part("layer_attn", 2), ablation.Part("mlp", 0)])
def test_ablation_equals_transformers_with_the_part_zeroed_by_a_hook(hf_pair, part):
    ref, ours = hf_pair
    ids = readout.prompt_ids(ours, PROMPT, raw=True)
    result = ablation.ablate(ours, ids, part, top=ours.config.vocab_size)
    after = torch.zeros(ours.config.vocab_size)
    for row in result.after:
        after[row["id"]] = row["model_prob"]
    theirs = reference_probs(ref, ids, part)
    assert (after - theirs).abs().max().item() < 1e-4
    assert result.method == "zero" and result.to_json()["method"] == "zero"
    # The change is real: switching the part off moved the distribution.
    before = torch.tensor([r["model_prob"] for r in sorted(result.before, key=lambda r: r["id"])])
    assert (before - after).abs().max().item() > 1e-4


def test_a_part_outside_the_model_is_refused_with_its_limit(tiny):
    cfg = tiny.config
    with pytest.raises(ValueError, match=f"layer must be in 0..{cfg.n_layers - 1}"):
        ablation.ablate(tiny, PROMPT, ablation.Part("mlp", cfg.n_layers), raw=True)
    with pytest.raises(ValueError, match=f"head must be in 0..{cfg.n_heads - 1}"):
        ablation.Part("head", 0, cfg.n_heads).check(cfg)
    with pytest.raises(ValueError, match="empty"):
        ablation.ablate(tiny, "", ablation.Part("mlp", 0), raw=True)
    assert ablation.parse_head("3.5") == (3, 5)
    with pytest.raises(ValueError, match="LAYER.HEAD"):
        ablation.parse_head("3")


# ----------------------------------------------------------------------------- head scan


def test_the_scans_cell_for_each_head_is_that_heads_single_ablation(tiny):
    seen = []
    scan = head_scan.head_scan(tiny, PROMPT, raw=True, progress=lambda d, t: seen.append((d, t)))
    L, H = tiny.config.n_layers, tiny.config.n_heads
    assert seen == [(n, L) for n in range(1, L + 1)]
    assert len(scan.prob_after) == L and all(len(row) == H for row in scan.prob_after)
    for layer in range(L):
        for head in range(H):
            one = ablation.ablate(tiny, PROMPT, ablation.Part("head", layer, head), raw=True)
            assert one.target == scan.target and one.target_prob[0] == pytest.approx(scan.base_prob, abs=1e-6)
            assert scan.prob_after[layer][head] == pytest.approx(one.target_prob[1], abs=1e-5)
    assert max(abs(d) for row in scan.drop for d in row) > 0.01  # some head matters for this token


def test_a_cancelled_scan_stops_after_the_batch_it_is_in(tiny):
    done = []
    with pytest.raises(InterruptedError):
        head_scan.head_scan(tiny, PROMPT, raw=True, progress=lambda d, t: done.append(d),
                            cancelled=lambda: len(done) >= 1)
    assert done == [1]


# ----------------------------------------------------------------------------- attribution


def test_attribution_parts_add_up_to_the_logit(tiny):
    for token in (None, 10):
        a = attribution.attribute(tiny, PROMPT, raw=True, token=token)
        assert abs(a.total() - a.logit) < 1e-4
        for attn, heads in zip(a.attn, a.heads, strict=True):
            assert abs(sum(heads) - attn) < 1e-4
        logits = readout.next_logits(tiny.model, readout.prompt_ids(tiny, PROMPT, raw=True))
        assert a.logit == pytest.approx(float(logits[a.token["id"]]), abs=1e-5)
        if token is None:
            assert a.token["id"] == int(logits.argmax())
        out = a.to_json()
        assert out["sum"] == a.total() and len(out["top_heads"]) == 10
        assert abs(out["top_heads"][0]["value"]) >= abs(out["top_heads"][-1]["value"])
    with pytest.raises(ValueError, match="token must be an id in 0..511"):
        attribution.attribute(tiny, PROMPT, raw=True, token=512)


# ----------------------------------------------------------------------------- patching

SOURCE, TARGET = "I will go with you, sir", "I will go with you, my"  # 7 tokens each


def test_running_on_from_a_layers_stream_is_the_plain_pass(tiny):
    ids = readout.prompt_ids(tiny, PROMPT, raw=True)
    logits, streams = readout.plain_run(tiny.model, ids)
    for layer, x in enumerate(streams):
        again = tiny.model.forward_from(x, layer, last_only=True)[0, -1]
        assert torch.allclose(again, logits, atol=1e-5)


def test_patching_everything_is_the_source_and_nothing_is_the_target(tiny):
    runs = patching.both_runs(tiny, SOURCE, TARGET, raw=True)
    T, L = len(runs.source_tokens), tiny.config.n_layers
    assert runs.source_prob - runs.target_prob > 0.05  # the prompts disagree about the answer
    for layer in range(L + 1):
        every = patching.patch(tiny, SOURCE, TARGET, layer, list(range(T)), raw=True)
        nothing = patching.patch(tiny, SOURCE, TARGET, layer, [], raw=True)
        assert every["patched_prob"] == pytest.approx(runs.source_prob, abs=1e-5)
        assert every["recovery"] == pytest.approx(1.0, abs=1e-4)
        assert nothing["patched_prob"] == pytest.approx(runs.target_prob, abs=1e-5)


def test_the_grid_cell_is_the_single_patch(tiny):
    grid = patching.patch_grid(tiny, SOURCE, TARGET, raw=True)
    T, L = len(grid.runs.source_tokens), tiny.config.n_layers
    assert len(grid.patched_prob) == L + 1 and all(len(row) == T for row in grid.patched_prob)
    for layer, position in [(0, 0), (1, 1), (L, T - 1), (2, 3)]:
        one = patching.patch(tiny, SOURCE, TARGET, layer, [position], raw=True)
        assert grid.patched_prob[layer][position] == pytest.approx(one["patched_prob"], abs=1e-5)
    # The final stream at the last position is all the answer depends on.
    assert grid.recovery()[L][T - 1] == pytest.approx(1.0, abs=1e-4)
    out = grid.to_json(tiny.tokenizer)
    assert out["layers"] == L and out["positions"] == T and out["answer"]["id"] == grid.runs.answer


def test_a_grid_or_scan_nobody_waits_for_stops_between_batches(tiny):
    from prediction_machine import cancel

    token = cancel.stop_when(lambda: True)  # what the server sets for a client that hung up
    try:
        with pytest.raises(cancel.Cancelled):
            patching.patch_grid(tiny, SOURCE, TARGET, raw=True)
        with pytest.raises(cancel.Cancelled):
            head_scan.head_scan(tiny, PROMPT, raw=True)
    finally:
        cancel.reset(token)


def test_prompts_of_different_lengths_are_refused_with_both_tokenizations(tiny):
    with pytest.raises(patching.Misaligned) as e:
        patching.patch_grid(tiny, "My lord, I", "My lady, I", raw=True)
    message = str(e.value)
    assert "source is 6 tokens and the target 7" in message
    assert '" l", "ord"' in message and '" l", "ad", "y"' in message and "\n" not in message
    assert len(e.value.source) == 6 and len(e.value.target) == 7
    with pytest.raises(ValueError, match="position must be in 0..6"):
        patching.patch(tiny, SOURCE, TARGET, 0, [7], raw=True)
    with pytest.raises(ValueError, match="layer must be in 0..4"):
        patching.patch(tiny, SOURCE, TARGET, 5, [0], raw=True)


# ----------------------------------------------------------------------------- the CLI contracts


def test_cli_contracts_and_usage_errors(tiny, capsys):
    import json

    from prediction_machine.cli import main

    M = ["--model", "shakespeare-base", "--raw"]
    assert main(["ablate", *M, "--head", "1.2", "--json", "--", PROMPT]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "zero" and out["part"] == {"kind": "head", "layer": 1, "head": 2}
    for table in (out["before"]["top"], out["after"]["top"]):
        assert len(table) >= 5 and set(table[0]) == {"id", "token", "model_prob"}
        assert [r["model_prob"] for r in table] == sorted((r["model_prob"] for r in table), reverse=True)
    assert main(["attribute", *M, "--json", "--", PROMPT]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"token", "logit", "embed", "layers", "sum"} <= set(out) and abs(out["sum"] - out["logit"]) < 1e-4
    assert set(out["layers"][0]) == {"layer", "attn", "mlp", "heads"} and len(out["layers"][0]["heads"]) == 4
    assert main(["patch", *M, "--source", SOURCE, "--target", TARGET, "--layer", "4", "--position", "6",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recovery"] == pytest.approx(1.0, abs=1e-4)
    assert main(["scan", *M, "--json", "--", PROMPT]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["layers"] == 4 and "layer 4/4" in captured.err
    for argv, message in [
        (["ablate", *M, "--head", "4.0", "--", PROMPT], "layer must be in 0..3, got 4"),
        (["ablate", *M, "--mlp", "0", "--", ""], "the prompt is empty"),
        (["attribute", *M, "--", "x" * 129], "the prompt is 129 tokens; the model's context is 128"),
        (["patch", *M, "--source", "My lord, I", "--target", "My lady, I"], "the source is 6 tokens"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


# ----------------------------------------------------------------------------- on SmolLM2 itself


def test_on_smollm2_attribution_adds_up_and_a_full_patch_is_the_source(lm):
    prompt = "When Mary and John went to the store, John gave a drink to"
    a = attribution.attribute(lm, prompt, raw=True)
    assert a.token["token"] == " Mary" and abs(a.total() - a.logit) < 1e-4
    assert all(abs(sum(h) - attn) < 1e-4 for h, attn in zip(a.heads, a.attn, strict=True))
    source, target = "The Eiffel Tower is in the city of", "The Colosseum is in the city of"
    every = patching.patch(lm, source, target, 15, list(range(9)), raw=True)
    assert every["answer"]["token"] == " Paris"
    assert every["patched_prob"] == pytest.approx(every["source_prob"], abs=1e-5)
