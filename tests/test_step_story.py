"""One step, one story, in the library: each generated token's record can be rebuilt exactly.

The page shows every step of a generation as it was: the tokens it read, the chosen token's path
through the layers, and the random number it drew. These tests pin the functions behind that.
"""

import pytest
import torch

from prediction_machine.inference import walkthrough
from prediction_machine.inference.generation import generate
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.model import tracing

PROMPT = "What is the capital of France?"


def test_preview_replays_the_draw_each_step_of_a_seeded_generation_made(lm):
    ids = lm.prompt_ids(PROMPT)
    params = SamplingParams(temperature=0.8)
    steps = list(generate(lm.model, ids, params, 8, lm.stop_ids, seed=7))
    assert len(steps) == 8
    for n, step in enumerate(steps):
        read = ids + [s.id for s in steps[:n]]
        p = walkthrough.preview(lm.model, read, params, 10, seed=7, draws_before=n)
        assert p.draw.id == step.id and p.draw.u == step.draw.u
        assert p.draw.cumulative_before == pytest.approx(
            step.draw.cumulative_before, abs=1e-5
        )  # cached vs full pass
    # without skipping the draws already made, a later step's number is not the one it used
    late = walkthrough.preview(lm.model, ids + [s.id for s in steps[:5]], params, 10, seed=7)
    assert late.draw.u != steps[5].draw.u


def test_the_chosen_token_is_followed_through_every_layer(lm):
    ids = lm.prompt_ids(PROMPT)
    w = walkthrough.trace_prompt(lm.model, ids, target=12366)
    path = w.transformer.chosen
    L = lm.config.n_layers
    assert path.id == 12366 and len(path.probs) == len(path.ranks) == L
    probs = tracing.lens_probs(lm.model, w.trace, -1)  # (L, V)
    for layer in (0, L // 2, L - 1):
        assert path.probs[layer] == pytest.approx(float(probs[layer, 12366]), rel=1e-5)
        assert path.ranks[layer] == int((probs[layer] > probs[layer, 12366]).sum()) + 1
    # after the last layer the lens is the model's own prediction
    final = torch.softmax(w.trace.logits[-1].float(), -1)[12366]
    assert path.probs[-1] == pytest.approx(float(final), rel=1e-3)
    # no target: the line follows the last layer's top guess, which ranks first there
    top = walkthrough.trace_prompt(lm.model, ids).transformer.chosen
    assert top.id == w.transformer.lens[-1].ids[0] and top.ranks[-1] == 1


def test_token_sources_tell_the_learners_tokens_from_the_templates(lm):
    ids = lm.prompt_ids(PROMPT)
    sources = walkthrough.token_sources(lm.tokenizer, ids, PROMPT)
    mine = [i for i, s in zip(ids, sources, strict=True) if s == "yours"]
    assert mine == lm.tokenizer.encode_ids(PROMPT)  # the 7 tokens of the prompt, in order
    assert sources.count("template") == len(ids) - 7
    raw = lm.prompt_ids(PROMPT, chat=False)
    assert set(walkthrough.token_sources(lm.tokenizer, raw, PROMPT)) == {"yours"}
    w = walkthrough.trace_prompt(
        lm.model, ids + [330, 331], tokenizer=lm.tokenizer, prompt=PROMPT, generated=2
    )
    assert w.sources[-2:] == ["generated", "generated"] and w.sources[:-2] == sources


def test_trace_api_reads_the_tokens_of_one_step(client, lm):
    ids = lm.prompt_ids(PROMPT)
    r = client.post("/api/trace", json={"prompt": PROMPT, "continuation": [330, 331], "target": 332})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [t["id"] for t in body["tokens"]] == ids + [330, 331]
    sources = body["embedding"]["sources"]
    assert sources.count("yours") == 7 and sources[-2:] == ["generated"] * 2
    chosen = body["transformer"]["chosen"]
    assert chosen["id"] == 332 and len(chosen["probs"]) == len(chosen["ranks"]) == lm.config.n_layers
    bad = client.post("/api/trace", json={"prompt": PROMPT, "target": 10**6})
    assert bad.status_code == 422 and "vocabulary" in bad.text
    long = client.post("/api/trace", json={"prompt": PROMPT, "continuation": [5] * 250})
    assert long.status_code == 422 and "limit is 256" in long.text
