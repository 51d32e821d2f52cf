"""Branching, the whole-generation lens and steering, against independent computations.

The tiny chat model (shakespeare-chat) keeps these fast; the experiments are the same code on
SmolLM2. Each claim is checked against something computed another way: the branch against
`generate` itself, the lens against model/tracing.py's one-position lens, steering's direction
against residuals from `trace`, and the steered stream against the plain one plus the shift.
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import make_app

from prediction_machine import limits
from prediction_machine.cli import main
from prediction_machine.experiments import branching, generation_lens, readout, steering
from prediction_machine.inference.generation import generate
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.model import models
from prediction_machine.model.tracing import lens_probs, token_path, trace

CHAT = "shakespeare-chat"
QUESTION = "Who is Hamlet's mother?"
SAMPLED = SamplingParams(temperature=1.2, top_k=40)  # a real draw at every step: the seed matters


@pytest.fixture(scope="module")
def chat():
    return models.load(CHAT, probe_layouts=False)


@pytest.fixture(scope="module")
def ids(chat):
    return readout.prompt_ids(chat, QUESTION)


# ----------------------------------------------------------------------------- branching


def test_forcing_the_token_it_would_choose_gives_the_unforced_run(chat, ids):
    original = branching.original_run(chat.model, ids, SAMPLED, 12, chat.stop_ids, seed=5)
    for step in (0, 4):
        b = branching.branch(chat, ids, SAMPLED, 12, step, token=original[step].id, seed=5)
        assert [(s.id, s.prob, s.top) for s in b.branch.steps] == [(s.id, s.prob, s.top) for s in original]
        assert b.branch.text == b.original.text


def test_a_forced_token_changes_that_step_and_the_run_goes_on_from_it(chat, ids):
    b = branching.branch(chat, ids, SAMPLED, 12, 2, seed=5, rank=3)
    o, f = b.original.steps, b.branch.steps
    assert [s.id for s in f[:2]] == [s.id for s in o[:2]] and f[2].forced
    assert f[2].id == o[2].top[2][0] != o[2].id  # the 3rd row of that step's table
    assert f[2].prob == pytest.approx(o[2].top[2][1])  # its probability in the table it was picked from
    # after the fork, each step is the model's answer to the branch's own text
    fork = ids + [s.id for s in f[:3]]
    probs = readout.next_probs(chat.model, fork)  # (V,)
    assert f[3].prob == pytest.approx(float(probs[f[3].id]), abs=1e-5)
    j = b.to_json(chat.tokenizer)
    assert j["forced"]["id"] == f[2].id and len(j["branch"]["steps"][0]["top"]) == branching.TOP


def test_branch_refuses_steps_and_tokens_it_cannot_force(chat, ids):
    with pytest.raises(ValueError, match="vocabulary of 512"):
        branching.branch(chat, ids, SAMPLED, 4, 1, token=512)
    with pytest.raises(ValueError, match="0 to 3"):
        branching.branch(chat, ids, SAMPLED, 4, 4, token=1)
    with pytest.raises(ValueError, match="not both"):
        branching.branch(chat, ids, SAMPLED, 4, 1, token=1, rank=1)


# ----------------------------------------------------------------------------- the whole-generation lens


def test_lens_last_layer_is_the_steps_own_probability_and_matches_the_one_position_lens(chat, ids):
    steps = list(generate(chat.model, ids, SAMPLED, 10, chat.stop_ids, seed=3, top_n=0))
    gen = [s.id for s in steps]
    lens = generation_lens.generation_lens(chat.model, ids, gen, [s.model_prob for s in steps])
    L = chat.config.n_layers
    assert len(lens.prob) == len(gen) and all(len(row) == L for row in lens.prob)
    for i, s in enumerate(steps):
        assert lens.prob[i][-1] == pytest.approx(s.model_prob, abs=1e-5)
        # independently: trace the text that step read, and follow its token through tracing.py's lens
        path = token_path(lens_probs(chat.model, trace(chat.model, ids + gen[:i])), s.id)
        assert lens.rank[i] == path.ranks
        assert lens.prob[i] == pytest.approx(path.probs, abs=1e-5)
        decided = lens.decided[i]
        assert (decided is None) == (path.ranks[-1] != 1)
        if decided is not None:
            assert set(path.ranks[decided:]) == {1} and (decided == 0 or path.ranks[decided - 1] != 1)


def test_lens_needs_a_generated_token(chat, ids):
    with pytest.raises(ValueError, match="at least one new token"):
        generation_lens.generation_lens(chat.model, ids, [])


# ----------------------------------------------------------------------------- steering


def test_direction_is_the_difference_of_mean_residuals(chat):
    pos = [chat.tokenizer.encode_ids(t) for t in ("Gertrude, the Queen.", "Lady Capulet.")]
    neg = [chat.tokenizer.encode_ids(t) for t in ("I cannot help with that.",)]
    d = steering.steering_direction(chat.model, pos, neg, 1)

    def mean(texts):
        return torch.stack([trace(chat.model, t).residuals[1].mean(0) for t in texts]).mean(0)  # (D,)

    assert torch.allclose(d, mean(pos) - mean(neg), atol=1e-5)


def test_strength_zero_is_the_identity_and_a_strength_shifts_the_stream(chat, ids):
    d = torch.randn(chat.config.d_model)
    s = steering.steer(chat, ids, d, 1, 0.0, SAMPLED, 10, seed=9)
    assert s.after == s.before
    # the hook adds strength x direction to the stream after the layer, at every position
    plain = trace(chat.model, ids).residuals[1]  # (T, D)
    _, rec = steering.steered(chat.model, 1, d, 2.5)(torch.tensor([ids]), record=True)
    assert torch.allclose(rec.residuals[1][0], plain + 2.5 * d, atol=1e-5)
    assert steering.steer(chat, ids, d * 50, 1, 1.0, SAMPLED, 10, seed=9).after != s.before


def test_safety_with_the_preference_direction(chat):
    from prediction_machine.training.curriculum import finetune, safety

    items = tuple(next(i for i in safety.load_items() if i["kind"] == k) for k in ("harmful", "benign"))
    table = steering.safety_with_direction(chat, 3.0, items=items)  # two questions keep it quick
    rows = {r["steering"]: r for r in table["rows"]}
    assert [r["strength"] for r in table["rows"]] == [3.0, -3.0, 0.0]
    assert [a["answer"] for a in rows["off"]["answers"]] == [finetune.answer(chat.model, chat.tokenizer,
                                                                             i["prompt"]) for i in items]
    for r in table["rows"]:
        assert r["refusal_rate"] == float(r["answers"][0]["refused"])
        assert r["over_refusal_rate"] == float(r["answers"][1]["refused"])
    assert table["direction_norm"] > 0


# ----------------------------------------------------------------------------- CLI


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_json_and_usage_errors(capsys):
    code, out, _ = run_cli(capsys, "branch", "--model", CHAT, "--step", "1", "--rank", "2",
                           "--new-tokens", "5", "--json", "--", QUESTION)
    b = json.loads(out)
    assert code == 0 and b["step"] == 1 and b["branch"]["steps"][1]["forced"]
    code, out, _ = run_cli(capsys, "lens", "--model", CHAT, "--new-tokens", "3", "--json", "--", QUESTION)
    assert code == 0 and len(json.loads(out)["rank"]) == 3
    code, out, _ = run_cli(capsys, "steer", "--model", CHAT, "--layer", "2", "--strength", "0",
                           "--positive", "Lady Capulet.", "--negative", "I cannot.", "--new-tokens", "4",
                           "--json", "--", QUESTION)
    s = json.loads(out)
    assert code == 0 and s["before"] == s["after"]
    most = limits.MAX_EXPERIMENT_NEW_TOKENS
    bad = [
        (["lens", "--model", CHAT, "--new-tokens", "0", "--", QUESTION], f"1 to {most}"),
        (["lens", "--model", CHAT, "--new-tokens", str(most + 1), "--", QUESTION], f"1 to {most}"),
        (["lens", "--model", CHAT, "--", ""], "empty"),
        (["lens", "--model", CHAT, "--new-tokens", "60", "--", "x" * 100], "context of 128"),
        (["branch", "--model", CHAT, "--step", "7", "--token", "3", "--new-tokens", "4", "--", "Hi"],
         "0 to 3"),
        (["branch", "--model", CHAT, "--step", "0", "--token", "512", "--", "Hi"], "vocabulary of 512"),
        (["steer", "--model", CHAT, "--layer", "9", "--positive", "a", "--negative", "b", "--", "Hi"],
         "0 to 3"),
        (["steer", "--model", CHAT, "--layer", "1", "--positive", "", "--negative", "b", "--", "Hi"],
         "is empty"),
        (["steer", "--model", CHAT, "--layer", "1", "--negative", "b", "--", "Hi"], "1 to 8"),
        (["steer", "--model", CHAT, "--layer", "1", "--strength", "1000", "--positive", "a", "--negative",
          "b", "--", "Hi"], "-100 to 100"),
        (["steer", "--model", CHAT, "--layer", "1"], "needs a prompt"),
        (["steer", "--safety", "--model", "shakespeare-base"], "leave out --model"),
    ]
    for argv, words in bad:
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and words in err and err.count("\n") == 1, (argv, err)


# ----------------------------------------------------------------------------- API


@pytest.fixture(scope="module")
def api():
    from fastapi.testclient import TestClient

    with TestClient(make_app(model=CHAT), base_url="http://127.0.0.1") as c:
        yield c


def test_routes_answer_the_documented_shapes(api):
    b = api.post("/api/experiments/branch", json={"prompt": QUESTION, "new_tokens": 5, "step": 1, "rank": 2})
    assert b.status_code == 200, b.text
    b = b.json()
    assert set(b) == {"original", "branch", "step", "forced"}
    assert b["forced"]["id"] == b["branch"]["steps"][1]["id"]
    assert set(b["original"]["steps"][0]) == {"id", "token", "prob", "forced", "top"}
    lens = api.post("/api/experiments/lens", json={"prompt": QUESTION, "new_tokens": 4}).json()
    assert lens["layers"] == 4 and len(lens["prob"]) == len(lens["tokens"]) == len(lens["decided"])
    s = api.post("/api/experiments/steer", json={"prompt": QUESTION, "positive": ["Lady Capulet."],
                                                 "negative": ["I cannot."], "layer": 2, "strength": 0,
                                                 "new_tokens": 4}).json()
    assert s["before"] == s["after"] and s["layer"] == 2 and s["direction_norm"] > 0


def test_routes_refuse_bad_input_naming_the_limit(api):
    base = {"prompt": QUESTION, "new_tokens": 4}
    steer = {**base, "positive": ["a"], "negative": ["b"], "layer": 1}
    cases = [
        ("branch", {**base, "step": 0, "token": 512}, "token: is 512; this model's ids are 0..511"),
        ("branch", {**base, "step": 4, "token": 1}, "step: is 4; with new_tokens 4 it is 0..3"),
        ("branch", {**base, "step": 0, "token": 1, "rank": 1}, "not both"),
        ("branch", {**base, "step": 0}, "not both"),
        ("lens", {**base, "new_tokens": limits.MAX_EXPERIMENT_NEW_TOKENS + 1}, "less than or equal to 64"),
        ("lens", {**base, "prompt": ""}, "at least 1 character"),
        ("lens", {**base, "prompt": "x" * 200}, "the limit for experiments is 64"),
        ("steer", {**steer, "layer": 4}, "layer: is 4; this model's layers are 0..3"),
        ("steer", {**steer, "positive": []}, "positive"),
        ("steer", {**steer, "negative": ["b"] * 9}, "at most 8"),
        ("steer", {**steer, "strength": 101}, "less than or equal to 100"),
        ("steer", {**steer, "positive": ["y" * 300]}, "positive[0]: is"),
        ("steer", {**steer, "negative": ["b", "n" * 4001]}, "negative[1]: is 4001 characters; the limit is"),
        ("steer/safety", {"strength": -100.5}, "greater than or equal to -100"),
    ]
    for route, body, words in cases:
        r = api.post(f"/api/experiments/{route}", json=body)
        assert r.status_code == 422 and words in r.json()["error"], (route, body, r.text)


def test_safety_route(api, monkeypatch):
    from prediction_machine.training.curriculum import safety

    items = [next(i for i in safety.load_items() if i["kind"] == k) for k in ("harmful", "benign")]
    monkeypatch.setattr(safety, "load_items", lambda: tuple(items))
    r = api.post("/api/experiments/steer/safety", json={"strength": 2.75})
    assert r.status_code == 200, r.text
    assert [row["steering"] for row in r.json()["rows"]] == ["added", "removed", "off"]


# ----------------------------------------------------------------------------- presets, measured on SmolLM2


def test_the_stored_preset_results_still_hold(lm):
    """Each preset's stored result, re-measured the cheap way: one ablation, one attribution, two
    single patches, a short lens and branch (the scans and the grid that found them take minutes)."""
    from prediction_machine.experiments import ablation, attribution, patching, presets

    stored = {p["id"]: p for p in presets.load()}
    assert set(stored) == {p.id for p in presets.PRESETS}, "rerun presets.py --measure"
    for p in presets.PRESETS:
        s = stored[p.id]
        assert {k: s[k] for k in p.inputs} == p.inputs and s["look_for"] == p.look_for
        assert s["model"] == lm.name
        n = s["numbers"]
        if p.experiment == "scan":
            head = ablation.Part("head", n["layer"], n["head"])
            a = ablation.ablate(lm, p.inputs["prompt"], head, raw=True)
            assert a.target["token"] == n["token"], p.id
            assert a.target_prob == pytest.approx((n["before"], n["after"]), abs=2e-3), p.id
        elif p.experiment == "attribute":
            a = attribution.attribute(lm, p.inputs["prompt"], raw=True)
            assert a.token["token"] == n["token"], p.id
            assert a.heads[n["layer"]][n["head"]] == pytest.approx(n["value"], abs=2e-3), p.id
            assert max(max(h) for h in a.heads) == pytest.approx(n["value"], abs=2e-3), p.id
        elif p.experiment == "patch":
            for cell in (n["early"], n["last"]):
                r = patching.patch(lm, p.inputs["source"], p.inputs["target"], cell["row"],
                                   [cell["position"]], raw=True)
                assert r["recovery"] == pytest.approx(cell["recovery"], abs=2e-3), (p.id, cell)
        else:  # the lens and the branch: a few tokens, measured again in full
            _, numbers = presets.MEASURES[p.experiment](lm, p)
            assert close(numbers, n), (p.id, numbers, n)


def close(a, b, tol: float = 2e-3) -> bool:
    """Equal, floats to within tol, through nested dicts and lists."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        same = isinstance(b, list) and len(a) == len(b)
        return same and all(close(x, y, tol) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, (int, float)):
        return abs(a - b) <= tol
    return a == b
