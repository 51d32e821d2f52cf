"""Prediction: from the last position's logits to a readable table of next-token probabilities.

Pure functions of the logits. The table keeps every intermediate so each step can be shown:
the raw logit, the logit divided by the temperature, the probability after the sampling
filters, and the running total that the random draw is compared against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from prediction_machine.inference.sampling import SamplingParams, distribution


@dataclass(frozen=True)
class Row:
    id: int
    logit: float  # the model's raw score
    scaled: float  # logit / temperature
    raw_prob: float  # softmax of the raw logits (temperature 1, no filters)
    prob: float  # probability under the sampling settings (what the draw uses)
    cumulative: float  # prob of this row and every row above it


@dataclass(frozen=True)
class Prediction:
    rows: list[Row]  # the top rows, most likely first
    entropy: float  # of the sampling distribution, in bits: 0 = certain
    raw_entropy: float  # of the model's own distribution (temperature 1), in bits
    mass_outside: float  # probability left for every token not in `rows`
    candidates: int  # how many tokens keep a non-zero probability after the filters


def entropy_bits(probs: torch.Tensor) -> float:
    """-sum p log2 p over tokens with p > 0. [0.5, 0.5] -> 1.0; [1, 0] -> 0.0"""
    nats = torch.special.entr(probs.double()).sum()  # -p ln p, with 0 ln 0 = 0
    return float(nats) / math.log(2) + 0.0  # + 0.0 turns -0.0 into 0.0


def predict(logits: torch.Tensor, params: SamplingParams, k: int = 10, probs: torch.Tensor | None = None) -> Prediction:
    """Top-k rows of the next-token distribution. logits: (V,) for one position.

    `probs`, if given, is `distribution(logits, params)` already computed by the caller.
    """
    logits = logits.float()
    probs = distribution(logits, params) if probs is None else probs  # (V,)
    raw = torch.softmax(logits, dim=-1)  # (V,)
    # Order by the model's own preference so the same tokens stay put while sliders move.
    top = raw.topk(min(k, logits.numel()))
    rows, total = [], 0.0
    scaled = logits / max(params.temperature, 1e-5)
    for i in top.indices.tolist():
        total += float(probs[i])
        rows.append(Row(i, float(logits[i]), float(scaled[i]), float(raw[i]), float(probs[i]), min(total, 1.0)))
    return Prediction(
        rows=rows,
        entropy=entropy_bits(probs),
        raw_entropy=entropy_bits(raw),
        mass_outside=max(0.0, 1.0 - total),
        candidates=int((probs > 0).sum()),
    )
