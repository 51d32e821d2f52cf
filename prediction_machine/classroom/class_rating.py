"""A class rating round: the class aligns one model together.

"You are the human" (training/curriculum/rating.py) is one learner rating answers alone. In a class,
the teacher opens a rating round and the whole class rates THE SAME pairs:

1. `draw_pairs`: the chat model answers each of the teacher's prompts twice (rating.sample_pair,
   the alignment section's own drawing), once, on the server, for the whole class;
2. each student picks the better answer of every pair on their own page (`RatingRound.vote`, one
   vote per student per pair, keyed by whoever the caller vouches for: the web layer's signed id);
3. the teacher's screen shows, pair by pair, how far the class agreed ("14 of 20 chose A");
4. `pooled`: the class's pairs, one per pair the class rated, turned the way most students voted.
   A tie, or a pair nobody rated, is left out: the class did not choose. Every vote counts once,
   through the majority; the counts beside each pair show how many disagreed;
5. `class_run`: ONE DPO run (rating.learner_dpo, the learner's own short run) on exactly those
   pairs, then the safety table of the model it made beside the model it started from.

Worked example: 20 students rate pair 0 (answers A, B): 14 choose A, 6 choose B. Pooled: chosen A,
rejected B, agreement 14 of 20 (70%). A pair with 10 and 10 trains nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prediction_machine.training.curriculum import dpo, rating, safety
from prediction_machine.training.curriculum.loop import Event


class RatingError(Exception):
    """A refused vote or run; `kind` is "closed", "pair", "full" or "trained" (the web picks the status)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class RatedPair:
    prompt: str
    a: str  # answer A, as the model wrote it
    b: str  # answer B: a second draw that differs from A
    seed: int  # rating.sample_pair's seed: the same model, prompt, seed and temperature draw them again
    cut: tuple[bool, bool] = (False, False)  # each answer cut at rating.ANSWER_TOKENS? (pages add "…")


@dataclass
class RatingRound:
    number: int
    pairs: list[RatedPair]
    temperature: float
    cap: int = 5000  # votes kept; later ones are refused ("full")
    started: float = field(default_factory=time.time)
    open: bool = True
    votes: dict[tuple[str, int], int] = field(default_factory=dict)  # (student, pair) -> 0 (A) or 1 (B)
    job: str | None = None  # the class run's job id, once the teacher started it
    folder: str | None = None  # ... and its run folder's name
    trained: list[dict] | None = None  # the pooled pairs that run was given, exactly

    def __post_init__(self):
        self.lock = threading.Lock()

    def vote(self, student: str, pair: int, choice: int) -> None:
        """Record (or change, while the round is open) one student's choice on one pair."""
        with self.lock:
            if not self.open:
                raise RatingError("closed", f"rating round {self.number} is over: the class's votes are in")
            if not 0 <= pair < len(self.pairs):
                raise RatingError("pair", f"pair: this round has {len(self.pairs)} pairs, numbered from 0 "
                                          f"to {len(self.pairs) - 1}")
            if (student, pair) not in self.votes and len(self.votes) >= self.cap:
                raise RatingError("full", f"rating round {self.number} holds at most {self.cap} votes")
            self.votes[(student, pair)] = choice

    def of(self, student: str) -> dict[int, int]:
        """One student's own choices: pair -> 0 (A) or 1 (B)."""
        with self.lock:
            return {p: c for (s, p), c in self.votes.items() if s == student}

    def counts(self) -> list[tuple[int, int]]:
        """Per pair: (votes for A, votes for B)."""
        out = [[0, 0] for _ in self.pairs]
        with self.lock:
            for (_, p), c in self.votes.items():
                out[p][c] += 1
        return [(a, b) for a, b in out]

    def voters(self) -> int:
        with self.lock:
            return len({s for s, _ in self.votes})

    def pooled(self) -> list[dict]:
        """The class's pairs for DPO: each pair the way most students voted; ties and unrated pairs left out.

        >>> r = RatingRound(1, [RatedPair("Hi?", "Hello.", "Go away.", 0)], 1.0)
        >>> for s, c in (("x", 0), ("y", 0), ("z", 1)): r.vote(s, 0, c)
        >>> r.pooled()[0]["chosen"], r.pooled()[0]["agree"], r.pooled()[0]["votes"]
        ('Hello.', 2, 3)
        """
        rows = []
        for n, (pair, (a, b)) in enumerate(zip(self.pairs, self.counts(), strict=True)):
            if a == b:
                continue  # nobody rated it, or the class split evenly: it did not choose
            chosen, rejected = (pair.a, pair.b) if a > b else (pair.b, pair.a)
            rows.append({"pair": n, "prompt": pair.prompt, "chosen": chosen, "rejected": rejected,
                         "agree": max(a, b), "votes": a + b})
        return rows

    def close(self) -> None:
        with self.lock:
            self.open = False

    def start_run(self, start: Callable[[list[dict]], tuple[str, str]]) -> list[dict]:
        """Close the votes and start the round's one run: start(pooled) -> (job id, folder name).

        A second start is refused ("trained"): the class trains one model per round.
        """
        with self.lock:
            if self.job is not None:
                raise RatingError("trained", f"rating round {self.number} already trained its one run "
                                             f"({self.job}); open a new round to train again")
            self.open = False
        rows = self.pooled()
        if not rows:
            raise RatingError("pair", "pairs: no pair has a majority yet (every pair is unrated or tied); "
                                      "wait for the class's votes")
        job, folder = start(rows)
        with self.lock:
            self.job, self.folder, self.trained = job, folder, rows
        return rows


def draw_pairs(model, tok, prompts: list[str], seed: int, temperature: float,
               context: int) -> list[RatedPair]:
    """Two answers per prompt from the chat model, once, for the whole class.

    A prompt whose two draws came out the same (or empty), or whose prompt and answer would not fit
    the model's context for training, gives no pair: there is nothing to choose between there.
    """
    out = []
    for n, prompt in enumerate(prompts):
        d = rating.sample_pair(model, tok, prompt, seed + n, temperature)
        a, b = d["answers"]
        if not a or not b or a == b:
            continue
        if max(len(dpo.encode(tok, prompt, x)[0]) for x in (a, b)) > context:
            continue
        out.append(RatedPair(prompt, a, b, seed + n, tuple(d["cut"])))
    return out


def class_run(sft_folder: Path, folder: Path, rows: list[dict], cfg: dpo.DPOConfig,
              should_stop: Callable[[], bool] | None = None, should_pause: Callable[[], bool] | None = None,
              sft_name: str = "shakespeare-chat") -> Iterator[Event]:
    """The class's one DPO run on its pooled pairs, then its safety table beside the starting model.

    The run is rating.learner_dpo (the learner's own run, before and after measured on the rated
    prompts and on unrated ones); the safety table (safety.table) is measured in the same job, so it
    waits its turn with the training, and the job's last event is still the run's "done".
    """
    pairs = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows]
    done = None
    for name, data in rating.learner_dpo(sft_folder, folder, pairs, cfg, should_stop, should_pause,
                                         sft_name=sft_name):
        if name == "done":
            done = data
            continue
        yield name, data
    if not (should_stop and should_stop()):
        table = safety.table({sft_name: sft_folder, Path(folder).name: Path(folder)})
        yield "safety", table
    if done is not None:
        yield "done", done


class RatingBook:
    """The class's rating rounds: the latest one only (a new one replaces it; its run stays on disk)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.count = 0
        self.latest: RatingRound | None = None

    def start(self, make: Callable[[int], RatingRound]) -> RatingRound:
        with self.lock:
            self.count += 1
            number = self.count
        new = make(number)  # the model writes the answers outside the lock
        with self.lock:
            if self.latest is not None:
                self.latest.close()
            self.latest = new
        return new

    def get(self, number: int) -> RatingRound | None:
        with self.lock:
            latest = self.latest
        return latest if latest is not None and latest.number == number else None

