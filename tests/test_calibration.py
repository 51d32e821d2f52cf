"""'Why it makes things up', the library: the calibration chart's points are the model's own first-token
probabilities (recomputed here by a plain forward pass of the textbook model, without the batch, the
shared prefix or the KV cache), its verdicts follow the stated rules, the batched answers are the ones
generate() gives one by one, and the 'I do not know' counts are what the data holds.
"""

from __future__ import annotations

import json
import re
import time

import pytest
import torch

from prediction_machine.cli import main
from prediction_machine.inference import calibration, makes_up
from prediction_machine.inference.generation import generate
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.model import models
from prediction_machine.training.curriculum import factual, preferences
from prediction_machine.training.curriculum import finetune as ft


def first_token(lm, ids: list[int]) -> tuple[int, float]:
    """The textbook model's greedy next token and its probability (softmax at temperature 1), one pass."""
    with torch.inference_mode():
        logits, _ = lm.model(torch.tensor([ids]))  # (1, T, V)
    probs = torch.softmax(logits[0, -1].double(), dim=-1)  # (V,)
    return int(probs.argmax()), float(probs.max())


def greedy_text(lm, ids: list[int], n: int) -> str:
    steps = generate(lm.decoder, ids, SamplingParams(temperature=0.0), n, lm.stop_ids, top_n=0)
    return lm.tokenizer.decode([s.id for s in steps if s.finish != "stop"])


@pytest.fixture(scope="module")
def chat():
    return models.load("shakespeare-chat")


# ----------------------------------------------------------------------------- the question sets and rules


def test_the_written_questions_are_plain_and_each_fact_states_its_answer():
    qs = calibration.general_questions()
    assert len(qs) >= 50 and len({q.question for q in qs}) == len(qs)
    for q in qs:
        assert q.question.endswith("?") and q.stem and q.answers and q.kind == "written"
        assert calibration.contains_answer(q.fact, q.answers), q  # the fact the page gives holds the answer
        assert not calibration.contains_answer(q.stem, q.answers), q  # the stem does not give it away


def test_the_rules_by_hand():
    assert calibration.contains_answer(" Rome.", ("Rome",))
    assert calibration.contains_answer(" ROME", ("Rome",))
    assert not calibration.contains_answer(" Romeo", ("Rome",))
    assert calibration.contains_answer(" Mount Everest, also known as K2.", ("Everest",))
    assert not calibration.contains_answer(" 18 legs", ("8", "eight"))
    play = calibration.Question(1, "Who is Hamlet's mother?", ("Gertrude, the Queen of Denmark.",))
    assert calibration.is_right("plays", "Gertrude.", play)
    assert not calibration.is_right("plays", "Ophelia.", play)


def test_the_plays_set_has_taught_reworded_and_unseen_facts():
    qs = calibration.plays_questions()
    kinds = {k: [q for q in qs if q.kind == k] for k in ("taught", "reworded", "unseen")}
    held = [e for e in ft.split("eval") if e.kind == "plays"]
    assert len(kinds["reworded"]) == len(kinds["taught"]) == len(held)
    assert len(kinds["unseen"]) == len(factual.UNSEEN)
    trained = {e.user for e in ft.split("train")}
    assert all(q.question in trained for q in kinds["taught"])
    assert not any(q.question in trained for q in kinds["reworded"] + kinds["unseen"])
    for t, r in zip(kinds["taught"], kinds["reworded"], strict=True):
        assert t.answers == r.answers and t.question != r.question  # one fact, two wordings


# ----------------------------------------------------------------------------- SmolLM2's chart, measured


def test_smollm2_chart_points_are_its_first_token_probabilities(lm):
    # a dozen questions, through the same batch (shared prefix, one prefill per length, one decode pass):
    # the whole set takes longer than this test should (`prediction-machine calibrate` prints its time)
    qs = calibration.general_questions()[:6] + calibration.general_questions()[-6:]
    t0 = time.perf_counter()
    out = calibration.calibration(lm, "general", questions=qs)
    seconds = time.perf_counter() - t0
    print(f"\nSmolLM2 calibration: {out['count']} questions in {seconds:.1f} s, {out['right']} right")
    assert out["count"] == len(qs) and [p["id"] for p in out["points"]] == [q.id for q in qs]
    # every verdict follows the stated rule, written out again here
    for p in out["points"]:
        said = any(re.search(rf"\b{re.escape(a.lower())}\b", p["answer"].lower()) for a in p["answers"])
        assert p["right"] == said, p
    # a few points, recomputed independently: first token and its probability, and the whole answer
    wrong = next(i for i, p in enumerate(out["points"]) if not p["right"])
    right = next(i for i, p in enumerate(out["points"]) if p["right"])
    for i in (0, right, wrong, len(qs) - 1):
        p, q = out["points"][i], qs[i]
        ids = calibration.prompt_ids(lm, q)
        token, prob = first_token(lm, ids)
        assert lm.tokenizer.token(token).text == p["first_token"], q.question
        assert p["confidence"] == pytest.approx(prob, abs=2e-4), q.question
        assert p["answer"] == greedy_text(lm, ids, out["answer_tokens"]), q.question
    # the bands count every answer once, and their accuracy is their share right
    assert sum(b["count"] for b in out["bands"]) == out["count"]
    assert sum(b["right"] for b in out["bands"]) == out["right"]
    for b in out["bands"]:
        inside = [p for p in out["points"] if b["low"] <= p["confidence"] < b["high"] or
                  (b["high"] == 1 and p["confidence"] >= 1)]
        assert b["count"] == len(inside)


# ----------------------------------------------------------------------------- the tiny chat model


def test_tiny_chat_chart_points_and_verdicts(chat):
    out = calibration.cached_calibration(chat, calibration.set_for(chat.name))  # the CLI test reuses it
    assert out["set"] == "plays" and out["count"] == len(calibration.plays_questions())
    for p in out["points"]:
        assert p["right"] == factual.is_right(p["answer"], p["answers"][0]), p
    unseen = [p for p in out["points"] if p["kind"] == "unseen"]
    assert not any(p["right"] for p in unseen)  # nobody taught it these: it cannot know them
    for p in (out["points"][0], unseen[0]):
        ids = chat.prompt_ids(p["question"])
        assert ids == ft.plain_chat_ids(chat.tokenizer, p["question"])  # the format it was trained on
        token, prob = first_token(chat, ids)
        assert p["confidence"] == pytest.approx(prob, abs=2e-4)
        assert p["answer"] == greedy_text(chat, ids, out["answer_tokens"])


def test_batched_samples_are_the_draws_generate_makes(chat):
    out = makes_up.samples(chat, "Who is the father of Cordelia?", temperatures=(1.5, 0.3), n=3, seed=7)
    ids = chat.prompt_ids("Who is the father of Cordelia?")
    for row in out["rows"]:
        for a in row["answers"]:
            steps = generate(chat.decoder, ids, SamplingParams(temperature=row["temperature"]),
                             makes_up.SAMPLE_TOKENS, chat.stop_ids, seed=a["seed"], top_n=0)
            assert a["answer"] == chat.tokenizer.decode([s.id for s in steps if s.finish != "stop"])
            assert a["verdict"]["right"] == factual.is_right(a["answer"], "King Lear.")


def test_the_answer_and_the_fact_given(chat):
    plain = makes_up.answer(chat, "Who is Hero's father?")
    assert plain["verdict"]["set"] == "plays" and plain["verdict"]["right"] is False  # never taught
    assert chat.tokenizer.decode([t["id"] for t in plain["tokens"]]) == plain["answer"]
    for t in plain["tokens"]:
        assert all(a["prob"] <= t["prob"] + 1e-9 for a in t["alternatives"])  # greedy: the likeliest won
    mine = makes_up.answer(chat, "What colour is my bicycle?")
    assert mine["verdict"] is None  # not in any set: not judged


def test_dont_know_is_taught_only_by_the_preference_data(chat):
    counts = makes_up.data_counts()
    assert counts["finetune"]["dont_know"] == 0
    chosen = [p for p in preferences.load_pairs() if p.chosen.startswith("I do not know")]
    assert counts["preferences"]["dont_know"] == len(chosen) > 0
    out = makes_up.dont_know(chat)
    assert out["count"] == len(chosen)
    for row in out["rows"][:3]:  # the batch gives the answers ft.answer gives, one by one
        assert ft.answer(chat.model, chat.tokenizer, row["prompt"], 12).removesuffix(" …") == row["answer"]
        assert row["dont_know"] == makes_up.said_dont_know(row["answer"])


# ----------------------------------------------------------------------------- the API and the CLI


def test_api_answers_and_refusals(chat):
    from conftest import make_app
    from fastapi.testclient import TestClient

    with TestClient(make_app(model="shakespeare-chat"), base_url="http://127.0.0.1") as c:
        ask = {"question": "Who is Juliet's mother?", "max_new_tokens": 8}
        got = c.post("/api/makes-up/answer", json=ask)
        assert got.status_code == 200 and got.json()["model"] == "shakespeare-chat"
        long = c.post("/api/makes-up/answer", json={"question": "Who? " * 50, "context": "y " * 290})
        assert long.status_code == 422 and long.json()["error"].startswith("question: is ")
        assert "127" in long.json()["error"]
        assert c.post("/api/makes-up/answer", json={"question": ""}).status_code == 422
        assert c.post("/api/makes-up/answer", json={"question": "x", "extra": 1}).status_code == 422
        assert c.post("/api/makes-up/samples", json={"question": "x", "samples": 9}).status_code == 422
        assert c.post("/api/makes-up/dont-know", json={"model": "smollm2-135m-instruct"}).status_code == 422
        sets = c.get("/api/makes-up/questions").json()
        assert len(sets["sets"]["general"]) >= 50 and sets["dont_know_data"]["finetune"]["dont_know"] == 0


def test_cli_calibrate(chat, capsys):
    assert main(["calibrate", "--model", "shakespeare-chat", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["set"] == "plays" and out["count"] == len(out["points"]) and out["seconds"] >= 0
    assert main(["calibrate", "--model", "no-such-model"]) == 2
    assert "no-such-model" in capsys.readouterr().err
