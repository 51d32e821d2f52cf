"""Continuous batching: decoding many requests together must give what each would get alone."""

import time

import pytest
from test_transformer import tiny_model

from prediction_machine.engine import batching
from prediction_machine.engine.batching import Batcher
from prediction_machine.inference.generation import generate
from prediction_machine.inference.sampling import SamplingParams

GREEDY = SamplingParams(temperature=0)


def ids_of(steps):
    return [s.id for s in steps]


def run_together(batcher, jobs):
    """Submit every job first, then drain them: they decode in the same batch.

    Holding the batcher's condition (a re-entrant lock) while submitting keeps its loop from
    starting the first request before the last has arrived, on however busy a machine."""
    with batcher.wake:
        reqs = [batcher.submit(*job) for job in jobs]
    out = []
    for r in reqs:
        steps = []
        while (item := r.out.get(timeout=60)) is not None:
            assert not isinstance(item, Exception), item
            steps.append(item)
        out.append(steps)
    return out


@pytest.mark.parametrize("grow", [64, 4])  # 4: the shared cache grows (and is copied) every few steps
def test_batched_greedy_equals_unbatched_on_tiny_model(monkeypatch, grow):
    monkeypatch.setattr(batching, "GROW", grow)
    model = tiny_model(7)
    prompts = [[5, 9, 2], [100, 200, 300, 400, 500, 600, 700], [42], list(range(20, 40))]
    batcher = Batcher(model, max_rows=8)
    together = run_together(batcher, [(p, GREEDY, 12 + i) for i, p in enumerate(prompts)])
    assert batcher.steps_run >= 11  # they really were stepped together, not one after another
    for i, (p, steps) in enumerate(zip(prompts, together, strict=True)):
        alone = list(generate(model, p, GREEDY, 12 + i))
        assert ids_of(steps) == ids_of(alone)
        assert [s.cached for s in steps] == [s.cached for s in alone]
        assert [s.index for s in steps] == list(range(len(alone)))
        assert steps[-1].finish == alone[-1].finish == "length"
        assert [r.id for r in steps[3].prediction.rows] == [r.id for r in alone[3].prediction.rows]


def test_batched_greedy_equals_unbatched_on_smollm(lm):
    # Four rows: alone and together a row may be multiplied in different weight layouts (layout_probe.py).
    prompts = [
        lm.prompt_ids(p)
        for p in (
            "What is the capital of France?",
            "Hi",
            "Name three colours of the rainbow.",
            "Write a haiku about rain.",
        )
    ]
    together = run_together(Batcher(lm.decoder), [(p, GREEDY, 10, lm.stop_ids) for p in prompts])
    for p, steps in zip(prompts, together, strict=True):
        assert ids_of(steps) == ids_of(generate(lm.decoder, p, GREEDY, 10, lm.stop_ids))


def test_seeded_sampling_is_the_same_alone_and_in_a_batch():
    model = tiny_model(8)
    hot = SamplingParams(temperature=1.3, top_p=0.95)
    batcher = Batcher(model)
    alone = run_together(batcher, [([1, 2, 3], hot, 16, set(), 1234)])[0]
    crowd = run_together(
        batcher,
        [([9, 9], hot, 20, set(), 5), ([1, 2, 3], hot, 16, set(), 1234), ([4] * 13, hot, 8, set(), 1234)],
    )
    assert ids_of(crowd[1]) == ids_of(alone)
    assert ids_of(alone) == ids_of(generate(model, [1, 2, 3], hot, 16, set(), seed=1234))
    assert [s.draw.u for s in crowd[1]] == [s.draw.u for s in alone]
    assert (
        ids_of(crowd[2]) != ids_of(crowd[1])[:8] or ids_of(crowd[2]) == []
    )  # different prompt, different text


def test_cancel_frees_the_row_and_others_go_on():
    model = tiny_model(9)
    batcher = Batcher(model)
    long_a = batcher.submit([1, 2, 3], GREEDY, 100)
    long_b = batcher.submit([7, 8], GREEDY, 60)
    first = long_a.out.get(timeout=30)
    assert first.index == 0
    long_a.cancel()
    deadline = time.time() + 30
    while long_a in batcher.rows and time.time() < deadline:
        time.sleep(0.01)
    assert long_a not in batcher.rows
    steps = []
    while (item := long_b.out.get(timeout=30)) is not None:
        steps.append(item)
    assert len(steps) == 60 and steps[-1].finish == "length"
    while (batcher.rows or batcher.pending) and time.time() < deadline:
        time.sleep(0.01)  # the loop drops the finished row right after emitting its last step
    assert not batcher.rows and not batcher.pending and batcher.cache is None


def test_generate_iterator_stops_when_asked():
    model = tiny_model(10)
    batcher = Batcher(model)
    seen = []
    for step in batcher.generate([3, 4], GREEDY, 50, should_stop=lambda: len(seen) >= 5):
        seen.append(step)
    assert len(seen) == 5
    deadline = time.time() + 30
    while batcher.rows and time.time() < deadline:
        time.sleep(0.01)
    assert batcher.rows == []


def test_route_streams_through_the_batcher(client, lm):
    from conftest import read_sse

    r = client.post(
        "/api/generate",
        json={"prompt": "What is the capital of France?", "temperature": 0, "max_new_tokens": 8},
    )
    assert r.status_code == 200
    events = read_sse(r)
    steps = [d for e, d in events if e == "step"]
    done = [d for e, d in events if e == "done"][0]
    expect = ids_of(
        generate(lm.decoder, lm.prompt_ids("What is the capital of France?"), GREEDY, 8, lm.stop_ids)
    )
    assert done["ids"] == expect == [s["id"] for s in steps]
    assert set(steps[0]) == {
        "index",
        "id",
        "token",
        "text",
        "prob",
        "model_prob",
        "draw",
        "prediction",
        "cached",
        "ms",
        "finish",
    }


def test_one_long_generation_keeps_a_one_row_cache(monkeypatch):
    """Growing the cache's length must not grow its rows: one stream's memory is one row."""
    monkeypatch.setattr(batching, "GROW", 4)  # grow the length every few steps
    batcher = Batcher(tiny_model(7), max_rows=8)
    (steps,) = run_together(batcher, [([5, 9, 2], GREEDY, 40)])
    assert len(steps) == 40 and batcher.grows >= 5  # it really grew several times
    assert batcher.peak_rows == 1
    assert batcher.peak_positions <= 3 + 40  # never beyond what the row can reach (prompt + max_new_tokens)


def test_newcomers_are_prefilled_together_in_one_pass():
    model = tiny_model(12)
    prompts = [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12], [13, 14, 15, 16, 17, 18], [19, 20, 21, 22, 23, 24]]
    batcher = Batcher(model, max_rows=8)
    together = run_together(batcher, [(p, GREEDY, 5) for p in prompts])
    assert batcher.prefill_passes == 1  # four prompts of the same length: one pass reads them all
    for p, steps in zip(prompts, together, strict=True):
        assert ids_of(steps) == ids_of(generate(model, p, GREEDY, 5))


def test_a_class_arriving_over_a_few_milliseconds_starts_as_one_group(monkeypatch):
    """Requests that reach an idle batcher one after another, a few ms apart (a server reading
    them one at a time), share one prefill pass instead of the first getting one of its own."""
    monkeypatch.setattr(
        batching, "ARRIVAL_GAP_S", 0.2
    )  # wide, so a busy test machine's late sleeps still fit
    monkeypatch.setattr(batching, "ARRIVAL_MAX_S", 5.0)
    model = tiny_model(12)
    batcher = Batcher(model, max_rows=16)
    prompts = [[1 + i, 2, 3, 4, 5, 6] for i in range(8)]
    reqs = []
    for p in prompts:
        reqs.append(batcher.submit(p, GREEDY, 3))
        time.sleep(0.01)
    for p, r in zip(prompts, reqs, strict=True):
        steps = []
        while (item := r.out.get(timeout=60)) is not None:
            steps.append(item)
        assert ids_of(steps) == ids_of(generate(model, p, GREEDY, 3))
    assert batcher.prefill_passes == 1


def test_a_lone_request_waits_only_the_arrival_gap():
    batcher = Batcher(tiny_model(12), max_rows=4)
    t0 = time.monotonic()
    r = batcher.submit([1, 2, 3], GREEDY, 1)
    first = r.out.get(timeout=30)
    assert (
        first is not None and time.monotonic() - t0 < batching.ARRIVAL_MAX_S + 5
    )  # no hang; the gap is 10 ms
    waited = []
    real_wait = batcher.wake.wait
    batcher.wake.wait = lambda timeout=None: waited.append(timeout) or real_wait(timeout)
    r = batcher.submit([1, 2, 3], GREEDY, 1)
    while r.out.get(timeout=30) is not None:
        pass
    assert sum(t for t in waited if t is not None and t < 1) <= batching.ARRIVAL_GAP_S + 1e-9


def test_a_long_prompt_is_read_in_chunks_while_running_rows_go_on(monkeypatch):
    monkeypatch.setattr(batching, "PREFILL_BUDGET_BUSY", 16)  # 16 prompt tokens per turn while rows decode
    model = tiny_model(13)
    batcher = Batcher(model, max_rows=8)
    running = batcher.submit([5, 6, 7], GREEDY, 60)
    first = running.out.get(timeout=30)  # it is decoding now
    long_prompt = list(range(200, 300))  # 100 tokens: 7 chunks of 16 at most
    passes_before, steps_before = batcher.prefill_passes, batcher.steps_run
    newcomer = batcher.submit(long_prompt, GREEDY, 4)
    newcomer_first = newcomer.out.get(timeout=60)
    passes, decoded_meanwhile = batcher.prefill_passes - passes_before, batcher.steps_run - steps_before
    seen = [first]
    while (item := running.out.get(timeout=60)) is not None:
        seen.append(item)
    newcomer_steps = [newcomer_first]
    while (item := newcomer.out.get(timeout=60)) is not None:
        newcomer_steps.append(item)
    assert passes >= 100 // 16  # the long prompt took several turns ...
    assert decoded_meanwhile >= passes - 1  # ... and the running row got a token in each of them
    assert len(seen) == 60 and ids_of(seen) == ids_of(
        generate(model, [5, 6, 7], GREEDY, 60)
    )  # ... nobody waited
    assert ids_of(newcomer_steps) == ids_of(generate(model, long_prompt, GREEDY, 4))
    assert newcomer_first.cached == 100


def test_a_crowd_of_newcomers_of_different_lengths_is_read_in_one_pass_while_a_row_decodes():
    # A class presses Generate at once while one student already decodes: the crowd gets the idle
    # budget, and rows with fewer tokens left re-read a few they hold so all finish in the same pass.
    model = tiny_model(14)
    batcher = Batcher(model, max_rows=16)
    shared = list(range(10, 34))  # a shared beginning (a system prompt), which the prefix cache then holds
    run_together(batcher, [(shared + [99], GREEDY, 1)])
    running = batcher.submit([5, 6, 7], GREEDY, 40)
    assert running.out.get(timeout=30) is not None  # it is decoding now
    prompts = [
        shared + list(range(40, 40 + n)) for n in (1, 4, 6, 2, 3)
    ]  # five lengths, five times the running rows
    passes_before = batcher.prefill_passes
    together = run_together(batcher, [(p, GREEDY, 6) for p in prompts])
    assert batcher.prefill_passes - passes_before == 1  # not one pass per distinct length
    for p, steps in zip(prompts, together, strict=True):
        assert ids_of(steps) == ids_of(generate(model, p, GREEDY, 6))  # re-reading changed no token
        assert steps[0].cached == len(p)
    while running.out.get(timeout=60) is not None:
        pass


def test_an_error_while_newcomers_finish_their_prompt_reaches_every_one_of_them(monkeypatch):
    """A failure in the step that emits a newcomer's first token (sampling, or growing the batch)
    must end that newcomer's stream with the error, not leave it waiting for ever."""
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("sampling failed")

    monkeypatch.setattr(batching, "choose", broken)
    b = Batcher(tiny_model(3))
    with b.wake:
        reqs = [b.submit([1, 2, 3], SamplingParams(temperature=0.7), 5, seed=n) for n in range(3)]
    for r in reqs:
        items = []
        while (
            item := r.out.get(timeout=30)
        ) is not None:  # a timeout here is the bug: a stream that never ends
            items.append(item)
        assert [type(i) for i in items] == [RuntimeError] and "sampling failed" in str(items[0])
    assert calls
