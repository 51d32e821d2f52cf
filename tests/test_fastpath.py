"""The honesty test of the fast numeric path: it must compute what the textbook path computes.

fastpath.FusedDecoder fuses the weights and lays them out for speed (plain, oneDNN-packed or split per
core; layout_probe.py picks); the arithmetic stays float32, so logits may differ only by summation
order (measured 7e-5) and greedy tokens must not change.
"""

import pytest
import torch
import torch.nn.functional as F
from test_transformer import tiny_model

from prediction_machine.engine import fastpath, layout_probe
from prediction_machine.engine.layout_probe import Choice
from prediction_machine.inference.generation import generate
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.model.transformer import KVCache

PROMPTS = ["What is the capital of France?", "Write a haiku about rain.", "2 + 2 ="]
LOGIT_BOUND = 1e-3  # measured ~5e-5 on SmolLM2; logits themselves are O(10)


@pytest.fixture(scope="module")
def reference_and_fused(lm):
    """The session model's textbook path, and a fused engine built on it (its layouts set by each test)."""
    ref = lm.model
    fused = fastpath.FusedDecoder(lm.model)
    return ref, fused


def test_fused_matches_reference_on_tiny_model_with_cache_and_batch_rows():
    ref = tiny_model(3)
    fused = fastpath.FusedDecoder(ref)
    idx = torch.randint(0, 1024, (2, 11))
    with torch.no_grad():
        a, _ = ref(idx)
        b, _ = fused(idx)
        assert (a - b).abs().max() < 1e-4
        # Two rows at different lengths in one cache, then one decode step for both.
        caches = [KVCache(ref.cfg, 2, 16), KVCache(ref.cfg, 2, 16)]
        for c, engine in zip(caches, (ref, fused), strict=True):
            engine(idx[:, :6], cache=c)
            c.lengths[1] = 4  # row 1 is shorter: its positions 4.. are overwritten or masked
        a, _ = ref(idx[:, 6:7], cache=caches[0])
        b, _ = fused(idx[:, 6:7], cache=caches[1])
    assert (a - b).abs().max() < 1e-4
    assert caches[1].lengths.tolist() == [7, 5]


def test_fused_logits_stay_within_bound_of_fp32_reference(lm, reference_and_fused):
    ref, fused = reference_and_fused
    worst = 0.0
    for prompt in PROMPTS:
        idx = torch.tensor([lm.prompt_ids(prompt)])
        with torch.no_grad():
            a, _ = ref(idx)  # (1, T, V) every position, not just the last
            b, _ = fused(idx)
        worst = max(worst, (a - b).abs().max().item())
    print(f"fp32-fused vs fp32: max abs logit difference {worst:.2e} over {len(PROMPTS)} prompts")
    assert worst < LOGIT_BOUND


def test_fused_greedy_tokens_match_reference(lm, reference_and_fused):
    ref, fused = reference_and_fused
    greedy = SamplingParams(temperature=0)
    total = differ = 0
    for prompt in PROMPTS:
        ids = lm.prompt_ids(prompt)
        a = [s.id for s in generate(ref, ids, greedy, 16, lm.stop_ids)]
        b = [s.id for s in generate(fused, ids, greedy, 16, lm.stop_ids)]
        total += max(len(a), len(b))
        differ += sum(x != y for x, y in zip(a, b, strict=False)) + abs(len(a) - len(b))
    print(f"fp32-fused vs fp32: {differ} of {total} greedy tokens differ")
    assert differ == 0  # same fp32 arithmetic: any change of a greedy token is a bug here


def test_a_model_loads_on_the_fused_path_and_fp32_keeps_the_textbook(lm):
    assert lm.precision == "fp32-fused" and isinstance(lm.decoder, fastpath.FusedDecoder)
    assert lm.describe()["precision"] == "fp32-fused"
    assert fastpath.decoder_for(lm.model, "fp32") is lm.model  # --precision fp32: the textbook module itself


def test_tracing_on_fused_engine_uses_textbook_path():
    ref = tiny_model(4)
    fused = fastpath.FusedDecoder(ref)
    idx = torch.randint(0, 1024, (1, 5))
    with torch.no_grad():
        logits, rec = fused(idx, record=True)
    assert rec is not None and rec.attention[0].shape == (1, 4, 5, 5)


def test_precision_is_selectable_and_described():
    from prediction_machine import cli, config

    assert (
        config.DEFAULT_PRECISION == "fp32-fused"
        and cli.PRECISIONS is fastpath.PRECISIONS is config.PRECISIONS
    )
    assert cli.build_parser().parse_args(["serve"]).precision == "fp32-fused"
    assert cli.build_parser().parse_args(["generate", "hi", "--precision", "fp32"]).precision == "fp32"
    with pytest.raises(ValueError, match="unknown precision"):
        fastpath.decoder_for(tiny_model(5), "int3")


def test_without_onednn_the_packed_layout_is_the_transposed_stack(monkeypatch):
    monkeypatch.setattr(fastpath, "ONEDNN", False)  # a PyTorch built without oneDNN
    ref = tiny_model(6)
    fused = fastpath.FusedDecoder(ref, every("packed"))
    assert not fused.unembed.onednn and "packed" not in fused.available_layouts()
    assert fused.unembed.stored["packed"].shape == (ref.cfg.d_model, ref.cfg.vocab_size)  # W.T
    idx = torch.randint(0, 1024, (2, 9))
    with torch.no_grad():
        a, _ = ref(idx)
        b, _ = fused(idx)
    assert (a - b).abs().max() < 1e-4


def every(layout: str) -> Choice:
    return Choice({r: layout for r in layout_probe.PROBE_ROWS})


@pytest.mark.parametrize("layout", fastpath.FusedDecoder(tiny_model(8)).available_layouts())
def test_every_layout_matches_the_textbook_on_a_tiny_model(layout):
    ref = tiny_model(8)
    fused = fastpath.FusedDecoder(ref, every(layout))
    idx = torch.randint(0, 1024, (3, 9))
    with torch.no_grad():
        a, _ = ref(idx)
        b, _ = fused(idx)
    assert (a - b).abs().max() < 1e-4


@pytest.mark.parametrize("rows", [1, 3, 4, 8, 32])
@pytest.mark.parametrize("layout", fastpath.FusedDecoder(tiny_model(8)).available_layouts())
def test_every_layout_decodes_within_bound_of_the_textbook(lm, reference_and_fused, layout, rows):
    """Whichever layout the probe picks on this machine, at whichever row count: one decode step's
    logits stay within the honesty bound, and the greedy tokens are the textbook's."""
    ref, fused = reference_and_fused
    fused.use(every(layout))
    idx = torch.tensor([lm.prompt_ids(PROMPTS[i % len(PROMPTS)])[:12] for i in range(rows)])  # (rows, 12)
    with torch.no_grad():
        caches = [KVCache(ref.cfg, rows, 16), KVCache(ref.cfg, rows, 16)]
        steps = []
        for c, engine in zip(caches, (ref, fused), strict=True):
            engine(idx[:, :11], cache=c)
            steps.append(engine(idx[:, 11:], cache=c, last_only=True)[0])  # (rows, 1, V)
        worst = (steps[0] - steps[1]).abs().max().item()
    assert worst < LOGIT_BOUND
    assert torch.equal(steps[0].argmax(-1), steps[1].argmax(-1))


def test_the_split_layout_reads_the_models_own_weights_and_copies_none():
    model = tiny_model(31)
    decoder = fastpath.FusedDecoder(model)
    decoder.prepare("split")
    attn, mlp = model.blocks[0].attn, model.blocks[0].mlp
    for m, weight in ((decoder.layers[0].qkv, attn.k.weight), (decoder.layers[0].gate_up, mlp.up.weight)):
        # one buffer: the stack the split layout reads is the storage the textbook module multiplies
        assert m.stored["split"].untyped_storage().data_ptr() == weight.untyped_storage().data_ptr()


def test_the_loader_reads_each_stack_into_one_buffer_and_the_decoder_copies_none(lm, tmp_path):
    """q/k/v and gate/up are read straight into one buffer each (model/stacks.py): the fused decoder's
    stacks are that buffer, so no weight is held twice, and every value is the file's."""
    from safetensors.torch import save_file

    from prediction_machine.model import stacks

    block = lm.model.blocks[0]
    layer = fastpath.FusedDecoder(lm.model).layers[0]
    for m, first in ((layer.qkv, block.attn.q.weight), (layer.gate_up, block.mlp.gate.weight)):
        assert m.stack.data_ptr() == first.data_ptr() and not m.stored  # the loader's buffer, as it is
    model = tiny_model(12)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, tmp_path / "w.safetensors")
    read = stacks.read_stacked(tmp_path / "w.safetensors")
    assert read.keys() == state.keys() and all(torch.equal(read[k], state[k]) for k in state)
    q, v = read["blocks.1.attn.q.weight"], read["blocks.1.attn.v.weight"]
    assert q.untyped_storage().data_ptr() == v.untyped_storage().data_ptr()  # one buffer per stack
    stacked = stacks.stack(state)
    assert fastpath.one_buffer([stacked[f"blocks.1.mlp.{p}.weight"] for p in ("gate", "up")]) is not None
    assert fastpath.one_buffer([state["blocks.1.mlp.gate.weight"], state["blocks.1.mlp.up.weight"]]) is None


@pytest.mark.parametrize("rows", [1, 3])
def test_the_split_product_in_two_pieces_is_the_plain_product_at_one_row_and_more(rows):
    """The split layout at two pieces (as on a 2-thread machine, whatever this one has), one row and more."""
    g = torch.Generator().manual_seed(3)
    parts = [torch.randn(6, 8, generator=g), torch.randn(4, 8, generator=g)]
    m = fastpath.Matrices(*parts)
    m.stored["split"] = m.stack.view(2, 5, 8)  # (pieces, out/pieces, in), as prepare() cuts it for 2 threads
    x = torch.randn(1, rows, 8, generator=g)  # (B, T, in)
    want = torch.cat([F.linear(x, p) for p in parts], dim=-1)  # (B, T, out)
    assert torch.allclose(m.times(x, "split"), want, atol=1e-5) and m.times(x, "plain").shape == want.shape


@pytest.mark.parametrize("rows", [1, 3])
def test_the_residual_add_made_by_the_product_and_the_one_row_norm_match_the_plain_way(rows):
    """add_times (y += x W.T by the product itself) in every layout, and rms_norm's one-row path
    (a dot product and an addcmul), against the operations they replace."""
    g = torch.Generator().manual_seed(5)
    m = fastpath.Matrices(torch.randn(6, 8, generator=g), torch.randn(4, 8, generator=g))
    m.prepare("packed")
    m.stored["split"] = m.stack.view(2, 5, 8)  # two pieces, as on a 2-thread machine
    x, y = torch.randn(1, rows, 8, generator=g), torch.randn(1, rows, 10, generator=g)
    for layout in ("plain", "packed", "split"):
        got = y.clone()
        m.add_times(got, x, layout)
        assert torch.allclose(got, y + m.times(x, layout), atol=1e-5), layout
    h, w = torch.randn(1, rows, 8, generator=g) * 30, torch.randn(8, generator=g)
    textbook = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-5) * w
    assert torch.allclose(fastpath.rms_norm(h, w, 1e-5, torch.zeros(8)), textbook, rtol=1e-6, atol=1e-6)
