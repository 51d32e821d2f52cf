"""The LoRA panel's before/after answers: one the token budget cut short ends with " …" (it may stop
mid-word), one the model ended itself does not. On the tiny stub model (fast)."""

from __future__ import annotations


def test_a_cut_answer_ends_with_an_ellipsis_and_a_finished_one_does_not(stub, monkeypatch):
    from prediction_machine.model import models
    from prediction_machine.training.curriculum.lora import reply

    lm = models.load(stub)
    cut = reply(lm.model, lm, "Who is Hamlet's mother?", max_new_tokens=3)
    assert cut.endswith(" …") and len(cut) > 2, cut
    # The same question, with the model's first answer token made its end marker: it ends itself at once.
    first = lm.prompt_ids("Who is Hamlet's mother?", chat=True)
    from prediction_machine.inference.generation import generate
    from prediction_machine.inference.sampling import SamplingParams

    token = next(iter(generate(lm.model, first, SamplingParams(temperature=0.0), 1, set(), top_n=1))).id
    monkeypatch.setattr(type(lm), "stop_ids", property(lambda self: {token}))
    assert reply(lm.model, lm, "Who is Hamlet's mother?", max_new_tokens=3) == ""
