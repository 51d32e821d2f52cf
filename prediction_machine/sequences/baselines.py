"""Two honest baselines for each model: counting, no learning beyond that.

A model that does not beat these has learned nothing a table of counts could not hold.
Every count starts at `alpha` (add-alpha smoothing), so an unseen event costs a finite number
of nats instead of infinity. NLL is in nats (natural log), like the training loss.

    >>> round(unigram_nll([[0, 0, 1]], [[0]], vocab=2, alpha=1.0), 3)   # p(0) = 3/5
    0.511
"""

from __future__ import annotations

import math
from collections import Counter


def _probability(counts: Counter, key, total: float, vocab: int, alpha: float) -> float:
    return (counts[key] + alpha) / (total + alpha * vocab)


def unigram_nll(train: list[list[int]], test: list[list[int]], vocab: int, alpha: float = 0.5) -> float:
    """Mean -log p(token) over the test tokens, with p the token's frequency in training."""
    counts = Counter(t for seq in train for t in seq)
    total = sum(counts.values())
    nll = [-math.log(_probability(counts, t, total, vocab, alpha)) for seq in test for t in seq]
    return sum(nll) / len(nll)


def bigram_nll(train: list[list[int]], test: list[list[int]], vocab: int, alpha: float = 0.5) -> float:
    """Mean -log p(token | the token before it); each sequence's first token uses the unigram."""
    pairs = Counter((a, b) for seq in train for a, b in zip(seq, seq[1:], strict=False))
    before = Counter(a for seq in train for a in seq[:-1])
    firsts = Counter(seq[0] for seq in train)
    nll = []
    for seq in test:
        nll.append(-math.log(_probability(firsts, seq[0], len(train), vocab, alpha)))
        for a, b in zip(seq, seq[1:], strict=False):
            nll.append(-math.log(_probability(pairs, (a, b), before[a], vocab, alpha)))
    return sum(nll) / len(nll)


def positional_nll(train: list[list[int]], test: list[list[int]], vocab: int, alpha: float = 0.5) -> float:
    """Mean -log p(token at position i), with p the frequencies seen at position i in training.

    For pixels: each pixel's own grey-level histogram (the corner is nearly always white).
    """
    counts = [Counter(seq[i] for seq in train) for i in range(len(train[0]))]
    nll = [-math.log(_probability(counts[i], t, len(train), vocab, alpha))
           for seq in test for i, t in enumerate(seq)]
    return sum(nll) / len(nll)
