"""Prediction: from the last position's logits to a readable table of next-token probabilities.

Pure functions of the logits. The table keeps every intermediate so each step can be shown:
the raw logit, the logit divided by the temperature, the model's own probability, the
probability after the sampling filters, and the running total the random draw is compared
against.

Two probabilities, because they answer two questions:
- `model_prob`: what the model itself believes, the softmax of the raw logits at temperature
  1 with no filter. Two nearly tied logits (25.33 vs 25.24) give two nearly equal numbers.
- `prob`: what the draw used, after temperature, top-k, top-p and min-p. At temperature 0
  it is 1 for the chosen token and 0 for every other, whatever the model believed.

`predict` builds the table of one position; `predict_rows`, what the batcher runs, builds a
whole batch's (B, V) at once, and tests/test_batched_sampling.py holds its rows equal to `predict`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from prediction_machine.inference.sampling import (
    SamplingParams,
    distribution,
    row_sums,
    scale,
)
from prediction_machine.inference.top_tokens import nonzero_count, top_ids
from prediction_machine.limits import GREEDY_BELOW


@dataclass(frozen=True)
class Row:
    id: int
    logit: float  # the model's raw score
    scaled: float  # logit / temperature
    model_prob: float  # the model's own probability: softmax of the raw logits (temperature 1, no filters)
    prob: float  # probability under the sampling settings (what the draw uses)
    cumulative: float  # prob of this row and every row above it

    @property
    def raw_prob(self) -> float:
        """The older name of model_prob, kept for callers that still use it."""
        return self.model_prob


@dataclass(frozen=True)
class Prediction:
    rows: list[Row]  # the top rows, most likely first (by model_prob)
    entropy: float  # of the sampling distribution, in bits: 0 = certain
    raw_entropy: float  # of the model's own distribution (temperature 1), in bits
    mass_outside: float  # probability left for every token not in `rows`
    candidates: int  # how many tokens keep a non-zero probability after the filters


def entropy_bits(probs: torch.Tensor, scaled: torch.Tensor | None = None,
                 best: torch.Tensor | None = None) -> float | list[float]:
    """-sum p log2 p over tokens with p > 0. [0.5, 0.5] -> 1.0; [1, 0] -> 0.0 (a list for (B, V) rows)

    `scaled` (..., V), if given, holds the logits that probs is the softmax of (after the
    temperature: `scaled_logits`; a filter may have set some p to 0 since). Then no token's log is
    taken: for every token whose p is not 0, log p = (scaled - its largest) + log(the largest p), so

        -sum p log p = -sum p (scaled - largest) - log(largest p) * sum p,

    two sums of terms that are never negative (no cancellation) and one log per row. Taking the
    log of all 49k probabilities cost more than the rest of the table (docs/performance.md).

    `best` (..., 1), if given, holds the id of a largest logit of each row (the caller's top-k
    has it). Its scaled logit is the row's largest, and its p is too unless a filter dropped it
    in a tie: read there, the two largest cost no pass over the vocabulary, and are the same numbers.
    """
    p = probs.float()  # (..., V)
    if scaled is None:
        # 0 log 0 = 0: clamping p = 0 to the smallest float keeps its log finite, so 0 x log stays 0.
        logs = p.clamp_min(torch.finfo(torch.float32).tiny).log()  # (..., V)
        bits = -row_sums(p * logs)[..., 0] / math.log(2) + 0.0  # + 0.0 drops -0.0
        return bits.tolist()
    # <= 0; a logit of -inf (a masked token, p = 0) becomes the lowest float, so 0 x it stays 0
    largest = scaled.amax(-1, keepdim=True) if best is None else scaled.gather(-1, best)  # (..., 1)
    largest_p = None if best is None else p.gather(-1, best)  # (..., 1)
    if largest_p is None or bool((largest_p == 0).any()):  # a tie dropped by a filter: look at every token
        largest_p = p.amax(-1, keepdim=True)
    below = (scaled - largest).clamp_min_(torch.finfo(torch.float32).min)  # (..., V)
    sums = (row_sums(below.mul_(p)), largest_p, row_sums(p))  # (..., 1) each
    # The last steps per row in Python floats: the vector units' log serves whole chunks of a tensor
    # and a plain log the rest, so a lone row's log and a batch's could differ in the last bit.
    bits = [-(spread + (math.log(top) if top > 0 else math.nan) * total) / math.log(2) + 0.0
            for spread, top, total in zip(*(t.reshape(-1).tolist() for t in sums), strict=True)]
    return bits if p.dim() > 1 else bits[0]


def scaled_logits(logits: torch.Tensor, params: Sequence[SamplingParams]) -> torch.Tensor:
    """Each row's logits divided by its own temperature, as `distribution` scales them. (B, V) -> (B, V)"""
    return logits / torch.tensor([[max(p.temperature, GREEDY_BELOW)] for p in params])  # (B, V) / (B, 1)


def model_probs(logits: torch.Tensor) -> torch.Tensor:
    """The model's own distribution: softmax at temperature 1, no filters. (B, V) -> (B, V)"""
    return torch.softmax(logits.float(), dim=-1)


def predict(logits: torch.Tensor, params: SamplingParams, k: int = 10,
            probs: torch.Tensor | None = None) -> Prediction:
    """The top k rows of the next-token table, with every intermediate. logits: (V,) for one position.

    `probs`, if given, is `distribution(logits, params)` already computed by the caller.
    """
    logits = logits.float()  # (V,)
    probs = distribution(logits, params) if probs is None else probs  # (V,): what the draw uses
    mine = model_probs(logits)  # (V,): what the model itself believes
    # Rows in the model's own order, so the same tokens stay put while the sliders move.
    top = top_ids(mine[None], k)[0].tolist()  # the same search as the batched table's
    rows, total = [], 0.0
    for i in top:
        logit, prob = float(logits[i]), float(probs[i])
        total += prob
        rows.append(Row(i, logit, scale(logit, params.temperature), float(mine[i]), prob, min(total, 1.0)))
    entropy = entropy_bits(probs, scaled_logits(logits[None], [params])[0])
    raw_entropy = entropy_bits(mine, logits)
    return Prediction(rows, entropy, raw_entropy, max(0.0, 1.0 - total), int(nonzero_count(probs)))


# ----------------------------------------------------------------------------- the batched table
# What the batcher runs for a whole class: the same Predictions as `predict`, row by row.


def predict_rows(logits: torch.Tensor, params: Sequence[SamplingParams], ks: Sequence[int],
                 probs: torch.Tensor, raw: torch.Tensor | None = None, always: bool = False,
                 order: torch.Tensor | None = None,
                 scaled: torch.Tensor | None = None) -> list[Prediction | None]:
    """The table of every row of logits (B, V) whose k is above 0; None for a row that asked for none.

    probs (B, V) is what each row's draw used; raw (B, V), if given, is model_probs(logits).
    order (B, k), if given, is each row's most likely token ids, best first (the caller's top-k of the
    logits); scaled (B, V), if given, is scaled_logits(logits, params), already computed by the caller.
    With `always`, a row with k = 0 still gets its entropies and an empty table.
    """
    logits = logits.float()
    want = [i for i, k in enumerate(ks) if k > 0 or always]
    out: list[Prediction | None] = [None] * len(ks)
    if not want:
        return out
    k_max = min(max(ks[i] for i in want), logits.shape[-1])
    if len(want) == len(ks):  # every row: no copies
        lg, pr, mp = logits, probs, model_probs(logits) if raw is None else raw  # (b, V)
    else:
        index = torch.tensor(want)
        lg, pr = logits[index], probs[index]  # (b, V)
        mp = model_probs(lg) if raw is None else raw[index]  # (b, V)
        order = None if order is None else order[index]
        scaled = None if scaled is None else scaled[index]
    # Order by the model's own preference so the same tokens stay put while sliders move.
    if order is not None and order.shape[-1] >= k_max:
        top = order[:, :k_max]  # (b, k_max)
    else:
        top = top_ids(mp, k_max)  # (b, k_max)
    best = None if order is None else order[:, :1]  # (b, 1): a largest logit of each row
    scaled = scaled_logits(lg, [params[i] for i in want]) if scaled is None else scaled  # (b, V)
    entropy = entropy_bits(pr, scaled, best)
    raw_entropy = entropy_bits(mp, lg, best)
    candidates = nonzero_count(pr).tolist()  # (b,)
    # One gather per column, then plain Python floats: building the rows is the only per-row loop.
    logit_t, prob_t, model_t = (t.gather(-1, top).tolist() for t in (lg, pr, mp))
    for n, i in enumerate(want):
        t, rows, total = params[i].temperature, [], 0.0
        for c, tok in enumerate(top[n, : ks[i]].tolist()):
            total += prob_t[n][c]
            logit = logit_t[n][c]
            rows.append(Row(tok, logit, scale(logit, t), model_t[n][c], prob_t[n][c], min(total, 1.0)))
        out[i] = Prediction(rows, entropy[n], raw_entropy[n], max(0.0, 1.0 - total), candidates[n])
    return out
