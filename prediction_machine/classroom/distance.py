"""How far a class's draws are from the model's distribution: total variation, and what chance allows.

A round's draws are n samples from the distribution p the model drew them from. Their histogram
f (counts / n) is never exactly p; the total variation distance

    TV(f, p) = 1/2 * sum_i |f_i - p_i|

is the share of the draws that would have to change word for the histogram to match p exactly
(0 = identical, 1 = nothing in common). It shrinks like 1/sqrt(n) as more students draw.

Worked example: p = [0.5, 0.3, 0.2] and 10 draws [6, 3, 1] give f = [0.6, 0.3, 0.1] and
TV = 1/2 * (0.1 + 0 + 0.1) = 0.1: one draw in ten would have to move from the first word to the third.

`expected_tv` and `tv_bound` say how large TV may be from chance alone, computed from p and n:
- per token, E|f_i - p_i| <= sqrt(Var f_i) = sqrt(p_i (1 - p_i) / n)  (Jensen), and also
  E|f_i - p_i| <= E f_i + p_i = 2 p_i, which is smaller for the long tail of rare tokens;
- changing one draw moves TV by at most 1/n, so McDiarmid's inequality gives
  P(TV > E[TV] + t) <= exp(-2 n t^2): with t = sqrt(ln(1/delta) / (2 n)), TV stays under
  E[TV] + t in all but a `delta` share of rounds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

DELTA = 1e-3  # tv_bound holds in all but one round in a thousand


def total_variation(counts: Mapping[int, int], probs: torch.Tensor) -> float:
    """TV between the histogram of `counts` (token id -> draws) and probs (V,); see the module's example.

    Tokens nobody drew still count: each adds its whole p_i, so the sum is taken over the drawn
    tokens and the mass of every other token is added at once.
    """
    n = sum(counts.values())
    if n == 0:
        return 1.0
    ids = torch.tensor(list(counts), dtype=torch.long)  # (k,) drawn tokens
    f = torch.tensor([counts[int(i)] / n for i in ids], dtype=torch.float64)  # (k,)
    p = probs.double()[ids]  # (k,)
    undrawn = max(1.0 - float(p.sum()), 0.0)  # every token nobody drew: |0 - p_i| = p_i
    return 0.5 * (float((f - p).abs().sum()) + undrawn)


def expected_tv(probs: torch.Tensor, n: int) -> float:
    """An upper estimate of E[TV] for n draws from probs (V,).

    1/2 sum_i min(2 p_i, sqrt(p_i (1 - p_i) / n)): the two per-token bounds of the module docstring.
    """
    if n <= 0:
        return 1.0
    p = probs.double()  # (V,)
    per_token = torch.minimum(2 * p, (p * (1 - p) / n).clamp_min(0).sqrt())  # (V,)
    return min(0.5 * float(per_token.sum()), 1.0)


def tv_bound(probs: torch.Tensor, n: int, delta: float = DELTA) -> float:
    """TV of n honest draws from probs stays below this in all but a `delta` share of rounds."""
    if n <= 0:
        return 1.0
    return min(expected_tv(probs, n) + math.sqrt(math.log(1 / delta) / (2 * n)), 1.0)
