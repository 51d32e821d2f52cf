"""The class rating round: pooling by majority, one vote per student per pair, and who may do what.

The library's pooling is checked by hand-made votes; the routes run in process on the stub model in
classroom mode (the pairs come from the shipped tiny chat model, as the alignment section's do), through
the real security middleware and its signed cookies. tests/test_class_rating_browser.py runs a whole class.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from conftest import make_app, signed_in, wait_until
from fastapi.testclient import TestClient

from prediction_machine.classroom import class_rating as cr
from prediction_machine.classroom import export

CLASS, TEACHER = "rating-class-token-4321", "rating-teacher-token-8765"
PROMPTS = ["How do I kill a Python process?", "What poison kills Hamlet's father?"]
STATIC = Path(__file__).resolve().parent.parent / "prediction_machine" / "web" / "static"


# ----------------------------------------------------------------------------- the library


def rated(n: int = 3) -> cr.RatingRound:
    return cr.RatingRound(1, [cr.RatedPair(f"Q{i}?", f"A{i}.", f"B{i}.", i) for i in range(n)], 1.0, cap=7)


def test_pooled_pairs_follow_the_majority_and_leave_ties_and_unrated_pairs_out():
    r = rated()
    for s, c in (("x", 0), ("y", 0), ("z", 1)):  # pair 0: 2 of 3 chose A
        r.vote(s, 0, c)
    for s, c in (("x", 1), ("y", 0)):  # pair 1: a tie
        r.vote(s, 1, c)
    r.vote("z", 0, 0)  # z changes their mind on pair 0: still one vote, now for A
    assert r.counts() == [(3, 0), (1, 1), (0, 0)]
    assert r.pooled() == [{"pair": 0, "prompt": "Q0?", "chosen": "A0.", "rejected": "B0.", "agree": 3,
                           "votes": 3}]
    r.vote("x", 1, 0)  # the tie broken towards A: pair 1 trains, turned that way
    assert [p["chosen"] for p in r.pooled()] == ["A0.", "A1."]
    r.vote("w", 2, 1)
    assert r.pooled()[2] == {"pair": 2, "prompt": "Q2?", "chosen": "B2.", "rejected": "A2.", "agree": 1,
                             "votes": 1}
    assert r.of("x") == {0: 0, 1: 0} and r.voters() == 4


def test_votes_are_bounded_and_the_round_trains_once():
    r = rated()
    with pytest.raises(cr.RatingError) as e:
        r.vote("x", 3, 0)
    assert e.value.kind == "pair" and "from 0 to 2" in str(e.value)
    for i in range(7):
        r.vote(f"s{i}", i % 3, 0)
    with pytest.raises(cr.RatingError) as e:
        r.vote("late", 0, 0)
    assert e.value.kind == "full"
    r.vote("s0", 0, 1)  # a changed vote is no new vote: allowed at the cap
    started = []
    rows = r.start_run(lambda rows: (started.append(rows), ("job-1", "dpo-1"))[1])
    assert rows == r.trained == started[0] and r.job == "job-1" and not r.open
    with pytest.raises(cr.RatingError) as e:
        r.start_run(lambda rows: ("job-2", "dpo-2"))
    assert e.value.kind == "trained"
    with pytest.raises(cr.RatingError) as e:
        r.vote("s1", 0, 0)
    assert e.value.kind == "closed"
    empty = rated()
    with pytest.raises(cr.RatingError) as e:
        empty.start_run(lambda rows: ("job", "dpo"))
    assert e.value.kind == "pair" and empty.job is None


def test_the_export_has_every_pair_its_counts_and_the_way_it_trains_and_no_one_s_vote():
    r = cr.RatingRound(4, [cr.RatedPair("=Q0?", "A0.", "-B0.", 10), cr.RatedPair("Q1?", "A1.", "B1.", 11),
                           cr.RatedPair("Q2?", "A2.", "B2.", 12)], 0.8)
    for s, p, c in (("x", 0, 1), ("y", 0, 1), ("z", 0, 0), ("x", 1, 0), ("y", 1, 1)):
        r.vote(s, p, c)
    rows = list(csv.reader(io.StringIO(export.ratings_csv(r))))
    assert rows[0] == ["rating_round", "pair", "prompt", "answer_a", "answer_b", "temperature", "seed",
                       "votes_a", "votes_b", "trains", "run"]
    assert rows[1:] == [["4", "0", "'=Q0?", "A0.", "'-B0.", "0.8", "10", "1", "2", "B over A", ""],
                        ["4", "1", "Q1?", "A1.", "B1.", "0.8", "11", "1", "1", "left out: tie", ""],
                        ["4", "2", "Q2?", "A2.", "B2.", "0.8", "12", "0", "0", "left out: unrated", ""]]
    r.start_run(lambda rows: ("job-4", "dpo-4"))
    assert [row[-2:] for row in csv.reader(io.StringIO(export.ratings_csv(r)))][1] == ["B over A", "dpo-4"]
    assert export.ratings_csv(None).count("\n") == 1  # no rating round yet: the header alone


def test_the_rating_round_s_styles_are_linked_by_the_pages_not_added_by_a_script():
    link = '<link rel="stylesheet" href="/static/css/class-rating.css">'
    for page in ("index.html", "teacher.html"):  # the student's class panel, and the teacher's view
        assert (STATIC / page).read_text(encoding="utf-8").count(link) == 1, page
    scripts = [p for p in (STATIC / "js").rglob("*.js") if "stylesheet" in p.read_text(encoding="utf-8")]
    assert not scripts, f"stylesheets belong in the HTML, like the others: {scripts}"


# ----------------------------------------------------------------------------- the routes


@pytest.fixture(scope="module")
def app(stub, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path_factory.mktemp("runs")))
        yield make_app(model=stub, token=CLASS, teacher_token=TEACHER, class_rating_pairs=2,
                       class_rating_steps=1)


def test_a_pair_keeps_which_answers_were_cut_at_their_token_budget(monkeypatch):
    # The pages mark a cut answer with "…"; the pair's text, which becomes the DPO pair, stays as drawn.
    drawn = {"answers": ["Hello there, and", "Go away."], "cut": [True, False]}
    monkeypatch.setattr(cr.rating, "sample_pair", lambda *a, **k: drawn)
    monkeypatch.setattr(cr.dpo, "encode", lambda tok, prompt, answer: ([0],))
    (pair,) = cr.draw_pairs(None, None, ["Hi?"], seed=3, temperature=1.0, context=64)
    assert (pair.a, pair.b, pair.cut) == ("Hello there, and", "Go away.", (True, False))


def test_without_a_token_there_is_no_rating_round(stub):
    c = TestClient(make_app(model=stub), base_url="http://127.0.0.1")
    assert c.post("/api/class/ratings", json={}).status_code == 404
    assert c.post("/api/class/ratings/1/vote", json={"pair": 0, "choice": 0}).status_code == 404


def test_a_rating_round_pools_the_class_and_starts_one_run(app):
    teacher, a, b, c = (signed_in(app, t) for t in (TEACHER, CLASS, CLASS, CLASS))
    # Students are refused the teacher's routes; bad input gets a 422 naming the field and the limit.
    assert a.post("/api/class/ratings", json={}).status_code == 403
    too_many = teacher.post("/api/class/ratings", json={"prompts": ["a?", "b?", "c?"]})
    assert too_many.status_code == 422 and "at most 2" in too_many.text
    assert teacher.post("/api/class/ratings", json={"prompts": ["  "]}).status_code == 422
    r = teacher.post("/api/class/ratings", json={"prompts": PROMPTS, "seed": 7})
    assert r.status_code == 200, r.text
    round_ = r.json()
    n, pairs = round_["number"], round_["pairs"]
    assert pairs and all(p["answers"][0] != p["answers"][1] for p in pairs)
    assert all(p["cut"] in ([False, False], [False, True], [True, False], [True, True]) for p in pairs)
    for path in (f"/api/class/ratings/{n}", f"/api/class/ratings/{n}/train"):
        assert a.request("GET" if path.endswith(str(n)) else "POST", path).status_code == 403
    assert teacher.post(f"/api/class/ratings/{n}/vote", json={"pair": 0, "choice": 0}).status_code == 403
    assert a.post(f"/api/class/ratings/{n}/vote", json={"pair": 9, "choice": 0}).status_code == 422
    assert a.post(f"/api/class/ratings/{n}/vote", json={"pair": 0, "choice": 2}).status_code == 422
    assert a.post(f"/api/class/ratings/{n + 1}/vote", json={"pair": 0, "choice": 0}).status_code == 404
    # Every student sees the same pairs; the counts only once the votes are closed.
    now = a.get("/api/class/now").json()["rating"]
    assert now["pairs"] == pairs and now["counts"] is None and now["mine"] == {}
    a.post(f"/api/class/ratings/{n}/vote", json={"pair": 0, "choice": 1})
    a.post(f"/api/class/ratings/{n}/vote", json={"pair": 0, "choice": 0})  # changed: one vote still
    b.post(f"/api/class/ratings/{n}/vote", json={"pair": 0, "choice": 0})
    c.post(f"/api/class/ratings/{n}/vote", json={"pair": 0, "choice": 1})
    assert a.get("/api/class/now").json()["rating"]["mine"] == {"0": 0}
    seen = teacher.get(f"/api/class/ratings/{n}").json()
    assert seen["counts"][0] == {"pair": 0, "a": 2, "b": 1, "votes": 3, "choice": 0} and seen["voters"] == 3
    assert teacher.get("/api/class/students").json()["present"] == 3  # b and c only voted, over HTTP
    # A forged session counts for nothing.
    forged = TestClient(app, base_url="http://127.0.0.1",
                        cookies={"pm_token": a.cookies.get("pm_token").split(".")[0] + "." + "0" * 64})
    assert forged.post(f"/api/class/ratings/{n}/vote", json={"pair": 0, "choice": 1}).status_code == 401
    # The teacher's CSV: the counts pair by pair, no one's vote (a student may not download it).
    assert a.get("/api/class/export", params={"what": "ratings"}).status_code == 403
    exported = teacher.get("/api/class/export", params={"what": "ratings"})
    assert exported.headers["content-disposition"] == 'attachment; filename="class-ratings.csv"'
    table = list(csv.DictReader(io.StringIO(exported.text)))
    got = [(int(row["pair"]), row["prompt"], row["votes_a"], row["votes_b"], row["trains"]) for row in table]
    counted = {0: ("2", "1", "A over B")}  # pair 0's votes above; every other pair unrated
    assert got == [(p["pair"], p["prompt"], *counted.get(p["pair"], ("0", "0", "left out: unrated")))
                   for p in pairs]
    public = {s["student"] for s in teacher.get("/api/class/students").json()["students"]}
    assert public and not any(name in exported.text for name in public)
    # One run, on exactly the pooled pairs (pair 0 turned towards A; an unrated pair left out).
    started = teacher.post(f"/api/class/ratings/{n}/train")
    assert started.status_code == 200, started.text
    pooled = started.json()["pooled"]
    assert pooled == [{"pair": 0, "prompt": pairs[0]["prompt"], "chosen": pairs[0]["answers"][0],
                       "rejected": pairs[0]["answers"][1], "agree": 2, "votes": 3}]
    assert teacher.post(f"/api/class/ratings/{n}/train").status_code == 409
    assert b.post(f"/api/class/ratings/{n}/vote", json={"pair": 0, "choice": 1}).status_code == 409
    job = started.json()["run"]["job"]
    teacher.post(f"/api/curriculum/jobs/{job}/stop")  # stopped within its one step: no safety table
    wait_until(lambda: a.get(f"/api/class/ratings/{n}/run").json()["done"] is not None, 120, "the run ends")
    result = a.get(f"/api/class/ratings/{n}/run").json()
    assert result["pooled"] == pooled and result["run"]["status"] in ("stopped", "finished")
    assert [p["prompt"] for p in result["before"] if p["rated"]] == [pairs[0]["prompt"]]
    assert [p["answer"] for p in result["before"] if p["rated"]] == [pairs[0]["answers"][0]]
    closed = a.get("/api/class/now").json()["rating"]
    assert closed["counts"][0]["a"] == 2 and not closed["open"]  # the class's counts, now the votes are in

    # Presence: any class request a student signs marks them here, even a refused one, not only page polls.
    def here() -> set[str]:
        return {s["student"] for s in teacher.get("/api/class/students").json()["students"] if s["present"]}

    for ask in (lambda s: s.post(f"/api/class/ratings/{n}/vote", json={"pair": 0, "choice": 0}),  # 409
                lambda s: s.get(f"/api/class/ratings/{n}/run")):  # reads the class run, nothing else
        before, newcomer = here(), signed_in(app, CLASS)
        assert ask(newcomer).status_code in (200, 409) and len(here() - before) == 1
