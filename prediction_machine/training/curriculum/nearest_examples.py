"""Where did a chat answer come from? The nearest fine-tuning conversations and preference pairs.

The measure is word overlap, not meaning: the Jaccard similarity of the two texts' sets of
lower-cased words, each word weighted by how rare it is among the training questions (its
inverse document frequency), so that "who", "is" and "the" count little and names count much:

    sum of the weights of the words both share / sum of the weights of the words either has

1.0 is the same words, 0 none in common. "Who is Hero's father?" and "Who is Ophelia's father?"
share three words of five but only the common ones, so they are not the same question reworded.
Word overlap is what a tiny model can plausibly copy from, and a reader can check it by eye.

A question is "seen" when a training question has exactly its words, "reworded" when the
nearest training question shares at least REWORDED of them, and "new" otherwise. The fine-tuning
set holds out one wording of each fact (its eval split), so the chat model's accuracy on
reworded questions and on new facts is measured separately (factual.py).
"""

from __future__ import annotations

import math
from collections import Counter
from functools import lru_cache

from prediction_machine.training.curriculum import corpus_index, preferences
from prediction_machine.training.curriculum import finetune as ft

REWORDED = 0.6  # measured: rewordings of one fact score 0.63-0.65; a new fact in a trained frame 0.3-0.5
SHOWN = 3  # nearest conversations and pairs listed


@lru_cache(maxsize=1)
def _weights() -> tuple[dict[str, float], float]:
    """Each word's weight, log(1 + N / (1 + questions holding it)), and the weight of an unseen word."""
    questions = [e.user for e in ft.load_examples()] + [p.prompt for p in preferences.load_pairs()]
    df = Counter(w for q in questions for w in set(corpus_index.words(q)))
    n = len(questions)
    return {w: math.log(1 + n / (1 + c)) for w, c in df.items()}, math.log(1 + n)


def similarity(a: str, b: str) -> float:
    """Rarity-weighted Jaccard similarity of two texts' word sets.

    >>> round(similarity("Who is Hamlet's mother?", "Who was Hamlet's mother?"), 2)
    0.65
    """
    weights, unseen = _weights()
    wa, wb = set(corpus_index.words(a)), set(corpus_index.words(b))
    # fsum is exact whatever a set's order (which changes with Python's hash seed), so the same
    # words give exactly 1.0
    union = math.fsum(weights.get(w, unseen) for w in wa | wb)
    return math.fsum(weights.get(w, unseen) for w in wa & wb) / union if union else 0.0


def nearest(question: str, answer: str = "") -> dict:
    """The fine-tuning conversations and preference pairs nearest to a question and its answer,
    and whether the question is worded like a training question."""
    def score(q: str, a: str) -> float:  # the question counts most; the answer breaks ties
        return similarity(question, q) + (0.25 * similarity(answer, a) if answer else 0.0)

    convs = sorted(ft.load_examples(), key=lambda e: -score(e.user, e.assistant))[:SHOWN]
    pairs = sorted(preferences.load_pairs(), key=lambda p: -score(p.prompt, p.chosen))[:SHOWN]
    trained = ([(e.user, "fine-tuning") for e in ft.split("train")]
               + [(p.prompt, "preference pairs") for p in preferences.split("train")])
    best, where = max(trained, key=lambda t: similarity(question, t[0]))
    s = similarity(question, best)
    wording = "seen" if s == 1.0 else "reworded" if s >= REWORDED else "new"
    return {
        "measure": "word overlap: Jaccard similarity of word sets, rare words weighted more (IDF)",
        "wording": wording, "nearest_training_question": best, "found_in": where, "similarity": s,
        "reworded_at": REWORDED,
        "conversations": [{"id": e.id, "kind": e.kind, "split": e.split, "user": e.user,
                           "assistant": e.assistant, "similarity": similarity(question, e.user)}
                          for e in convs],
        "pairs": [{**p.to_dict(), "similarity": similarity(question, p.prompt)} for p in pairs],
    }


def where_learned(text: str, model: str = "shakespeare-base", question: str | None = None) -> dict:
    """Everything "where did it learn that" shows for a text a tiny model wrote: its longest verbatim
    matches in the pre-training text with their sources, its memorisation score beside held-out
    text's, and for a chat answer (`question` given) the nearest fine-tuning data.

    `model` is a shipped tiny model's name or a checkpoint folder; a model whose training text is
    not here (SmolLM2) is a ValueError that says why.
    """
    out = corpus_index.index_for(model).source(text)
    out["model"] = str(model)
    if question:
        out["nearest"] = nearest(question, text)
    return out
