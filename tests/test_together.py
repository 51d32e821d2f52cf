"""A set of prompts decoded together in the caller's thread (engine/together.py): the batcher's own
turns, so each answer is generate()'s; the caller's stop test reaches it; it never poses as a class's
generation to the priority gate."""

import threading

import pytest
import torch
from test_transformer import tiny_model

from prediction_machine import cancel
from prediction_machine.engine import priority
from prediction_machine.engine.together import Together, decode_together
from prediction_machine.inference.generation import generate
from prediction_machine.inference.sampling import SamplingParams

SETTINGS = [SamplingParams(temperature=0), SamplingParams(temperature=1.0),
            SamplingParams(temperature=0.8, top_p=0.9), SamplingParams(temperature=1.3, top_k=20)]


def test_each_answer_is_the_one_generate_gives_with_its_seed():
    model = tiny_model(4)
    prompts = [[1, 2, 3], [9] * 7, list(range(30, 60)), [400], [5, 6]]
    jobs = [(prompts[n % 5], SETTINGS[n % len(SETTINGS)], 4 + n, {7}, 100 + n, 3) for n in range(6)]
    together = decode_together(model, jobs)
    for (prompt, p, n_new, stop, seed, top_n), steps in zip(jobs, together, strict=True):
        alone = list(generate(model, prompt, p, n_new, stop, seed=seed, top_n=top_n))
        assert [s.id for s in steps] == [s.id for s in alone]
        assert [s.finish for s in steps] == [s.finish for s in alone]
        assert [s.draw.u for s in steps] == [s.draw.u for s in alone]
        assert [s.model_prob for s in steps] == pytest.approx([s.model_prob for s in alone], rel=1e-4)


def test_more_prompts_than_one_group_all_finish_in_order():
    model = tiny_model(5)
    prompts = [[n % 50 + 1] * (1 + n % 9) for n in range(34)]  # more than one prefill group holds (32)
    runner = Together(model, max_rows=34)
    together = runner.run([(p, SETTINGS[0], 2) for p in prompts])
    assert runner.prefill_passes >= 2 and not runner.rows and not runner.pending
    assert len(together) == len(prompts) and all(len(steps) == 2 for steps in together)
    for i in (0, 9, 32, 33):  # both groups, checked against generate alone
        assert [s.id for s in together[i]] == [s.id for s in generate(model, prompts[i], SETTINGS[0], 2)]


def test_the_callers_stop_test_stops_it_and_the_gate_never_hears_of_it(monkeypatch):
    model = tiny_model(6)
    heard = []
    monkeypatch.setattr(priority.GATE, "generating", lambda who, busy: heard.append(busy))
    passes = []
    token = cancel.stop_when(lambda: len(passes) > 3)  # stops between two layers of a later pass
    real_forward = model.forward

    def counting(*args, **kwargs):
        passes.append(threading.get_ident())
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", counting)
    try:
        with pytest.raises(cancel.Cancelled):
            decode_together(model, [([1, 2, 3], SETTINGS[0], 50)] * 3)
    finally:
        cancel.reset(token)
    assert set(passes) == {threading.get_ident()}  # every pass ran in the caller's thread
    assert 3 < len(passes) < 50 and heard == []


def test_a_prompt_that_fills_the_context_is_refused():
    model = tiny_model(7)
    with pytest.raises(ValueError, match="context"):
        decode_together(model, [(list(range(model.cfg.max_seq_len)), SETTINGS[0], 2)])
    assert decode_together(model, []) == []
    assert torch.is_grad_enabled()  # the inference mode ended with the set
