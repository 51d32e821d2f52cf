"""Sampling: turn the model's scores into one chosen token. Pure functions of the logits.

The chain, in the order it is applied:

    logits --(/ temperature)--> scaled --softmax--> probs --top-k--> --top-p--> --min-p--> renormalise
          --> draw u ~ Uniform(0, 1) and take the first token whose cumulative probability passes u

Temperature 0 means greedy: always the most likely token, no randomness.

Worked example: logits [2.0, 1.0, 0.0] at temperature 1 give probs [0.665, 0.245, 0.090].
With top_k=2 they become [0.731, 0.269, 0]; a draw u=0.8 passes 0.731 at the second token.

Every function works on one position (V,) or on a batch of rows (B, V), one row per
sequence: the batcher (engine/batching.py) samples a whole classroom's next tokens in a
few tensor operations instead of one Python pass per student. The one-row functions are
the batched ones called with B = 1, so a token is the same whoever else is in the batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
    def filtered(self) -> bool:
        """Is any of top-k, top-p and min-p on?"""
        return self.top_k > 0 or self.top_p < 1 or self.min_p > 0

    @property
    def greedy(self) -> bool:
        # A temperature this small makes the softmax a one-hot in float32 anyway.
        return self.temperature < 1e-5


def scale(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide by the temperature. (..., V) -> (..., V)"""
    return logits / max(temperature, 1e-5)


def top_k_mask(probs: torch.Tensor, k: int) -> torch.Tensor:
    """True for the k most likely tokens. [0.5, 0.3, 0.2], k=2 -> [True, True, False]"""
    if k <= 0 or k >= probs.shape[-1]:
        return torch.ones_like(probs, dtype=torch.bool)
    kth = probs.topk(k, dim=-1).values[..., -1:]  # (..., 1)
    return probs >= kth


TOP_P_LOOK = 1024  # tokens lined up first for top-p


def top_p_mask(probs: torch.Tensor, p: float) -> torch.Tensor:
    """True for the smallest most-likely set whose total reaches p. [0.5, 0.3, 0.2], p=0.7 -> [T, T, F]"""
    if p >= 1:
        return torch.ones_like(probs, dtype=torch.bool)
    # Sorting all 49k tokens is the cost, and the nucleus is almost always among the first
    # thousand: line those up first, and sort everything only when some row needs more.
    sorted_p, order = probs.topk(min(TOP_P_LOOK, probs.shape[-1]), dim=-1)  # (..., k), most likely first
    cum = sorted_p.cumsum(-1)  # (..., k)
    if bool((cum[..., -1] < p).any()) and sorted_p.shape[-1] < probs.shape[-1]:  # a token past k may be kept
        sorted_p, order = probs.sort(dim=-1, descending=True)  # (..., V)
        cum = sorted_p.cumsum(-1)
    before = cum - sorted_p  # mass strictly before each token
    keep_sorted = before < p  # keep a token if the set before it has not reached p yet
    return torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, keep_sorted)  # back in vocabulary order


def min_p_mask(probs: torch.Tensor, min_p: float) -> torch.Tensor:
    """True for tokens at least min_p times as likely as the best. [0.5, 0.3, 0.04], 0.1 -> [T, T, F]"""
    if min_p <= 0:
        return torch.ones_like(probs, dtype=torch.bool)
    return probs >= min_p * probs.max(dim=-1, keepdim=True).values


def row_sums(t: torch.Tensor) -> torch.Tensor:
    """The sum of each row, (..., V) -> (..., 1), the same bits whatever the batch size.

    `t.sum(-1)` splits a long reduction across threads differently for one row than for many,
    which changes the last bit; summing row by row keeps a batched row equal to a lone one.
    """
    flat = t.reshape(-1, t.shape[-1])  # (rows, V)
    return torch.stack([r.sum() for r in flat.unbind(0)]).reshape(*t.shape[:-1], 1)


def distribution(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """The probabilities the draw will actually use, after every filter. (..., V) -> (..., V), rows sum to 1."""
    logits = logits.float()
    if params.greedy:
        return torch.zeros_like(logits).scatter(-1, logits.argmax(-1, keepdim=True), 1.0)  # one-hot rows
    probs = torch.softmax(scale(logits, params.temperature), dim=-1)
    if params.filtered:
        keep = top_k_mask(probs, params.top_k) & top_p_mask(probs, params.top_p) & min_p_mask(probs, params.min_p)
        probs = torch.where(keep, probs, torch.zeros_like(probs))
    return probs / row_sums(probs)


def distributions(logits: torch.Tensor, params: Sequence[SamplingParams]) -> torch.Tensor:
    """`distribution` for B rows, each with its own settings. (B, V) -> (B, V)

    Rows that share settings (a class pressing Generate with the defaults) go through
    together, so the cost is a few tensor operations per distinct setting, not per row.
    """
    out = torch.empty(logits.shape, dtype=torch.float32)  # (B, V)
    groups: dict[SamplingParams, list[int]] = {}
    for i, p in enumerate(params):
        groups.setdefault(p, []).append(i)
    for p, rows in groups.items():
        if len(rows) == len(params):
            return distribution(logits, p)
        index = torch.tensor(rows)
        out[index] = distribution(logits[index], p)  # (b, V)
    return out


# ----------------------------------------------------------------------------- the draw


@dataclass(frozen=True)
class Draw:
    id: int  # the chosen token
    u: float | None  # the uniform number drawn; None when greedy
    cumulative_before: float  # where the chosen token's slice starts on the cumulative axis
    prob: float  # its probability under `distribution`


FIRST_LOOK = 64  # u almost always lands among the few dozen most likely tokens
SECOND_LOOK = 1024  # ... and nearly always among the first thousand when it does not


def draw(probs: torch.Tensor, generator: torch.Generator | None) -> Draw:
    """Inverse-CDF sampling: line the tokens up from most to least likely, throw u, see where it lands.

    With generator None the choice is greedy (argmax). The generator is per request, so
    concurrent requests with the same seed get the same tokens. probs: (V,).
    """
    return draw_rows(probs[None], [generator])[0]


def draw_rows(probs: torch.Tensor, generators: Sequence[torch.Generator | None]) -> list[Draw]:
    """One `draw` per row of probs (B, V), row i with generators[i] (None: greedy)."""
    out: list[Draw | None] = [None] * len(generators)
    greedy = [i for i, g in enumerate(generators) if g is None]
    if greedy:
        best = (probs if len(greedy) == len(generators) else probs[greedy]).argmax(-1)  # (b,)
        for i, j in zip(greedy, best.tolist(), strict=True):
            out[i] = Draw(j, None, 0.0, float(probs[i, j]))
    sampled = [i for i, g in enumerate(generators) if g is not None]
    if not sampled:
        return out  # type: ignore[return-value]
    # Each row's own generator throws its own u, in the row's own order of calls.
    u = [float(torch.rand((), generator=generators[i], dtype=torch.float64)) for i in sampled]
    rows = probs if len(sampled) == len(generators) else probs[sampled]  # (b, V)
    total = row_sums(rows.double())[:, 0]  # (b,)
    u_scaled = (torch.tensor(u, dtype=torch.float64) * total).tolist()  # guards against a total of 0.9999999
    # Lining up all 49k tokens is a sort, so line up the first FIRST_LOOK of every row; the
    # rows whose u lands beyond them look again at SECOND_LOOK together, and a row whose u
    # lands beyond even those (a very flat distribution) lines up its whole vocabulary.
    todo = list(range(len(sampled)))  # positions in `sampled` still to land
    for k in (FIRST_LOOK, SECOND_LOOK, rows.shape[-1]):
        k = min(k, rows.shape[-1])
        part = rows if len(todo) == len(sampled) else rows[todo]  # (t, V)
        sorted_p, order = part.topk(k, dim=-1)  # (t, k), most likely first
        cdf = sorted_p.double().cumsum(-1)  # (t, k)
        ends = cdf[:, -1].tolist()
        later = []
        for n, t in enumerate(todo):
            if ends[n] <= u_scaled[t] and k < rows.shape[-1]:
                later.append(t)  # u lands past this row's first k tokens
            else:
                out[sampled[t]] = land(sorted_p[n], order[n], cdf[n], u[t], u_scaled[t])
        if not later:
            break
        todo = later
    return out  # type: ignore[return-value]


def land(sorted_p: torch.Tensor, order: torch.Tensor, cdf: torch.Tensor, u: float, u_scaled: float) -> Draw:
    """Where u falls on one row's cumulative axis: sorted_p, order, cdf all (k,)."""
    j = int(torch.searchsorted(cdf, torch.tensor([u_scaled], dtype=cdf.dtype), right=True))
    j = min(j, int((sorted_p > 0).sum()) - 1)  # never land on a token with zero probability
    before = float(cdf[j] - float(sorted_p[j]))
    return Draw(int(order[j]), u, before, float(sorted_p[j]))


def make_generator(seed: int | None) -> torch.Generator:
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed) % (2**63))
    return g
