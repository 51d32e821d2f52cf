"""Rounds, the class against the model: the draw, the distance, the limits and who may do what.

The library part runs on SmolLM2 (one forward pass per round); the routes run in process on the stub
model in classroom mode, with a teacher token, through the real security middleware and its cookies.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from conftest import make_app, signed_in
from fastapi.testclient import TestClient

from prediction_machine.classroom import distance, export, rounds
from prediction_machine.classroom.roster import Roster
from prediction_machine.inference import walkthrough
from prediction_machine.inference.sampling import SamplingParams, draw, make_generator

CLASS, TEACHER = "rounds-class-token-1234", "rounds-teacher-token-5678"
PROMPT = "The capital of France is"


# ----------------------------------------------------------------------------- the library


def test_total_variation_matches_the_worked_example():
    probs = torch.tensor([0.5, 0.3, 0.2])
    assert distance.total_variation({0: 6, 1: 3, 2: 1}, probs) == pytest.approx(0.1)
    assert distance.total_variation({2: 4}, probs) == pytest.approx(0.8)  # undrawn tokens count in full


@pytest.fixture(scope="module")
def france(lm):
    ids = lm.prompt_ids(PROMPT, chat=False)

    def make(params: SamplingParams, number: int = 1) -> rounds.Round:
        return rounds.from_model(number, PROMPT, lm.model, ids, params, lambda i: lm.tokenizer.token(i).text,
                                 cap=10_000)

    return make


def test_200_draws_at_temperature_1_are_within_the_bound_chance_allows(france):
    r = france(SamplingParams(temperature=1.0))
    for s in range(200):
        r.answer(f"student-{s}", "Paris")
    counts = Counter(a.token for a in r.answers)
    tv, bound = distance.total_variation(counts, r.probs), distance.tv_bound(r.probs, 200)
    expected = distance.expected_tv(r.probs, 200)
    print(f"TV of 200 draws {tv:.3f}; expected about {expected:.3f}; bound {bound:.3f}")
    assert tv < bound
    # The bound can fail: 200 draws spread evenly over the model's ten likeliest tokens are far above it.
    top10 = r.probs.topk(10).indices.tolist()
    assert distance.total_variation({i: 20 for i in top10}, r.probs) > bound
    # The teacher's columns add up to the class.
    t = r.tally()
    assert sum(row["draws"] for row in t["rows"]) + t["draws_other"] == 200
    assert t["rows"][0]["word"] == "paris" and t["rows"][0]["guesses"] == 200


def test_a_round_draws_what_sampling_draws_for_the_same_seed(france, lm):
    for params in (SamplingParams(1.0), SamplingParams(0.7, top_p=0.9), SamplingParams(0.0)):
        r = france(params)
        for seed in range(0, 4000, 37):
            assert r.draw(seed) == draw(r.probs, None if params.greedy else make_generator(seed))
    # ... and the page's own preview route draws it too: the seed is the whole story.
    r = france(SamplingParams(0.8, top_p=0.95))
    a = r.answer("me", "Paris")
    ids = lm.prompt_ids(PROMPT, chat=False)
    assert walkthrough.preview(lm.model, ids, r.params, 5, a.seed).draw.id == a.token


def test_rounds_an_hour_and_answers_per_student_are_bounded():
    probs = torch.tensor([0.6, 0.4])
    book = rounds.RoundBook(per_hour=2, kept=5)
    make = lambda n: rounds.Round(n, "p", SamplingParams(), probs, str, answers_per_student=1, cap=2)  # noqa: E731
    first = book.start(make)
    first.answer("a", "x")
    with pytest.raises(rounds.RoundError, match="per student"):
        first.answer("a", "y")
    first.answer("b", "x")
    with pytest.raises(rounds.RoundError, match="at most 2 answers"):
        first.answer("c", "x")
    book.start(make)
    assert not first.open
    with pytest.raises(rounds.RoundError, match="closed|over"):
        first.answer("d", "x")
    with pytest.raises(rounds.RoundError, match="2 rounds an hour"):
        book.start(make)


def test_csv_cells_a_student_typed_never_run_as_formulas():
    roster = Roster(b"k" * 32)
    roster.name("c:someone", "=HYPERLINK(\"http://x\")")
    text = export.progress_csv(roster)
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text


# ----------------------------------------------------------------------------- the routes


@pytest.fixture(scope="module")
def app(stub, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path_factory.mktemp("runs")))
        yield make_app(model=stub, token=CLASS, teacher_token=TEACHER, rounds_per_hour=50)


def test_without_a_token_there_is_no_class(stub):
    c = TestClient(make_app(model=stub), base_url="http://127.0.0.1")
    assert c.get("/api/class/now").status_code == 404
    assert c.post("/api/class/rounds", json={"prompt": "Hi"}).status_code == 404
    assert c.get("/teacher").status_code == 404


def test_students_cannot_reach_teacher_routes_and_forged_ids_get_401(app):
    teacher, student = signed_in(app, TEACHER), signed_in(app, CLASS)
    number = teacher.post("/api/class/rounds", json={"prompt": "Once upon a"}).json()["number"]
    for method, path, body in [("POST", "/api/class/rounds", {"prompt": "x"}),
                               ("GET", f"/api/class/rounds/{number}", None),
                               ("POST", f"/api/class/rounds/{number}/stop", None),
                               ("GET", "/api/class/students", None),
                               ("POST", "/api/class/show", {"link": "/#attention"}),
                               ("GET", "/api/class/export", None), ("GET", "/teacher", None)]:
        r = student.request(method, path, json=body)
        assert r.status_code == 403, (path, r.status_code, r.text)
    assert TestClient(app, base_url="http://127.0.0.1").get("/teacher").status_code == 401
    client_id = student.cookies.get("pm_token").split(".")[0]
    forged = TestClient(app, base_url="http://127.0.0.1",
                        cookies={"pm_token": f"{client_id}.{'0' * 64}"})  # a signature the student made up
    assert forged.get("/api/class/now").status_code == 401
    copied = TestClient(app, base_url="http://127.0.0.1", cookies={"pm_client": client_id})
    # the id alone counts for nothing
    assert copied.post(f"/api/class/rounds/{number}/answer", json={"guess": "x"}).status_code == 401
    assert teacher.get("/teacher").status_code == 200


def test_answers_are_bounded_keyed_by_student_and_never_show_the_teacher_token(app):
    teacher, a, b = signed_in(app, TEACHER), signed_in(app, CLASS), signed_in(app, CLASS)
    number = teacher.post("/api/class/rounds", json={"prompt": "The cat sat", "temperature": 0.9,
                                                     "top_p": 0.9}).json()["number"]
    assert a.post(f"/api/class/rounds/{number}/answer", json={"guess": "x" * 41}).status_code == 422
    first = a.post(f"/api/class/rounds/{number}/answer", json={"guess": "mat"})
    assert first.status_code == 200, first.text
    assert a.post(f"/api/class/rounds/{number}/answer", json={"guess": "rug"}).status_code == 429
    assert b.post(f"/api/class/rounds/{number}/answer", json={"guess": "mat"}).status_code == 200
    mine = a.get("/api/class/now").json()
    assert [m["seed"] for m in mine["round"]["mine"]] == [first.json()["seed"]]  # only a's own answer
    tally = teacher.get(f"/api/class/rounds/{number}").json()["tally"]
    assert tally["answers"] == 2 and next(r for r in tally["rows"] if r["word"] == "mat")["guesses"] == 2
    assert teacher.post(f"/api/class/rounds/{number}/stop").json()["open"] is False
    assert b.post(f"/api/class/rounds/{number}/answer", json={"guess": "mat"}).status_code == 409
    gone = number + 99  # a round that never was: the same 404, naming the number, on all three routes
    for r in (a.post(f"/api/class/rounds/{gone}/answer", json={"guess": "mat"}),
              teacher.get(f"/api/class/rounds/{gone}"), teacher.post(f"/api/class/rounds/{gone}/stop")):
        assert r.status_code == 404 and f"there is no round {gone}" in r.text, r.text
    rows = teacher.get("/api/class/export", params={"what": "rounds"}).text.splitlines()
    assert len([r for r in rows if r.startswith(f"{number},")]) == 2
    for response in (first, a.get("/api/class/now"), a.get("/")):
        assert TEACHER not in response.text and CLASS not in response.text
    assert all(TEACHER not in v and CLASS not in v for v in a.cookies.values())


def test_progress_nickname_and_show_are_validated(app):
    teacher, s = signed_in(app, TEACHER), signed_in(app, CLASS)
    ok = {"section": "attention", "tour_done": True, "questions_right": 2, "questions_total": 3}
    assert s.post("/api/class/progress", json=ok).status_code == 200
    assert s.post("/api/class/progress", json={**ok, "questions_right": 4}).status_code == 422
    assert s.post("/api/class/progress", json={**ok, "section": "<b>"}).status_code == 422
    assert s.post("/api/class/progress", json={**ok, "section": "makes_up"}).status_code == 200  # its HTML id
    assert s.post("/api/class/nickname", json={"nickname": "n" * 25}).status_code == 422
    assert s.post("/api/class/nickname", json={"nickname": "<b>x</b><i>y</i>"}).status_code == 200
    listed = teacher.get("/api/class/students").json()["students"]
    me = next(x for x in listed if x["nickname"] == "<b>x</b><i>y</i>")
    assert me["progress"]["attention"] == {"tour_done": True, "questions_right": 2, "questions_total": 3}
    assert me["student"].startswith("s-") and len(me["student"]) == 10
    for bad in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)", "/\\evil", "/a\nb"):
        assert teacher.post("/api/class/show", json={"link": bad}).status_code == 422, bad
    shown = teacher.post("/api/class/show", json={"link": "/#attention?layer=3&head=1"}).json()
    assert s.get("/api/class/now").json()["push"] == shown
