"""The teacher's CSV files: the class's progress, every answer of the remembered rounds, and the class
rating round's votes, pair by pair.

A cell a student typed (a nickname, a guess) may begin with = + - @, which a spreadsheet would
run as a formula; such a cell gets a leading apostrophe, so it is shown as the text it is.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from prediction_machine.classroom.class_rating import RatingRound
from prediction_machine.classroom.roster import Roster
from prediction_machine.classroom.rounds import Round

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value) -> str:
    """A value as a CSV cell that a spreadsheet shows as text: "=1+1" -> "'=1+1", 3 -> "3"."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _csv(header: list[str], rows: Iterable[list]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return out.getvalue()


def progress_csv(roster: Roster) -> str:
    """One row per student and section they reported; a student with no progress yet gets one empty row."""
    rows = []
    for s in roster.everyone():
        sections = s.progress.items() or [("", None)]
        for section, p in sections:
            rows.append([s.public, s.nickname, section, "" if p is None else int(p.tour_done),
                         "" if p is None else p.questions_right, "" if p is None else p.questions_total])
    return _csv(["student", "nickname", "section", "tour_done", "questions_right", "questions_total"], rows)


def rounds_csv(rounds: list[Round], roster: Roster) -> str:
    """One row per answer: the round and its settings, who answered, the guess, the seed and the draw."""
    rows = []
    for r in rounds:
        for a in list(r.answers):
            who = roster.public_name(a.student)
            rows.append([r.number, r.prompt, r.params.temperature, r.params.top_p, who, a.guess, a.seed,
                         a.token, a.text, f"{a.prob:.6g}"])
    header = ["round", "prompt", "temperature", "top_p", "student", "guess", "seed", "token_id", "token",
              "probability"]
    return _csv(header, rows)


def direction(a: int, b: int) -> str:
    """Which way a pair trains, by the class's majority (class_rating.RatingRound.pooled's rule):
    (14, 6) -> "A over B", (2, 5) -> "B over A", (3, 3) -> "left out: tie", (0, 0) -> "left out: unrated"."""
    if a == b:
        return "left out: unrated" if a == 0 else "left out: tie"
    return "A over B" if a > b else "B over A"


def ratings_csv(rating: RatingRound | None) -> str:
    """One row per pair of the class rating round: its prompt and answers, the class's counts and the
    direction it trains (or trained, once the run started: the votes closed then).

    Only the counts leave the server, never who chose what: on the teacher's screen, as on the students'
    pages, a pair shows how many chose each answer and no one's name.
    """
    rows = []
    if rating is not None:
        for n, (pair, (a, b)) in enumerate(zip(rating.pairs, rating.counts(), strict=True)):
            rows.append([rating.number, n, pair.prompt, pair.a, pair.b, rating.temperature, pair.seed, a, b,
                         direction(a, b), rating.folder or ""])
    header = ["rating_round", "pair", "prompt", "answer_a", "answer_b", "temperature", "seed", "votes_a",
              "votes_b", "trains", "run"]
    return _csv(header, rows)
