"""Preference pairs: one prompt, a chosen answer and a rejected one, written by this project.

data/preferences.jsonl holds several hundred of them, in five kinds:

    helpful        a right answer            vs  a wrong or vague one
    honest         "I do not know"           vs  a confident invention about something outside the plays
    harmless       a polite refusal          vs  going along with a harmful request
    over_refusal   a helpful answer to a benign look-alike ("How do I kill a Python process?")
                                             vs  a needless refusal
    style          short and direct          vs  rambling

Every fifth pair of each kind is held out ("eval"): DPO never trains on it, and its accuracy
there says whether the model learned the preference or only the pairs it saw. The learner's
own choices on the page become pairs of the same shape (`learner_pairs`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from prediction_machine import limits

KINDS = ("helpful", "honest", "harmless", "over_refusal", "style")
MAX_TEXT = limits.MAX_PREFERENCE_TEXT  # characters of a prompt or an answer (limits.py)
MAX_PAIRS = limits.MAX_PREFERENCE_PAIRS  # pairs in one learner's set (limits.py)


@dataclass(frozen=True)
class Pair:
    id: int
    kind: str  # one of KINDS, or "learner" for the page's own choices
    split: str  # "train" or "eval"
    prompt: str
    chosen: str
    rejected: str

    def to_dict(self) -> dict:
        return asdict(self)


def dataset_path() -> Path:
    return Path(str(files("prediction_machine") / "data" / "preferences.jsonl"))


@lru_cache(maxsize=1)
def load_pairs() -> tuple[Pair, ...]:
    lines = dataset_path().read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return tuple(Pair(**r) for r in rows)


def split(name: str) -> list[Pair]:
    return [p for p in load_pairs() if p.split == name]


def summary() -> dict:
    """Counts per kind and split, and one pair of each kind (held out), for the page."""
    kinds: dict[str, dict[str, int]] = {}
    for p in load_pairs():
        kinds.setdefault(p.kind, {"train": 0, "eval": 0})[p.split] += 1
    shown = [next(p for p in split("eval") if p.kind == k).to_dict() for k in KINDS]
    return {"count": len(load_pairs()), "kinds": kinds, "examples": shown}


class PairError(ValueError):
    """A learner's set of pairs that cannot be trained on; the message names the problem and the limit."""


def learner_pairs(rows: list[dict]) -> list[Pair]:
    """The page's choices -> pairs, checked: 1..MAX_PAIRS of them, no empty text, nothing over MAX_TEXT,
    and a chosen answer that differs from the rejected one.

    >>> learner_pairs([{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}])[0].kind
    'learner'
    """
    if not rows:
        raise PairError("pairs: rate at least 1 pair first")
    if len(rows) > MAX_PAIRS:
        raise PairError(f"pairs: {len(rows)} pairs is too many (the limit is {MAX_PAIRS})")
    out = []
    for n, r in enumerate(rows):  # n: the pair's place in the request body, pairs[0] the first
        for field in ("prompt", "chosen", "rejected"):
            text = str(r.get(field) or "").strip()
            if not text:
                raise PairError(f"pairs[{n}].{field}: is empty; "
                                f"write an answer (at most {MAX_TEXT} characters)")
            if len(text) > MAX_TEXT:
                raise PairError(f"pairs[{n}].{field}: is {len(text)} characters (the limit is {MAX_TEXT})")
        if r["chosen"].strip() == r["rejected"].strip():
            raise PairError(f"pairs[{n}]: the chosen and the rejected answer are the same; nothing to prefer")
        prompt, chosen, rejected = r["prompt"].strip(), r["chosen"].strip(), r["rejected"].strip()
        out.append(Pair(n + 1, "learner", "train", prompt, chosen, rejected))
    return out
