"""Sampling: turn the model's scores into one chosen token. Pure functions of the logits.

The chain, in the order it is applied:

    logits --(/ temperature)--> scaled --softmax--> probs --top-k--> --top-p--> --min-p--> renormalise
          --> draw u ~ Uniform(0, 1) and take the first token whose cumulative probability passes u

Temperature 0 means greedy: always the most likely token, no randomness.

Worked example: logits [2.0, 1.0, 0.0] at temperature 1 give probs [0.665, 0.245, 0.090].
With top_k=2 they become [0.731, 0.269, 0]; a draw u=0.8 passes 0.731 at the second token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7  # 0 = greedy; below 1 sharpens, above 1 flattens
    top_k: int = 0  # keep only the k most likely tokens; 0 = off
    top_p: float = 1.0  # keep the smallest set whose probability reaches p; 1 = off
    min_p: float = 0.0  # drop tokens less likely than min_p x the top token; 0 = off

    def __post_init__(self):
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError(f"temperature must be a finite number >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 turns it off), got {self.top_k}")
        if not (0 < self.top_p <= 1):
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not (0 <= self.min_p < 1):
            raise ValueError(f"min_p must be in [0, 1), got {self.min_p}")

    @property
    def greedy(self) -> bool:
        # A temperature this small makes the softmax a one-hot in float32 anyway.
        return self.temperature < 1e-5


def scale(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide by the temperature. (V,) -> (V,)"""
    return logits / max(temperature, 1e-5)


def top_k_mask(probs: torch.Tensor, k: int) -> torch.Tensor:
    """True for the k most likely tokens. [0.5, 0.3, 0.2], k=2 -> [True, True, False]"""
    if k <= 0 or k >= probs.numel():
        return torch.ones_like(probs, dtype=torch.bool)
    kth = probs.topk(k).values[-1]
    return probs >= kth


def top_p_mask(probs: torch.Tensor, p: float) -> torch.Tensor:
    """True for the smallest most-likely set whose total reaches p. [0.5, 0.3, 0.2], p=0.7 -> [T, T, F]"""
    if p >= 1:
        return torch.ones_like(probs, dtype=torch.bool)
    sorted_p, order = probs.sort(descending=True)
    before = sorted_p.cumsum(0) - sorted_p  # mass strictly before each token
    keep_sorted = before < p  # keep a token if the set before it has not reached p yet
    mask = torch.zeros_like(probs, dtype=torch.bool)
    mask[order] = keep_sorted
    return mask


def min_p_mask(probs: torch.Tensor, min_p: float) -> torch.Tensor:
    """True for tokens at least min_p times as likely as the best. [0.5, 0.3, 0.04], 0.1 -> [T, T, F]"""
    if min_p <= 0:
        return torch.ones_like(probs, dtype=torch.bool)
    return probs >= min_p * probs.max()


def distribution(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """The probabilities the draw will actually use, after every filter. (V,) -> (V,), sums to 1."""
    logits = logits.float()
    if params.greedy:
        out = torch.zeros_like(logits)
        out[logits.argmax()] = 1.0
        return out
    probs = torch.softmax(scale(logits, params.temperature), dim=-1)
    keep = top_k_mask(probs, params.top_k) & top_p_mask(probs, params.top_p) & min_p_mask(probs, params.min_p)
    probs = torch.where(keep, probs, torch.zeros_like(probs))
    return probs / probs.sum()


@dataclass(frozen=True)
class Draw:
    id: int  # the chosen token
    u: float | None  # the uniform number drawn; None when greedy
    cumulative_before: float  # where the chosen token's slice starts on the cumulative axis
    prob: float  # its probability under `distribution`


def draw(probs: torch.Tensor, generator: torch.Generator | None) -> Draw:
    """Inverse-CDF sampling: line the tokens up from most to least likely, throw u, see where it lands.

    With generator None the choice is greedy (argmax). The generator is per request, so
    concurrent requests with the same seed get the same tokens.
    """
    if generator is None:
        best = int(probs.argmax())
        return Draw(best, None, 0.0, float(probs[best]))
    u = float(torch.rand((), generator=generator, dtype=torch.float64))
    total = float(probs.double().sum())
    u_scaled = u * total  # guards against a total of 0.9999999 from rounding
    # Lining up all 49k tokens is a sort; u almost always lands among the first few dozen,
    # so look there first and line up the rest only when it does not.
    for k in (64, probs.numel()):
        sorted_p, order = probs.topk(min(k, probs.numel()))  # (k,) most likely first
        sorted_p = sorted_p.double()
        cdf = sorted_p.cumsum(0)  # (k,)
        if float(cdf[-1]) > u_scaled or k >= probs.numel():
            break
    j = int(torch.searchsorted(cdf, torch.tensor(u_scaled, dtype=torch.float64), right=True))
    j = min(j, int((sorted_p > 0).sum()) - 1)  # never land on a token with zero probability
    before = float(cdf[j] - sorted_p[j])
    return Draw(int(order[j]), u, before, float(sorted_p[j]))


def make_generator(seed: int | None) -> torch.Generator:
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed) % (2**63))
    return g
