"""A round: the class against the model. "What word comes next?" - every student guesses, then draws.

The teacher gives a prompt and sampling settings. The model reads the prompt once; its next-token
distribution p (after temperature and top-p, exactly what inference/sampling.py would draw from)
is kept for the round. Each student types a guess, then draws ONE token from p with a seed of
their own, drawn here. The draw is `sampling.draw` with that seed, so anyone can draw it again
(`Round.draw(seed)`, or POST /api/sample/preview with the same prompt, settings and seed).

The teacher's screen compares three things word by word (`Round.tally`): the class's guesses,
the class's draws, and p. As draws come in, their histogram closes in on p; distance.py measures
how far it still is, and how far chance alone would leave it.

Words are compared by `word_key`: a token's text without its surrounding spaces, in lower case,
so the typed guess "Paris" meets the token " Paris".
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from prediction_machine.classroom import distance
from prediction_machine.inference.sampling import (
    Draw,
    SamplingParams,
    distribution,
    draw,
    line_up,
    make_generator,
)
from prediction_machine.inference.walkthrough import next_logits

SEED_LIMIT = 2**53  # seeds stay exact as JSON numbers
TOP_TOKENS = 256  # the most likely tokens whose words the tally knows without decoding all 49k
WORDS_SHOWN = 8  # the model's likeliest words always shown on the teacher's bars
EXTRA_SHOWN = 4  # ... plus the class's most drawn and most guessed words, when not among them


def word_key(text: str) -> str:
    """How a guess and a token are compared: " Paris" -> "paris", "Paris " -> "paris", "\\n" -> ""."""
    return text.strip().casefold()


class RoundError(Exception):
    """A refused answer or start; `kind` is "closed", "limit" or "full" (the web layer picks the status)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Answer:
    student: str  # whoever the caller vouches for (the web layer: the signed client id)
    guess: str  # what the student typed
    seed: int  # the seed of their draw: Round.draw(seed) gives the same token again
    token: int  # the token drawn
    text: str  # its text
    prob: float  # its probability under the round's distribution
    at: float  # time.time() when it was answered


@dataclass
class Round:
    number: int
    prompt: str
    params: SamplingParams
    probs: torch.Tensor  # (V,) the distribution every draw of this round uses
    decode: Callable[[int], str]  # token id -> its text
    answers_per_student: int = 1
    cap: int = 1000  # answers kept; later ones are refused ("full")
    started: float = field(default_factory=time.time)
    open: bool = True
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self):
        self.lock = threading.Lock()
        self.by_student: Counter = Counter()
        p, ids = self.probs.topk(min(TOP_TOKENS, self.probs.shape[-1]))  # (k,), most likely first
        self.top = [(int(i), float(q), self.decode(int(i))) for i, q in zip(ids, p, strict=True) if q > 0]
        # sampling.draw lines all 49k tokens up on every call (tens of ms on a busy CPU); a round's
        # distribution never changes, so it is lined up once here and each student's draw is one search.
        self.lined = line_up(self.probs)

    def draw(self, seed: int) -> Draw:
        """The token this seed draws in this round: always the same one, sampling.draw's with that seed."""
        return draw(self.probs, None if self.params.greedy else make_generator(seed), self.lined)

    def answer(self, student: str, guess: str, seed: int | None = None) -> Answer:
        """Record a guess and make the student's draw. Raises RoundError when the round refuses it."""
        with self.lock:
            if not self.open:
                raise RoundError("closed", f"round {self.number} is over; wait for the teacher's next one")
            if self.by_student[student] >= self.answers_per_student:
                raise RoundError("limit", f"you have drawn {self.answers_per_student} time(s) in this round, "
                                          f"the limit of answers per student per round")
            if len(self.answers) >= self.cap:
                raise RoundError("full", f"round {self.number} holds at most {self.cap} answers")
            seed = secrets.randbelow(SEED_LIMIT) if seed is None else seed
            d = self.draw(seed)
            a = Answer(student, guess, seed, d.id, self.decode(d.id), d.prob, time.time())
            self.answers.append(a)
            self.by_student[student] += 1
            return a

    def stop(self) -> None:
        with self.lock:
            self.open = False

    def of(self, student: str) -> list[Answer]:
        with self.lock:
            return [a for a in self.answers if a.student == student]

    def tally(self) -> dict:
        """The teacher's three bars, word by word, and how far the draws are from the model.

        Each row: a word, how many guessed it, how many drew it, and its probability under the
        round's distribution (summed over the tokens that spell it). The `*_other` totals hold
        everything not in a row, so every column adds up to the whole class.
        """
        with self.lock:
            answers = list(self.answers)
        guessed = Counter(word_key(a.guess) for a in answers)
        drawn = Counter(word_key(a.text) for a in answers)
        model: Counter = Counter()
        known = set()
        for i, p, text in self.top:
            model[word_key(text)] += p
            known.add(i)
        for i in {a.token for a in answers} - known:  # a rare token someone drew: its own probability
            model[word_key(self.decode(i))] += float(self.probs[i])
        shown = [w for w, _ in model.most_common(WORDS_SHOWN)]
        for counts in (drawn, guessed):
            shown += [w for w, _ in counts.most_common(EXTRA_SHOWN) if w not in shown]
        shown.sort(key=lambda w: (-model[w], -drawn[w], -guessed[w]))
        n = len(answers)
        rows = [{"word": w, "guesses": guessed[w], "draws": drawn[w], "prob": model[w]} for w in shown]
        draw_ids = Counter(a.token for a in answers)
        return {
            "answers": n,
            "rows": rows,
            "guesses_other": n - sum(r["guesses"] for r in rows),
            "draws_other": n - sum(r["draws"] for r in rows),
            "prob_other": max(1.0 - sum(r["prob"] for r in rows), 0.0),
            "tv": distance.total_variation(draw_ids, self.probs) if n else None,
            "expected_tv": distance.expected_tv(self.probs, n) if n else None,
            "tv_bound": distance.tv_bound(self.probs, n) if n else None,
        }


def from_model(number: int, prompt: str, model, ids: list[int], params: SamplingParams,
               decode: Callable[[int], str], **limits) -> Round:
    """A round on the model's next-token distribution after `ids`: one forward pass, kept for every draw."""
    logits = next_logits(model, ids)  # (V,) the same cached logits /api/sample/preview reads
    return Round(number, prompt, params, distribution(logits, params), decode, **limits)


class RoundBook:
    """The rounds of one class: at most one open, the latest `kept` remembered, `per_hour` started an hour."""

    def __init__(self, per_hour: int = 30, kept: int = 20):
        self.per_hour, self.lock = per_hour, threading.Lock()
        self.rounds: deque[Round] = deque(maxlen=kept)
        self.starts: deque[float] = deque()
        self.count = 0

    def start(self, make: Callable[[int], Round]) -> Round:
        """Close the open round and start a new one, made by make(number). RoundError past per_hour."""
        with self.lock:
            now = time.time()
            while self.starts and now - self.starts[0] > 3600:
                self.starts.popleft()
            if len(self.starts) >= self.per_hour:
                wait = int(3600 - (now - self.starts[0])) + 1
                raise RoundError("limit", f"at most {self.per_hour} rounds an hour; the next may start in "
                                          f"{wait} s")
            self.starts.append(now)
            self.count += 1
            number = self.count
        new = make(number)  # the model reads the prompt outside the lock
        with self.lock:
            for r in self.rounds:
                r.stop()
            self.rounds.append(new)
        return new

    def current(self) -> Round | None:
        with self.lock:
            return self.rounds[-1] if self.rounds else None

    def get(self, number: int) -> Round | None:
        with self.lock:
            return next((r for r in self.rounds if r.number == number), None)

    def all(self) -> list[Round]:
        with self.lock:
            return list(self.rounds)
