"""The single stream's step (engine/one_row.py) against the fused decoder's general path: the same bits.

The step writes into buffers made once; it must compute exactly what FusedDecoder.forward computes
at one row in the split and the plain layouts, keep the KV cache the same, fall back when the
layout changes under it, and keep threads apart.
"""

import threading

import pytest
import torch
from test_transformer import tiny_model

from prediction_machine.engine import fastpath, layout_probe, one_row
from prediction_machine.engine.layout_probe import Choice
from prediction_machine.inference.generation import generate
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.model.transformer import KVCache


def everywhere(layout: str) -> Choice:
    return Choice({r: layout for r in layout_probe.PROBE_ROWS})


def general_only(decoder: fastpath.FusedDecoder):
    """The same decoder's general path: a view of it whose one-row step is switched off."""
    class General:
        cfg = decoder.cfg

        def __call__(self, idx, cache=None, record=False, last_only=False):
            with torch.inference_mode():
                saved, decoder.one_row_step = decoder.one_row_step, lambda layout="split": None
                try:
                    return decoder.forward(idx, cache, last_only), None
                finally:
                    decoder.one_row_step = saved
    return General()


def counting_steps(monkeypatch) -> list[int]:
    """Counts the one-row step's calls that returned logits, so a test knows the step really ran."""
    calls, call = [], one_row.OneRowStep.__call__

    def counted(self, idx, cache):
        out = call(self, idx, cache)
        calls.append(out is not None)
        return out
    monkeypatch.setattr(one_row.OneRowStep, "__call__", counted)
    return calls


def decode(engine, cfg, prompt: list[int], steps: int):
    """Greedy decode by hand: each step's logits (1, 1, V) and the cache at the end."""
    cache, out = KVCache(cfg, 1, len(prompt) + steps + 1), []
    with torch.inference_mode():
        logits, _ = engine(torch.tensor([prompt]), cache=cache, last_only=True)
        for _ in range(steps):
            token = int(logits[0, -1].argmax())
            logits, _ = engine(torch.tensor([[token]]), cache=cache, last_only=True)
            out.append(logits.clone())
    return out, cache


@pytest.mark.parametrize("layout", one_row.STEP_LAYOUTS)
def test_the_one_row_step_gives_the_general_paths_bits_on_smollm2(lm, monkeypatch, layout):
    fused = fastpath.FusedDecoder(lm.model, everywhere(layout))
    calls = counting_steps(monkeypatch)
    prompt = lm.prompt_ids("What is the capital of France?")
    fast, fast_cache = decode(fused, fused.cfg, prompt, 6)
    slow, slow_cache = decode(general_only(fused), fused.cfg, prompt, 6)
    assert calls == [True] * 6  # every decode step went through the one-row step; the prompt did not
    for a, b in zip(fast, slow, strict=True):
        assert a.shape == (1, 1, fused.cfg.vocab_size) and torch.equal(a, b)
    assert torch.equal(fast_cache.lengths, slow_cache.lengths)
    for layer in range(fused.cfg.n_layers):
        assert torch.equal(fast_cache.k[layer], slow_cache.k[layer])
        assert torch.equal(fast_cache.v[layer], slow_cache.v[layer])


def test_generation_through_the_step_stays_within_the_bound_of_the_textbook_model(lm):
    fused = fastpath.FusedDecoder(lm.model, everywhere("split"))
    prompt = lm.prompt_ids("Write a haiku about rain.")
    greedy = SamplingParams(temperature=0)
    ours = list(generate(fused, prompt, greedy, 12, top_n=0))
    textbook = list(generate(lm.model, prompt, greedy, 12, top_n=0))
    assert [s.id for s in ours] == [s.id for s in textbook]
    assert max(abs(a.model_prob - b.model_prob) for a, b in zip(ours, textbook, strict=True)) < 1e-4


def test_the_step_is_used_for_split_and_plain_at_one_row_and_never_for_packed_or_more_rows(monkeypatch):
    model = tiny_model(3)
    calls = counting_steps(monkeypatch)
    fused = fastpath.FusedDecoder(model, everywhere("packed"))
    decode(fused, fused.cfg, [5, 6, 7], 2)
    assert calls == []  # packed has no product into a buffer: the general path
    for layout in one_row.STEP_LAYOUTS:
        fused = fastpath.FusedDecoder(model, everywhere(layout))
        decode(fused, fused.cfg, [5, 6, 7], 2)
        assert fused.local.step.layout == layout
    assert calls == [True, True] * 2
    calls.clear()
    fused = fastpath.FusedDecoder(model, everywhere("split"))
    cache = KVCache(fused.cfg, 2, 8)
    with torch.inference_mode():
        fused(torch.tensor([[1, 2], [3, 4]]), cache=cache)  # two rows
        fused(torch.tensor([[5], [6]]), cache=cache)
    assert calls == []


def test_a_layout_change_between_steps_falls_back_then_rebuilds_for_new_pieces(monkeypatch):
    model = tiny_model(4)
    fused = fastpath.FusedDecoder(model, everywhere("split"))
    calls = counting_steps(monkeypatch)
    want, _ = decode(general_only(fastpath.FusedDecoder(model, everywhere("split"))), fused.cfg, [9, 8, 7], 4)
    cache = KVCache(fused.cfg, 1, 8)
    before = torch.get_num_threads()
    with torch.inference_mode():
        logits, _ = fused(torch.tensor([[9, 8, 7]]), cache=cache)
        got = []
        for i in range(4):
            if i == 1:  # the split copies dropped, while the choice still says split: the general path
                for m in fused.matrices():
                    m.drop("split")
            if i == 2:  # prepared again in other pieces (a thread count changed): the buffers are remade
                torch.set_num_threads(1)
                try:
                    fused.prepare("split")
                finally:
                    torch.set_num_threads(before)
            logits, _ = fused(torch.tensor([[int(logits[0, -1].argmax())]]), cache=cache)
            got.append(logits.clone())
    assert calls == [True, True, True]  # steps 0, 2 and 3; step 1 had no split copies to read
    assert fused.local.step.pieces["qkv"] == 1
    for a, b in zip(got, want, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_threads_each_get_their_own_buffers():
    model = tiny_model(5)
    fused = fastpath.FusedDecoder(model, everywhere("split"))
    prompts = [[1, 2, 3], [40, 41], [7, 8, 9, 10]]
    alone = [decode(fused, fused.cfg, p, 20)[0] for p in prompts]
    together, start = [None] * len(prompts), threading.Barrier(len(prompts))

    def run(i):
        start.wait()
        together[i] = decode(fused, fused.cfg, prompts[i], 20)[0]
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(alone, together, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_a_step_past_the_context_is_refused_as_the_general_path_refuses_it():
    model = tiny_model(6)
    fused = fastpath.FusedDecoder(model, everywhere("split"))
    n = fused.cfg.max_seq_len
    cache = KVCache(fused.cfg, 1, n + 1)
    cache.lengths[0] = n  # every position of the context is taken
    with pytest.raises(ValueError, match=f"position {n} is beyond the context of {n}"):
        fused(torch.tensor([[1]]), cache=cache)


def test_a_switch_from_split_to_plain_mid_generation_remakes_the_step_for_plain(monkeypatch):
    model = tiny_model(6)
    fused = fastpath.FusedDecoder(model, everywhere("split"))
    want, _ = decode(general_only(fastpath.FusedDecoder(model, everywhere("plain"))), fused.cfg, [4, 5, 6], 3)
    calls = counting_steps(monkeypatch)
    cache = KVCache(fused.cfg, 1, 8)
    with torch.inference_mode():
        logits, _ = fused(torch.tensor([[4, 5, 6]]), cache=cache)
        got = []
        for i in range(3):
            if i == 1:
                fused.use(everywhere("plain"))  # what a probe finishing in the background does
            logits, _ = fused(torch.tensor([[int(logits[0, -1].argmax())]]), cache=cache)
            got.append((fused.local.step.layout, logits.clone()))
    assert calls == [True] * 3 and [lay for lay, _ in got] == ["split", "plain", "plain"]
    for (_, a), b in zip(got, want, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
