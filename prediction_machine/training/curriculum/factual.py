"""Factual accuracy: does the chat model answer questions about the plays that it was not trained on?

The fine-tuning set holds out one wording of each fact ("Name Hamlet's mother." is held out,
"Who is Hamlet's mother?" is trained on). The held-out questions are new sentences, not new
facts: a model this small can learn to read a question it has not seen, but it cannot know a
fact nobody taught it (UNSEEN below, measured too, shows that honestly).

The rule, fixed and simple: lower-case both answers, drop punctuation, and take the reference's
first clause (up to the first comma, semicolon or full stop) as its key. The model's greedy answer
is right when it starts with that key.

    reference "Gertrude, the Queen of Denmark."  key "gertrude"
    answer    "Gertrude."                        right
    answer    "Miranda."                         wrong
"""

from __future__ import annotations

import re

from prediction_machine.inference.tokenizer import Tokenizer
from prediction_machine.model.transformer import Transformer
from prediction_machine.training.curriculum import finetune as ft

# Facts from the plays that appear in no training data: the model cannot know these.
UNSEEN = (
    ("Who is Hero's father?", "Leonato."),
    ("Who is Bassanio's servant?", "Leonardo."),
    ("Who is Macduff's wife?", "Lady Macduff."),
    ("Where is As You Like It set?", "In the Forest of Arden."),
    ("Who kills Claudius?", "Hamlet."),
    ("Who is Viola's brother?", "Sebastian."),
)


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9 ]", " ", text.lower()).split()


def key(reference: str) -> list[str]:
    """>>> key("Gertrude, the Queen of Denmark.")
    ['gertrude']
    """
    return words(re.split(r"[,;.]", reference, maxsplit=1)[0])


def is_right(answer: str, reference: str) -> bool:
    k = key(reference)
    return bool(k) and words(answer)[: len(k)] == k


def accuracy(model: Transformer, tok: Tokenizer, pairs: list[tuple[str, str]] | None = None) -> dict:
    """Greedy answers to the held-out questions about the plays (or `pairs`), each judged by is_right."""
    if pairs is None:
        pairs = [(e.user, e.assistant) for e in ft.split("eval") if e.kind == "plays"]
    model.eval()
    rows = [{"question": q, "reference": r, "answer": (a := ft.answer(model, tok, q)),
             "right": is_right(a, r)}
            for q, r in pairs]
    right = sum(r["right"] for r in rows)
    return {"accuracy": right / len(rows) if rows else 0.0, "right": right, "count": len(rows), "rows": rows}
