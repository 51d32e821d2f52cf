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
import torch.nn.functional as F

from prediction_machine.inference.top_tokens import top_ids
from prediction_machine.limits import GREEDY_BELOW, TEMPERATURE


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = TEMPERATURE  # 0 = greedy; below 1 sharpens, above 1 flattens (see limits.py)
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
        return self.temperature < GREEDY_BELOW


def scale(logits, temperature: float):
    """Divide by the temperature: (..., V) -> (..., V), or one float. scale(2.0, 0.5) -> 4.0"""
    return logits / max(temperature, GREEDY_BELOW)


def top_k_mask(probs: torch.Tensor, k: int) -> torch.Tensor:
    """True for the k most likely tokens. [0.5, 0.3, 0.2], k=2 -> [True, True, False]"""
    if k <= 0 or k >= probs.shape[-1]:
        return torch.ones_like(probs, dtype=torch.bool)
    kth = probs.topk(k, dim=-1).values[..., -1:]  # (..., 1)
    return probs >= kth


TOP_P_LOOKS = (64, 1024)  # tokens lined up first for top-p: a few dozen, then a thousand, then all


def top_p_mask(probs: torch.Tensor, p: float) -> torch.Tensor:
    """True for the smallest most-likely set whose total reaches p. [0.5, 0.3, 0.2], p=0.7 -> [T, T, F]"""
    if p >= 1:
        return torch.ones_like(probs, dtype=torch.bool)
    # Sorting all 49k tokens is the cost, and the nucleus is usually among the first few dozen and
    # almost always among the first thousand: line those up first (top_ids, which looks at blocks
    # first), and go further only for the rows that need more. A running total of the first k
    # tokens is the start of the running total of more, so each row gets the full sort's answer.
    V = probs.shape[-1]
    flat = probs.reshape(-1, V)  # (rows, V)
    keep = torch.zeros_like(flat, dtype=torch.bool)  # (rows, V)
    todo = torch.arange(flat.shape[0])  # rows whose nucleus is not found yet
    for k in (*TOP_P_LOOKS, V):
        k = min(k, V)
        part = flat if len(todo) == flat.shape[0] else flat[todo]  # (t, V)
        if k < V:
            order = top_ids(part, k)  # (t, k), most likely first
            sorted_p = part.gather(-1, order)  # (t, k)
        else:
            sorted_p, order = part.sort(dim=-1, descending=True)  # (t, V)
        cum = sorted_p.cumsum(-1)  # (t, k)
        ends = (cum[:, -1] >= p) | (k == V)  # (t,): the nucleus ends within these k tokens
        before = cum - sorted_p  # mass strictly before each token
        rows = todo[ends]
        # keep a token while the set before it is short of p
        keep[rows] = keep[rows].scatter(-1, order[ends], before[ends] < p)  # (done, V)
        todo = todo[~ends]
        if len(todo) == 0:
            break
    return keep.view(probs.shape)  # in vocabulary order


def min_p_mask(probs: torch.Tensor, min_p: float) -> torch.Tensor:
    """True for tokens at least min_p times as likely as the best. [0.5, 0.3, 0.04], 0.1 -> [T, T, F]"""
    if min_p <= 0:
        return torch.ones_like(probs, dtype=torch.bool)
    return probs >= min_p * probs.max(dim=-1, keepdim=True).values


SUM_CHUNK = 1024  # row_sums adds each row in pieces of this many numbers, then adds the pieces


def row_sums(t: torch.Tensor) -> torch.Tensor:
    """The sum of each row, (..., V) -> (..., 1), the same bits whatever the batch size.

    `t.sum(-1)` of a single row splits the reduction across threads, and of many rows gives
    each row to one thread, so a lone row and the same row in a batch can differ in the last
    bit. Summing fixed pieces of SUM_CHUNK first, then the pieces, adds every row in the same
    order however many rows there are (zero padding adds nothing), in one pass for the batch.
    """
    V = t.shape[-1]
    flat = t.reshape(-1, V)  # (rows, V)
    if V % SUM_CHUNK:
        flat = F.pad(flat, (0, SUM_CHUNK - V % SUM_CHUNK))  # (rows, V'), V' a multiple of SUM_CHUNK
    pieces = flat.view(flat.shape[0], -1, SUM_CHUNK).sum(-1)  # (rows, V' / SUM_CHUNK)
    return pieces.sum(-1).reshape(*t.shape[:-1], 1)


def distribution(logits: torch.Tensor, params: SamplingParams,
                 scaled: torch.Tensor | None = None) -> torch.Tensor:
    """The probabilities the draw will use, after every filter. (..., V) -> (..., V), rows sum to 1.

    `scaled`, if given, is scale(logits, params.temperature), already computed by the caller."""
    logits = logits.float()
    if params.greedy:
        return torch.zeros_like(logits).scatter(-1, logits.argmax(-1, keepdim=True), 1.0)  # one-hot rows
    probs = torch.softmax(scale(logits, params.temperature) if scaled is None else scaled, dim=-1)
    if not params.filtered:
        return probs  # softmax rows already sum to 1
    # Only the filters that are on make a mask (top_k at the vocabulary's size or more keeps every token).
    masks = []  # (..., V) each: True where a filter keeps the token
    if 0 < params.top_k < probs.shape[-1]:
        masks.append(top_k_mask(probs, params.top_k))
    if params.top_p < 1:
        masks.append(top_p_mask(probs, params.top_p))
    if params.min_p > 0:
        masks.append(min_p_mask(probs, params.min_p))
    for mask in masks:
        probs = probs.masked_fill_(~mask, 0.0)  # (..., V): a token any filter drops gets p = 0
    return probs / row_sums(probs)


def distributions(logits: torch.Tensor, params: Sequence[SamplingParams],
                  scaled: torch.Tensor | None = None) -> torch.Tensor:
    """`distribution` for B rows, each with its own settings. (B, V) -> (B, V)

    Rows that share settings (a class pressing Generate with the defaults) go through
    together, so the cost is a few tensor operations per distinct setting, not per row.
    `scaled` (B, V), if given, holds each row's logits divided by its own temperature.
    """
    if scaled is None:
        return per_setting(lambda rows, p: distribution(logits[rows], p), logits, params)
    return per_setting(lambda rows, p: distribution(logits[rows], p, scaled[rows]), logits, params)


def per_setting(fn, logits: torch.Tensor, params: Sequence[SamplingParams]) -> torch.Tensor:
    """fn(rows, settings) once per distinct setting, put back in row order. (B, V) -> (B, V)

    `rows` indexes the batch (a slice when every row shares one setting), so fn can read
    other (B, ...) tensors of the same rows.
    """
    groups: dict[SamplingParams, list[int]] = {}
    for i, p in enumerate(params):
        groups.setdefault(p, []).append(i)
    if len(groups) == 1:
        return fn(slice(None), params[0])
    out = torch.empty(logits.shape, dtype=torch.float32)  # (B, V)
    for p, rows in groups.items():
        index = torch.tensor(rows)
        out[index] = fn(index, p)  # (b, V)
    return out


# ----------------------------------------------------------------------------- the draw


@dataclass(frozen=True)
class Draw:
    id: int  # the chosen token
    u: float | None  # the uniform number drawn; None when greedy
    cumulative_before: float  # where the chosen token's slice starts on the cumulative axis
    prob: float  # its probability under `distribution`


@dataclass(frozen=True)
class LineUp:
    """A distribution's tokens lined up for the draw: `line_up` once, then as many draws as wanted."""

    sorted_p: torch.Tensor  # (V,) the probabilities, most likely first; ties in id order
    ids: torch.Tensor  # (V,) the token of each
    cdf: torch.Tensor  # (V,) float64: the running total, where each token's slice ends
    total: float  # the whole sum, which may be 0.9999999 rather than 1
    last: int  # the last place with a probability above 0


def line_up(probs: torch.Tensor) -> LineUp:
    """probs (V,) from most to least likely, with the running total the draw searches."""
    sorted_p, ids = probs.sort(descending=True, stable=True)  # (V,), most likely first; ties in id order
    return LineUp(sorted_p, ids, sorted_p.double().cumsum(-1), float(row_sums(probs)),
                  max(int((sorted_p > 0).sum()) - 1, 0))


def draw(probs: torch.Tensor, generator: torch.Generator | None, lined: LineUp | None = None) -> Draw:
    """Inverse-CDF sampling: line the tokens up from most to least likely, throw u, see where it lands.

    probs (V,) is `distribution(logits, params)`. With generator None the choice is greedy (argmax).
    The generator is per request, so two requests with the same seed get the same tokens.
    `lined` is line_up(probs), for a caller that draws from one distribution many times (a class's
    round): lining up 49k tokens is a sort, the landing is one search.
    Example: probs [0.2, 0.7, 0.1] line up as 0.7, 0.2, 0.1; u = 0.8 passes 0.7 and lands on token 0.
    """
    if generator is None:
        best = int(probs.argmax())
        return Draw(best, None, 0.0, float(probs[best]))
    u = float(torch.rand((), generator=generator, dtype=torch.float64))  # uniform in [0, 1)
    lined = lined or line_up(probs)
    target = u * lined.total  # the total may be 0.9999999 rather than 1
    j = int(torch.searchsorted(lined.cdf, torch.tensor([target], dtype=torch.float64), right=True))
    j = min(j, lined.last)  # subtle: rounding can put the target past the last slice; never land on a 0
    p = float(lined.sorted_p[j])
    return Draw(int(lined.ids[j]), u, float(lined.cdf[j]) - p, p)


# ----------------------------------------------------------------------------- the batched draw
# What the batcher runs for a whole class: the same answers as `draw`, row by row
# (tests/test_batched_sampling.py holds them equal), with the sort staged for speed.

FIRST_LOOK = 64  # u almost always lands among the few dozen most likely tokens
SECOND_LOOK = 1024  # ... and nearly always among the first thousand when it does not


def draw_rows(probs: torch.Tensor, generators: Sequence[torch.Generator | None],
              order: torch.Tensor | None = None) -> list[Draw]:
    """`draw` for every row of probs (B, V), row i with generators[i] (None: greedy): the same Draws.

    `order` (B, k), if given, is each row's k most likely token ids, most likely first (the
    caller's own top-k, shared with the table); without it the draw lines up its own.
    """
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
    every = len(sampled) == len(generators)
    rows = probs if every else probs[sampled]  # (b, V)
    # (b, 1): u times the row's total, which may be 0.9999999 rather than 1
    u_scaled = torch.tensor(u, dtype=torch.float64)[:, None] * row_sums(rows).double()
    # Lining up all 49k tokens is a sort, so line up the first FIRST_LOOK of every row; the
    # rows whose u lands beyond them look again at SECOND_LOOK together, and a row whose u
    # lands beyond even those (a very flat distribution) lines up its whole vocabulary.
    todo = list(range(len(sampled)))  # positions in `sampled` still to land
    V = rows.shape[-1]
    for k in (FIRST_LOOK, SECOND_LOOK, V):
        k = min(k, V)
        part = rows if len(todo) == len(sampled) else rows[todo]  # (t, V)
        if order is not None and k <= order.shape[-1] and len(todo) == len(sampled):
            ids = (order if every else order[sampled])[:, :k]  # (t, k), most likely first
            sorted_p = part.gather(-1, ids)  # (t, k)
        else:
            sorted_p, ids = part.topk(k, dim=-1)  # (t, k), most likely first
        sorted_p, ids = ties_by_id(sorted_p, ids)
        landed = land(sorted_p, ids, u_scaled[todo])  # u falls within the first k of these rows
        later = []
        for t, (ok, d) in zip(todo, landed, strict=True):
            if ok or k == V:
                out[sampled[t]] = Draw(d[0], u[t], d[1], d[2])
            else:
                later.append(t)  # u lands past this row's first k tokens
        if not later:
            break
        todo = later
    return out  # type: ignore[return-value]


def ties_by_id(sorted_p: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Tied probabilities in token-id order, as `draw`'s stable sort lines them up. (t, k) each.

    topk leaves the order of equal values unspecified; sorting by id first, then stably by
    probability, makes it the same as `draw`'s.
    """
    ids, by_id = ids.sort(dim=-1)  # (t, k)
    sorted_p, again = sorted_p.gather(-1, by_id).sort(dim=-1, descending=True, stable=True)  # (t, k)
    return sorted_p, ids.gather(-1, again)


def land(sorted_p: torch.Tensor, ids: torch.Tensor, u_scaled: torch.Tensor) -> list[tuple[bool, tuple]]:
    """Where each row's u falls on its cumulative axis. sorted_p and ids (t, k), u_scaled (t, 1).

    For each row: (did u land within these k tokens, (token id, cumulative before it, its prob)).
    """
    cdf = sorted_p.double().cumsum(-1)  # (t, k)
    j = torch.searchsorted(cdf, u_scaled, right=True)  # (t, 1): the first token whose cumulative passes u
    # Never land on a zero probability; a row with none above zero among these (a distribution
    # that is not a number, from a broken model) takes its most likely token.
    last_positive = ((sorted_p > 0).sum(-1, keepdim=True) - 1).clamp_min(0)  # (t, 1)
    j = torch.minimum(j, last_positive)
    p = sorted_p.gather(-1, j)  # (t, 1)
    before = cdf.gather(-1, j) - p.double()  # (t, 1)
    # Inside only if u lands before the last tie group of these k: tokens past k may tie with it,
    # and a lower id among them would come first in `draw`'s line.
    inside = (cdf[:, -1:] > u_scaled) & (p > sorted_p[:, -1:])  # (t, 1)
    picks = zip(ids.gather(-1, j)[:, 0].tolist(), before[:, 0].tolist(), p[:, 0].tolist(), strict=True)
    return list(zip(inside[:, 0].tolist(), picks, strict=True))


def make_generator(seed: int | None) -> torch.Generator:
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed) % (2**63))
    return g
