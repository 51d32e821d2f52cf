"""The generation loop on the real model: the answer, stopping, seeds."""

from prediction_machine.inference.generation import generate
from prediction_machine.inference.sampling import SamplingParams


def test_greedy_answer_names_paris(lm):
    ids = lm.prompt_ids("What is the capital of France?")
    steps = list(generate(lm.model, ids, SamplingParams(temperature=0), 32, lm.stop_ids))
    text = lm.tokenizer.decode([s.id for s in steps], skip_special=True)
    assert "Paris" in text
    assert steps[-1].finish == "stop" and steps[-1].id == lm.eos_id


def test_max_new_tokens_stops_with_length(lm):
    ids = lm.prompt_ids("Tell me a long story.")
    steps = list(generate(lm.model, ids, SamplingParams(temperature=0), 3, lm.stop_ids))
    assert len(steps) == 3 and steps[-1].finish == "length"
    # The prompt is cached by the first pass; each later pass adds the one token before it.
    assert [s.cached for s in steps] == [len(ids), len(ids) + 1, len(ids) + 2]


def test_same_seed_same_tokens_different_seed_differs(lm):
    ids = lm.prompt_ids("Write a word.")
    p = SamplingParams(temperature=1.5)
    run = lambda seed: [s.id for s in generate(lm.model, ids, p, 8, set(), seed=seed)]  # noqa: E731
    assert run(7) == run(7)
    assert any(run(7) != run(s) for s in (8, 9, 10))


def test_steps_report_the_draw(lm):
    steps = list(generate(lm.model, lm.prompt_ids("Hi"), SamplingParams(temperature=1.0), 4, set(), seed=1))
    for s in steps:
        assert 0 <= s.draw.u < 1
        assert s.draw.cumulative_before <= s.draw.u * 1.0000001 <= s.draw.cumulative_before + s.prob + 1e-9
        shown = sum(r.prob for r in s.prediction.rows)
        assert s.prediction.rows and abs(shown + s.prediction.mass_outside - 1) < 1e-5


def test_each_step_carries_the_models_probability_and_the_draws(lm):
    steps = list(generate(lm.decoder, lm.prompt_ids("Hi"), SamplingParams(temperature=0), 4, set()))
    for s in steps:
        assert s.prob == 1.0  # greedy: the draw was certain ...
        assert 0 < s.model_prob < 1  # ... the model was not
        assert s.model_prob == s.prediction.rows[0].model_prob and s.prediction.rows[0].id == s.id
    none = list(generate(lm.decoder, lm.prompt_ids("Hi"), SamplingParams(temperature=0), 2, set(), top_n=0))
    assert [s.prediction for s in none] == [None, None] and [s.id for s in none] == [s.id for s in steps[:2]]


def test_openapi_defines_both_probabilities_with_descriptions():
    from prediction_machine.web.app import create_app

    schemas = create_app().openapi()["components"]["schemas"]
    for name in ("StepEvent", "PredictionRow"):
        fields = schemas[name]["properties"]
        assert "temperature 1" in fields["model_prob"]["description"]
        assert "the draw used" in fields["prob"]["description"]
