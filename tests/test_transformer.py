"""The decoder against itself: eager vs fused attention, cache vs no cache, causal mask."""

import torch

from prediction_machine.config import PRESETS
from prediction_machine.inference.generation import generate
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.model.tracing import trace
from prediction_machine.model.transformer import KVCache, Transformer


def tiny_model(seed=0):
    torch.manual_seed(seed)
    model = Transformer(PRESETS["tiny"]).eval()
    for p in model.parameters():  # bigger weights than init, so attention is far from uniform
        p.data.normal_(0, 0.2)
    return model


def test_eager_and_fast_attention_agree_on_tiny_model():
    model = tiny_model()
    idx = torch.randint(0, 1024, (2, 17))
    with torch.no_grad():
        fast, _ = model(idx)
        eager, rec = model(idx, record=True)
    assert torch.allclose(fast, eager, atol=1e-4), (fast - eager).abs().max()
    assert rec.attention[0].shape == (2, 4, 17, 17)


def test_eager_and_fast_attention_agree_on_smollm(lm):
    idx = torch.tensor(
        [lm.tokenizer.encode_ids("The animal didn't cross the street because it was too tired.")]
    )
    with torch.no_grad():
        fast, _ = lm.model(idx)
        eager, _ = lm.model(idx, record=True)
    diff = (fast - eager).abs().max().item()
    assert diff < 1e-3, diff


def test_attention_rows_sum_to_one_and_mask_is_causal(lm):
    t = trace(lm.model, lm.tokenizer.encode_ids("One two three four five six"))
    L, H, T, S = t.attention.shape
    assert (L, H) == (30, 9) and T == S
    assert torch.allclose(t.attention.sum(-1), torch.ones(L, H, T), atol=1e-5)
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    assert t.attention[..., future].abs().max() == 0


def test_cached_prefill_and_decode_match_full_forward():
    model = tiny_model(1)
    idx = torch.randint(0, 1024, (1, 12))
    with torch.no_grad():
        full, _ = model(idx)
        cache = KVCache(model.cfg, 1, 32)
        first, _ = model(idx[:, :8], cache=cache)
        steps = [model(idx[:, i : i + 1], cache=cache)[0] for i in range(8, 12)]
    assert torch.allclose(first, full[:, :8], atol=1e-5)
    assert torch.allclose(torch.cat(steps, 1), full[:, 8:], atol=1e-5)


def test_batched_rows_of_different_lengths_match_single_rows():
    model = tiny_model(2)
    a, b = torch.randint(0, 1024, (1, 5)), torch.randint(0, 1024, (1, 9))
    with torch.no_grad():
        cache = KVCache(model.cfg, 2, 32)
        # Prefill each row on its own cache, then copy it in: rows keep their own lengths.
        for row, seq in enumerate((a, b)):
            c = KVCache(model.cfg, 1, 32)
            model(seq, cache=c)
            c.copy_row(0, cache, row)
        nxt = torch.tensor([[7], [11]])
        batched, _ = model(nxt, cache=cache)
        alone_a, _ = model(torch.cat([a, nxt[:1]], 1))
        alone_b, _ = model(torch.cat([b, nxt[1:]], 1))
    assert torch.allclose(batched[0, -1], alone_a[0, -1], atol=1e-4)
    assert torch.allclose(batched[1, -1], alone_b[0, -1], atol=1e-4)


def test_cache_head_is_a_view_and_copy_rows_grows_without_change():
    model = tiny_model(4)
    idx = torch.randint(0, 1024, (3, 6))
    with torch.no_grad():
        cache = KVCache(model.cfg, 4, 8)
        model(idx, cache=cache.head(3))  # writes rows 0..2 of the big cache, through the view
        assert cache.lengths.tolist() == [6, 6, 6, 0]
        bigger = KVCache(model.cfg, 8, 16)
        cache.copy_rows(3, bigger)
        a, _ = model(idx[:, -1:], cache=cache.head(3))
        b, _ = model(idx[:, -1:], cache=bigger.head(3))
    assert torch.equal(a, b) and bigger.lengths[:3].tolist() == [7, 7, 7]


def test_cache_and_no_cache_generate_the_same_tokens(lm):
    ids = lm.prompt_ids("Name three colours.")
    greedy = SamplingParams(temperature=0)
    with_cache = [s.id for s in generate(lm.model, ids, greedy, 12, lm.stop_ids, use_cache=True)]
    without = [s.id for s in generate(lm.model, ids, greedy, 12, lm.stop_ids, use_cache=False)]
    assert with_cache == without


def test_parameter_count_matches_config(lm):
    assert sum(p.numel() for p in lm.model.parameters()) == lm.config.num_parameters() == 134_515_008
