"""Confidence against correctness: is the model more sure of its right answers than of its wrong ones?

Over a fixed set of questions with known answers, the model answers each one greedily, and two
numbers are kept per question:

- confidence: the probability the model gave its answer's first token (softmax at temperature 1,
  the model's own belief, before any sampling setting);
- right or wrong, by a fixed rule that reads the answer's words, not its meaning.

A calibrated model is right about 70% of the time when it is 70% sure. Plotting accuracy per band of
confidence (the reliability diagram) shows how far a model is from that. It is measured, never
assumed: a small model can be confidently wrong, because it learned the shape of an answer
("The capital of Italy is" + a city-like name) more firmly than the fact.

Two question sets, each with its own rule:

- "general" (data/factual_questions.json): plain questions written by this project, each with an
  answer stem ("The capital of Italy is") that the model continues, so its first new token starts
  the fact itself, not "The". Right = the answer holds an accepted form as a whole word, any case.
- "plays": the tiny chat model's facts about Shakespeare's plays, in three kinds: taught (a wording
  it trained on), reworded (a held-out wording of a taught fact) and unseen (a fact it never read).
  Right = training/curriculum/factual.py's rule: the answer starts with the reference's first clause.

The answers of one set are generated together, by the loop that serves a class's generations
(engine/batching.py, run here by engine/together.py): every row decodes in the same pass over the
weights. Greedy decoding picks the same tokens one by one or batched; tests check the numbers
against a plain forward pass.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib.resources import files

from prediction_machine.engine.together import decode_together
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.training.curriculum import factual
from prediction_machine.training.curriculum import finetune as ft

SETS = ("general", "plays")
PLAYS_MODELS = ("shakespeare-base", "shakespeare-chat", "shakespeare-dpo")  # taught the plays' facts
# New tokens per answer: enough for a name or a number after the stem (SmolLM2's tokens are whole
# words), or for the tiny model's first clause (its 512 tokens are mostly pieces of words).
ANSWER_TOKENS = {"general": 10, "plays": 32}
BANDS = 5  # confidence bands of the reliability diagram: 0-20%, 20-40%, ... 80-100%
RULES = {
    "general": "right = the answer contains one of the accepted answers as a whole word, ignoring case",
    "plays": "right = the answer starts with the reference answer's first clause (up to its first comma or "
             "full stop), ignoring case and punctuation",
}


@dataclass(frozen=True)
class Question:
    id: int
    question: str
    answers: tuple[str, ...]  # accepted forms ("general"), or the one reference answer ("plays")
    stem: str = ""  # the start of the answer, given to the model after the chat template
    fact: str = ""  # one sentence stating the answer (for putting it in the prompt)
    kind: str = "written"  # "written", or for the plays: "taught", "reworded", "unseen"


# ----------------------------------------------------------------------------- the question sets


@lru_cache(maxsize=1)
def general_questions() -> tuple[Question, ...]:
    data = json.loads((files("prediction_machine") / "data" / "factual_questions.json").read_text("utf-8"))
    return tuple(Question(q["id"], q["question"], tuple(q["answers"]), q["stem"], q["fact"])
                 for q in data["questions"])


@lru_cache(maxsize=1)
def plays_questions() -> tuple[Question, ...]:
    """Each held-out wording (reworded), the first trained wording of the same fact (taught), and the
    facts no training data holds (unseen)."""
    plays = [e for e in ft.load_examples() if e.kind == "plays"]
    held = [e for e in plays if e.split == "eval"]
    # a fact's wordings sit together in the data: its nearest trained wording with the same answer
    taught = [min((t for t in plays if t.split == "train" and t.assistant == e.assistant),
                  key=lambda t, e=e: abs(t.id - e.id)) for e in held]
    rows = [("taught", e.user, e.assistant) for e in taught]
    rows += [("reworded", e.user, e.assistant) for e in held]
    rows += [("unseen", q, a) for q, a in factual.UNSEEN]
    return tuple(Question(i + 1, q, (a,), fact=a, kind=kind) for i, (kind, q, a) in enumerate(rows))


def question_set(name: str) -> tuple[Question, ...]:
    if name not in SETS:
        raise ValueError(f"question set must be one of {', '.join(SETS)}, not {name!r}")
    return general_questions() if name == "general" else plays_questions()


def set_for(model_name: str) -> str:
    """The shipped tiny models are asked about the plays they were taught; others, the general set."""
    return "plays" if model_name in PLAYS_MODELS else "general"


def find(text: str, prefer: str = "general") -> tuple[str, Question] | None:
    """The set and question whose wording is exactly `text` (ignoring case and outer spaces), if any;
    the set `prefer` is looked in first (a question may be in both)."""
    wanted = text.strip().lower()
    for name in sorted(SETS, key=lambda name: name != prefer):
        for q in question_set(name):
            if q.question.lower() == wanted:
                return name, q
    return None


# ----------------------------------------------------------------------------- the rules


def contains_answer(answer: str, accepted: tuple[str, ...]) -> bool:
    """The "general" rule: an accepted form appears as a whole word (or words), ignoring case.

    >>> contains_answer(" Rome, the eternal city.", ("Rome",)), contains_answer(" Romeo", ("Rome",))
    (True, False)
    >>> contains_answer(" 18 legs", ("8", "eight"))
    False
    """
    return any(re.search(rf"(?<!\w){re.escape(a.lower())}(?!\w)", answer.lower()) for a in accepted)


def is_right(set_name: str, answer: str, q: Question) -> bool:
    if set_name == "plays":
        return factual.is_right(answer, q.answers[0])
    return contains_answer(answer, q.answers)


# ----------------------------------------------------------------------------- answering


def prompt_ids(lm, q: Question, context: str | None = None) -> list[int]:
    """The chat-wrapped question (with `context` before it, if given), then the answer stem."""
    user = f"{context}\n{q.question}" if context else q.question
    return lm.prompt_ids(user) + (lm.tokenizer.encode_ids(q.stem) if q.stem else [])


def answers_together(decoder, prompts: list[list[int]], max_new_tokens: int, stop_ids: set[int],
                     params: list[SamplingParams] | None = None, seeds: list[int] | None = None
                     ) -> list[dict]:
    """Answers to several prompts at once: {ids, probs} per prompt, where probs[i] is the model's own
    probability of ids[i] (temperature 1). An answer stops at a stop id (not kept). Greedy unless
    `params` (one per prompt) say otherwise; row i then draws with its own generator seeded seeds[i].

    They are decoded by the engine's batcher loop (engine/together.py): prompts read together, every
    row advanced in one pass over the weights, each token chosen as generate() chooses it, so each
    answer is the one generate() gives with that seed.
    """
    B = len(prompts)
    params = params or [SamplingParams(temperature=0.0)] * B
    seeds = seeds or [0] * B
    runs = decode_together(decoder, [(p, params[i], max_new_tokens, stop_ids, seeds[i])
                                     for i, p in enumerate(prompts)])
    return [{"ids": [s.id for s in steps if s.finish != "stop"],
             "probs": [s.model_prob for s in steps if s.finish != "stop"]} for steps in runs]


# ----------------------------------------------------------------------------- the chart


def mean(xs: list) -> float | None:
    return sum(xs) / len(xs) if xs else None


def bands(points: list[dict], n: int = BANDS) -> list[dict]:
    """The reliability diagram's bars: for each band of confidence, how many answers, how many right.

    >>> points = [{"confidence": 0.1, "right": False}, {"confidence": 1.0, "right": True}]
    >>> [(b["count"], b["right"]) for b in bands(points, 2)]
    [(1, 0), (1, 1)]
    """
    out = []
    for k in range(n):
        low, high = k / n, (k + 1) / n
        last = k == n - 1  # the top band holds 100% too
        inside = [p for p in points if low <= p["confidence"] < high or (last and p["confidence"] >= high)]
        right = sum(p["right"] for p in inside)
        out.append({"low": low, "high": high, "count": len(inside), "right": right,
                    "accuracy": mean([p["right"] for p in inside]),
                    "mean_confidence": mean([p["confidence"] for p in inside])})
    return out


def calibration(lm, set_name: str = "general", max_new_tokens: int | None = None,
                questions: tuple[Question, ...] | None = None) -> dict:
    """Every question of the set (or `questions` of it) answered greedily: its first-token probability
    and its verdict.

    `lm` is a models.LanguageModel (SmolLM2 or a shipped tiny model). Returns the points, the bands,
    the rule, and two summary numbers: accuracy, and the mean confidence of right and of wrong answers.
    """
    qs = questions or question_set(set_name)
    room = lm.config.max_seq_len - 1
    prompts = [prompt_ids(lm, q)[-room:] for q in qs]
    left = lm.config.max_seq_len - max(len(p) for p in prompts)  # room in the context after the longest
    new = max(1, min(max_new_tokens or ANSWER_TOKENS[set_name], left))
    answers = answers_together(lm.decoder, prompts, new, lm.stop_ids)
    points = []
    for q, a in zip(qs, answers, strict=True):
        text = lm.tokenizer.decode(a["ids"])
        first = lm.tokenizer.token(a["ids"][0]).text if a["ids"] else ""
        points.append({**asdict(q), "answer": text, "first_token": first,
                       "confidence": a["probs"][0] if a["probs"] else 0.0,
                       "right": is_right(set_name, text, q)})
    right = [p["confidence"] for p in points if p["right"]]
    wrong = [p["confidence"] for p in points if not p["right"]]
    return {"model": lm.shown_name, "set": set_name, "rule": RULES[set_name], "answer_tokens": new,
            "count": len(points), "right": len(right), "accuracy": len(right) / len(points),
            "mean_confidence_right": mean(right), "mean_confidence_wrong": mean(wrong),
            "bands": bands(points), "points": points}


_cached: dict[tuple, dict] = {}


def cached_calibration(lm, set_name: str = "general", max_new_tokens: int | None = None) -> dict:
    """calibration(), once per model, set and answer length in this process: greedy answers of the same
    weights are the same answers, so a second visitor (or a reload) need not wait again."""
    key = (id(lm.decoder), lm.name, set_name, max_new_tokens)
    if key not in _cached:
        _cached[key] = calibration(lm, set_name, max_new_tokens)
    return _cached[key]
