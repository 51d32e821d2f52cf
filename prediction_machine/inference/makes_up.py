"""Why a prediction machine makes things up: the guide's demonstrations, each computed live.

A language model is trained to continue text the way its training text continues. Asked a question,
it produces a likely answer, not a checked one: the shape of an answer ("Hamlet's mother is a ...")
can be far more probable than any particular fact. The functions here show that, and what helps:

- `answer`: the greedy answer, each token with the model's own probability and the alternatives it
  beat. With `context`, a sentence stating the fact goes in the prompt before the question: the
  model then copies from its context instead of recalling from its weights (context beats memory).
- `samples`: the same question sampled several times at each of a few temperatures; a lower
  temperature keeps the draws nearer the most likely answer.
- `dont_know`: where "I do not know." comes from. No model says it by itself: it is taught, by
  examples in the fine-tuning data or preferred answers in the preference data. It counts those,
  and measures how often a model actually says it to the preference data's "honest" prompts.

Questions from calibration.py's sets are judged by that set's rule; any other question is answered
but not judged (nothing here knows its answer).
"""

from __future__ import annotations

from prediction_machine import limits
from prediction_machine.inference import calibration
from prediction_machine.inference.generation import generate
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.training.curriculum import finetune as ft
from prediction_machine.training.curriculum import preferences

ANSWER_TOKENS = 24  # enough for a short made-up sentence; the page shows every one
ALTERNATIVES = 3  # the runners-up shown under each token
TEMPERATURES = (1.0, 0.3)
SAMPLES = 6  # answers per temperature
SAMPLE_TOKENS = 16  # per sampled answer: the table shows where each one starts
DONT_KNOW = ("i do not know", "i don't know", "i dont know")
# Limits of one request, declared in limits.py: characters of a question and of its context, answers per
# temperature, and new tokens per answer.
MAX_QUESTION, MAX_CONTEXT = limits.MAX_QUESTION, limits.MAX_QUESTION_CONTEXT
MAX_SAMPLES, MAX_NEW_TOKENS = limits.MAX_SAMPLES, limits.MAX_ANSWER_TOKENS


def user_text(question: str, context: str | None) -> str:
    return f"{context}\n{question}" if context else question


def verdict(lm, question: str, text: str) -> dict | None:
    """Right or wrong by the rule of the set that holds this question (the model's own set first, see
    calibration.set_for); None for a question of the learner's own."""
    found = calibration.find(question, calibration.set_for(lm.name))
    if found is None:
        return None
    name, q = found
    return {"set": name, "right": calibration.is_right(name, text, q), "accepted": list(q.answers),
            "fact": q.fact, "rule": calibration.RULES[name]}


def answer(lm, question: str, context: str | None = None, max_new_tokens: int = ANSWER_TOKENS) -> dict:
    """The greedy answer, token by token: {text, prob, alternatives} per token, the model's own
    probabilities (softmax at temperature 1). With `context`, the fact is given in the prompt."""
    ids = lm.prompt_ids(user_text(question, context))
    tok = lm.tokenizer
    tokens = []
    for step in generate(lm.decoder, ids, SamplingParams(temperature=0.0), max_new_tokens, lm.stop_ids,
                         top_n=ALTERNATIVES + 1):
        if step.finish == "stop":
            break
        rows = [r for r in step.prediction.rows if r.id != step.id][:ALTERNATIVES]
        tokens.append({**tok.token(step.id).to_dict(), "prob": step.model_prob,
                       "alternatives": [{"text": tok.token(r.id).text, "prob": r.model_prob} for r in rows]})
    text = tok.decode([t["id"] for t in tokens])
    return {"model": lm.shown_name, "question": question, "context": context, "prompt_tokens": len(ids),
            "answer": text, "tokens": tokens, "verdict": verdict(lm, question, text),
            "first_token_probability": tokens[0]["prob"] if tokens else None}


def samples(lm, question: str, context: str | None = None, temperatures: tuple[float, ...] = TEMPERATURES,
            n: int = SAMPLES, max_new_tokens: int = SAMPLE_TOKENS, seed: int = 0) -> dict:
    """n sampled answers at each temperature (seeds seed..seed+n-1, the same at every temperature), all
    drawn together in one batch; each is the answer generate() gives with that seed."""
    ids = lm.prompt_ids(user_text(question, context))
    runs = [(t, s) for t in temperatures for s in range(seed, seed + n)]
    params = [SamplingParams(temperature=t) for t, _ in runs]
    drawn = calibration.answers_together(lm.decoder, [ids] * len(runs), max_new_tokens, lm.stop_ids, params,
                                         [s for _, s in runs])
    rows = []
    for t in temperatures:
        mine = [(s, lm.tokenizer.decode(a["ids"])) for (tt, s), a in zip(runs, drawn, strict=True) if tt == t]
        answers = [{"seed": s, "answer": text, "verdict": verdict(lm, question, text)} for s, text in mine]
        judged = [a["verdict"]["right"] for a in answers if a["verdict"]]
        rows.append({"temperature": t, "answers": answers, "right": sum(judged) if judged else None,
                     "distinct": len({a["answer"] for a in answers})})
    return {"model": lm.shown_name, "question": question, "context": context, "samples": n, "rows": rows}


def said_dont_know(text: str) -> bool:
    """>>> said_dont_know("I do not know."), said_dont_know(" I don't know that."), said_dont_know("Iago.")
    (True, True, False)
    """
    return text.strip().lower().replace("\u2019", "'").startswith(DONT_KNOW)


def data_counts() -> dict:
    """How often "I do not know" is the taught answer: in the fine-tuning conversations and among the
    preference pairs' chosen answers, by split."""
    sft = [e for e in ft.load_examples() if said_dont_know(e.assistant)]
    chosen = [p for p in preferences.load_pairs() if said_dont_know(p.chosen)]
    return {"finetune": {"examples": len(ft.load_examples()), "dont_know": len(sft)},
            "preferences": {"pairs": len(preferences.load_pairs()), "dont_know": len(chosen),
                            "train": sum(p.split == "train" for p in chosen),
                            "eval": sum(p.split == "eval" for p in chosen),
                            "example": chosen[0].prompt if chosen else None}}


def dont_know(lm, max_new_tokens: int = 12) -> dict:
    """The preference data's "honest" prompts (the chosen answer is "I do not know."), each answered
    greedily by `lm`: how often does it say it? Train and held-out prompts counted apart."""
    pairs = [p for p in preferences.load_pairs() if said_dont_know(p.chosen)]
    room = lm.config.max_seq_len - max_new_tokens
    prompts = [lm.prompt_ids(p.prompt)[-room:] for p in pairs]
    answers = calibration.answers_together(lm.decoder, prompts, max_new_tokens, lm.stop_ids)
    rows = [{"prompt": p.prompt, "split": p.split, "answer": (text := lm.tokenizer.decode(a["ids"])),
             "dont_know": said_dont_know(text)} for p, a in zip(pairs, answers, strict=True)]
    said = {s: sum(r["dont_know"] for r in rows if r["split"] == s) for s in ("train", "eval")}
    return {"model": lm.shown_name, "count": len(rows), "dont_know": sum(said.values()), "by_split": said,
            "rule": "said = the answer starts with \"I do not know\" (or \"I don't know\"), ignoring case",
            "data": data_counts(), "rows": rows}


_measured: dict[tuple, dict] = {}


def cached_dont_know(lm) -> dict:
    """dont_know(), once per model in this process (greedy answers of the same weights do not change)."""
    key = (id(lm.decoder), lm.name)
    if key not in _measured:
        _measured[key] = dont_know(lm)
    return _measured[key]
