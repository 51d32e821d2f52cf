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
    log_distribution,
    log_distributions,
    row_sums,
    scale,
)


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


def entropy_bits(probs: torch.Tensor, logs: torch.Tensor | None = None) -> float | list[float]:
    """-sum p log2 p over tokens with p > 0. [0.5, 0.5] -> 1.0; [1, 0] -> 0.0 (a list for (B, V) rows)

    `logs`, if given, is log(probs) already computed (log_softmax): then no log is taken here.
    """
    p = probs.float()  # (..., V)
    if logs is None:
        # 0 log 0 = 0: clamping p = 0 to the smallest float keeps its log finite, so 0 x log stays 0.
        # In float32 this costs a third of torch.special.entr in float64, and agrees to ~1e-6 bits.
        logs = p.clamp_min(torch.finfo(torch.float32).tiny).log()  # (..., V)
    bits = -row_sums(p * logs)[..., 0] / math.log(2) + 0.0  # + 0.0 drops -0.0
    return bits.tolist()


def model_probs(logits: torch.Tensor) -> torch.Tensor:
    """The model's own distribution: softmax at temperature 1, no filters. (B, V) -> (B, V)"""
    return torch.softmax(logits.float(), dim=-1)


def model_log_probs(logits: torch.Tensor) -> torch.Tensor:
    """log(model_probs(logits)) in one pass, for the entropy. (B, V) -> (B, V)"""
    return torch.log_softmax(logits.float(), dim=-1)


def predict(logits: torch.Tensor, params: SamplingParams, k: int = 10,
            probs: torch.Tensor | None = None) -> Prediction:
    """The top k rows of the next-token table, with every intermediate. logits: (V,) for one position.

    `probs`, if given, is `distribution(logits, params)` already computed by the caller.
    """
    logits = logits.float()  # (V,)
    probs = distribution(logits, params) if probs is None else probs  # (V,): what the draw uses
    mine = model_probs(logits)  # (V,): what the model itself believes
    # Rows in the model's own order, so the same tokens stay put while the sliders move.
    top = mine.topk(min(k, logits.shape[-1])).indices.tolist()
    rows, total = [], 0.0
    for i in top:
        logit, prob = float(logits[i]), float(probs[i])
        total += prob
        rows.append(Row(i, logit, scale(logit, params.temperature), float(mine[i]), prob, min(total, 1.0)))
    entropy = entropy_bits(probs, log_distribution(logits, params, probs))
    raw_entropy = entropy_bits(mine, model_log_probs(logits))
    return Prediction(rows, entropy, raw_entropy, max(0.0, 1.0 - total), int(torch.count_nonzero(probs)))


# ----------------------------------------------------------------------------- the batched table
# What the batcher runs for a whole class: the same Predictions as `predict`, row by row.


def predict_rows(logits: torch.Tensor, params: Sequence[SamplingParams], ks: Sequence[int],
                 probs: torch.Tensor, raw: torch.Tensor | None = None, always: bool = False,
                 order: torch.Tensor | None = None, logs: torch.Tensor | None = None,
                 raw_logs: torch.Tensor | None = None) -> list[Prediction | None]:
    """The table of every row of logits (B, V) whose k is above 0; None for a row that asked for none.

    probs (B, V) is what each row's draw used; raw (B, V), if given, is model_probs(logits).
    order (B, k), if given, is each row's most likely token ids, best first (the caller's top-k).
    logs and raw_logs (B, V), if given, are log(probs) and log(raw), for the entropies.
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
        lo, raw_lo = logs, raw_logs
    else:
        index = torch.tensor(want)
        lg, pr = logits[index], probs[index]  # (b, V)
        mp = model_probs(lg) if raw is None else raw[index]  # (b, V)
        order = None if order is None else order[index]
        lo, raw_lo = (None if t is None else t[index] for t in (logs, raw_logs))
    # Order by the model's own preference so the same tokens stay put while sliders move.
    if order is not None and order.shape[-1] >= k_max:
        top = order[:, :k_max]  # (b, k_max)
    else:
        top = mp.topk(k_max, dim=-1).indices  # (b, k_max)
    lo = log_distributions(lg, [params[i] for i in want], pr) if lo is None else lo  # (b, V)
    raw_lo = model_log_probs(lg) if raw_lo is None else raw_lo  # (b, V)
    entropy, raw_entropy = entropy_bits(pr, lo), entropy_bits(mp, raw_lo)
    candidates = torch.count_nonzero(pr, dim=-1).tolist()  # (b,)
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
