"""The prefix cache: copied key/value rows must change no logit, and its memory stays bounded."""

import pytest
import torch
from test_batching import GREEDY, run_together
from test_transformer import tiny_model

from prediction_machine.engine import fastpath, prefix_cache
from prediction_machine.engine.batching import Batcher
from prediction_machine.engine.prefix_cache import BLOCK, PrefixCache
from prediction_machine.model.transformer import KVCache

QUESTIONS = ["What is the capital of France?", "Hi", "What is 2 + 2?", "Write a haiku about rain.",
             "Name three colours of the rainbow, please."]


def prefill(decoder, ids, cache=None, start=0):
    cache = cache or KVCache(decoder.cfg, 1, len(ids))
    logits, _ = decoder(torch.tensor([ids[start:]]), cache=cache, last_only=True)  # (1, 1, V)
    return logits, cache


ROUNDING = 1e-4  # keys, values and logits are O(1-10); float32 rounding of a 576-wide sum is ~1e-6 of that


@pytest.mark.parametrize("path", ["fp32", "fp32-fused"])
def test_copied_prefix_gives_the_same_logits_on_smollm(lm, path):
    """Copied rows are rows the model computed while reading another prompt with the same start.
    Reading this prompt whole computes them again, in products of another row count: some math
    kernels sum a row alike whatever the row count (this AMD EPYC's, for both paths), others
    do not (the textbook path on an Intel Xeon differed by 3e-5), and the fused decoder may pick
    another weight layout for another row count (layout_probe.py). So rows and logits agree to
    float rounding (ROUNDING), and the next token exactly."""
    decoder = lm.model if path == "fp32" else fastpath.FusedDecoder(lm.model)
    a = lm.prompt_ids(QUESTIONS[0])
    cache = PrefixCache()
    with torch.inference_mode():
        _, ca = prefill(decoder, a)
        cache.store(a, ca, 0)
        for q in QUESTIONS[1:]:
            b = lm.prompt_ids(q)
            entry, n = cache.lookup(b)
            assert (
                n >= BLOCK and n % BLOCK == 0 and b[:n] == a[:n]
            )  # the shared system prompt, in whole blocks
            whole, read = prefill(decoder, b)
            cb = KVCache(decoder.cfg, 1, len(b))
            cache.copy_into(entry, n, cb, 0)
            assert torch.equal(cb.k[0][:, :n], ca.k[0][:, :n])  # a copy is a copy: the very bits stored
            with_cache, cb = prefill(decoder, b, cb, start=n)  # only the tokens after the prefix are read
            assert cb.lengths.tolist() == [len(b)]
            for layer in range(decoder.cfg.n_layers):
                assert torch.allclose(cb.k[layer][:, :n], read.k[layer][:, :n], rtol=0, atol=ROUNDING), q
                assert torch.allclose(cb.v[layer][:, :n], read.v[layer][:, :n], rtol=0, atol=ROUNDING), q
            assert torch.allclose(with_cache, whole, rtol=0, atol=ROUNDING), q
            assert with_cache.argmax() == whole.argmax()


def test_batcher_with_and_without_the_prefix_cache_gives_the_same_steps():
    """Through the batcher, on the tiny model. Its 128-wide matrices are where the math library's
    kernels round differently for different row counts (SmolLM's 576-wide ones, above, do not),
    so here the logits agree to float precision and the tokens exactly."""
    model = tiny_model(31)
    shared = list(range(100, 140))  # a 40-token "system prompt"
    prompts = [shared + [7, 8, 9], shared + [3], shared + [7, 8, 9]]
    with_cache, without = Batcher(model), Batcher(model, prefix_bytes=0)
    got = [
        run_together(with_cache, [(p, GREEDY, 6, set(), None, 5)])[0] for p in prompts
    ]  # one after another
    want = [run_together(without, [(p, GREEDY, 6, set(), None, 5)])[0] for p in prompts]
    # 32 = 4 whole blocks of the shared 40: at least one block of each prompt is read by the model
    assert with_cache.prefixes.hits == 2 and with_cache.prefixes.reused == 32 + 32
    for g, w in zip(got, want, strict=True):
        assert [s.id for s in g] == [s.id for s in w]
        for a, b in zip(g, w, strict=True):
            assert [r.id for r in a.prediction.rows] == [r.id for r in b.prediction.rows]
            assert [r.logit for r in a.prediction.rows] == pytest.approx(
                [r.logit for r in b.prediction.rows], abs=1e-5
            )
        assert [s.cached for s in g] == [s.cached for s in w]


def test_memory_is_bounded_and_the_least_recently_used_goes_first():
    model = tiny_model(32)
    per_position = model.cfg.n_layers * 2 * model.cfg.n_kv_heads * model.cfg.head_dim * 4
    cache = PrefixCache(max_bytes=40 * per_position)  # room for 40 positions
    prompts = [[i] * 25 for i in range(1, 4)]  # each keeps 3 blocks = 24 positions
    with torch.inference_mode():
        for p in prompts[:2]:
            _, kv = prefill(model, p)
            cache.store(p, kv, 0)
    assert cache.bytes <= cache.max_bytes
    assert cache.lookup(prompts[0])[1] == 0  # evicted: the second prompt did not fit beside it
    assert cache.lookup(prompts[1] + [0] * BLOCK)[1] == 24


def test_a_hash_collision_never_shares_rows(monkeypatch):
    monkeypatch.setattr(prefix_cache, "block_keys", lambda ids, n: list(range(n)))  # every prompt collides
    model = tiny_model(33)
    cache = PrefixCache()
    a, b = [1] * 20, [2] * 20
    with torch.inference_mode():
        _, kv = prefill(model, a)
        cache.store(a, kv, 0)
    assert cache.lookup(a)[1] == 8  # 20 tokens: 2 blocks held, one of them left to compute
    assert cache.lookup(b) == (None, 0)  # the tokens are compared, not just the hashes
