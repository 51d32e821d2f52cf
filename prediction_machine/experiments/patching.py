"""Swap activations: copy the residual stream at (layer, position) from one prompt's run into another's.

Two prompts that differ in one word ("The Eiffel Tower is in the city of" / "The Colosseum is in
the city of") give different answers. Run the target prompt, but at one layer and one position
put the source run's stream in place of its own, and let the rest of the model run: if the
source's answer comes back, that (layer, position) carried what decided it. Doing this for every
layer and position draws the causal-tracing figure of the ROME paper (Meng et al. 2022).

`layer` counts streams the way the model reads them: layer l is the stream entering layer l, so
0 is the token vectors and n_layers the stream the final norm reads. A patch at layer l starts
from the target run's stream entering layer l (Transformer.forward_from): layers before l are
not computed again. Positions are only meaningful when both prompts have the same number of
tokens; otherwise nothing is patched and the error shows both tokenizations.

    grid = patch_grid(lm, "The Eiffel Tower is in the city of", "The Colosseum is in the city of", raw=True)
    grid.recovery[l][p]   # share of the source answer's probability that the patch brings back
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from prediction_machine import cancel
from prediction_machine.experiments import readout


class Misaligned(ValueError):
    """The two prompts have different token counts: positions would not correspond."""

    def __init__(self, source: list[dict], target: list[dict]):
        self.source, self.target = source, target
        show = lambda toks: json.dumps([t["token"] for t in toks], ensure_ascii=False)  # noqa: E731
        super().__init__(f"the source is {len(source)} tokens and the target {len(target)}; patching "
                         f"needs the same count. source: {show(source)}  target: {show(target)}")


@dataclass
class Runs:
    """Both plain runs, aligned: what every patch starts from."""

    source_tokens: list[dict]
    target_tokens: list[dict]
    answer: int  # the source's top-1 next token
    source_prob: float  # its probability after the source prompt
    target_prob: float  # ... and after the target prompt
    source: list[torch.Tensor]  # (L+1) x (1, T, D): the stream entering each layer
    target: list[torch.Tensor]


@dataclass
class PatchGrid:
    runs: Runs
    patched_prob: list[list[float]]  # (L+1) x T: the answer's probability with that one cell patched

    def recovery(self) -> list[list[float]]:
        return [[recovered(p, self.runs) for p in row] for row in self.patched_prob]

    def to_json(self, tokenizer) -> dict:
        r = self.runs
        return {"source_tokens": r.source_tokens, "target_tokens": r.target_tokens,
                "answer": readout.token(tokenizer, r.answer), "source_prob": r.source_prob,
                "target_prob": r.target_prob, "layers": len(r.source) - 1, "positions": len(r.source_tokens),
                "recovery": self.recovery(), "patched_prob": self.patched_prob}


def recovered(p: float, runs: Runs) -> float:
    """(patched - target) / (source - target): 0 = nothing came back, 1 = all of it; nan when equal."""
    gap = runs.source_prob - runs.target_prob
    return (p - runs.target_prob) / gap if gap != 0 else math.nan


def both_runs(lm, source: str | list[int], target: str | list[int], raw: bool = False) -> Runs:
    """Run both prompts plainly, refusing prompts whose token counts differ (Misaligned)."""
    tok, ctx = lm.tokenizer, lm.config.max_seq_len
    src = source if isinstance(source, list) else readout.prompt_ids(lm, source, raw)
    tgt = target if isinstance(target, list) else readout.prompt_ids(lm, target, raw)
    readout.check_ids(src, ctx)
    readout.check_ids(tgt, ctx)
    if len(src) != len(tgt):
        raise Misaligned(readout.texts(tok, src), readout.texts(tok, tgt))
    s_logits, s_streams = readout.plain_run(lm.model, src)  # (V,), (L+1) x (1, T, D)
    t_logits, t_streams = readout.plain_run(lm.model, tgt)
    answer = int(s_logits.argmax())
    s_prob, t_prob = float(s_logits.softmax(-1)[answer]), float(t_logits.softmax(-1)[answer])
    return Runs(readout.texts(tok, src), readout.texts(tok, tgt), answer, s_prob, t_prob,
                s_streams, t_streams)


@torch.inference_mode()
def patched_probs(model, runs: Runs, layer: int, positions: list[list[int]]) -> torch.Tensor:
    """The answer's probability for a batch of patches at one layer: row r copies positions[r].

    Each row starts from the target's stream entering `layer`, with the source's stream at its
    positions; returns (B,).
    """
    x = runs.target[layer].repeat(len(positions), 1, 1)  # (B, T, D)
    for r, ps in enumerate(positions):
        x[r, ps] = runs.source[layer][0, ps]  # (len(ps), D)
    logits = model.forward_from(x, layer, last_only=True)[:, -1].float()  # (B, V)
    return logits.softmax(-1)[:, runs.answer]  # (B,)


def check_cell(runs: Runs, layer: int, positions: list[int]) -> None:
    L, T = len(runs.source) - 1, len(runs.source_tokens)
    if not 0 <= layer <= L:
        raise ValueError(f"layer must be in 0..{L} (0 = the token vectors, {L} = after the last layer), "
                         f"got {layer}")
    for p in positions:
        if not 0 <= p < T:
            raise ValueError(f"position must be in 0..{T - 1}, got {p}")


def patch(lm, source, target, layer: int, positions: list[int], raw: bool = False) -> dict:
    """One patch: the target run with the source's stream at `layer` for `positions`.

    -> {"answer", "source_prob", "target_prob", "patched_prob", "recovery"}. Copying every position
    reproduces the source run; copying none reproduces the target run.
    """
    runs = both_runs(lm, source, target, raw)
    check_cell(runs, layer, positions)
    p = float(patched_probs(lm.model, runs, layer, [sorted(set(positions))])[0])
    return {"source_tokens": runs.source_tokens, "target_tokens": runs.target_tokens,
            "answer": readout.token(lm.tokenizer, runs.answer), "source_prob": runs.source_prob,
            "target_prob": runs.target_prob, "layer": layer, "positions": sorted(set(positions)),
            "patched_prob": p, "recovery": recovered(p, runs)}


def patch_grid(lm, source, target, raw: bool = False,
               progress: Callable[[int, int], None] | None = None,
               cancelled: Callable[[], bool] | None = None) -> PatchGrid:
    """Every (layer, position) patched alone: one batch of T rows per layer.

    A position before the first token where the prompts differ holds the same stream in both
    runs (attention only looks back), so patching it changes nothing: it gets the target's
    probability without a run.
    """
    runs = both_runs(lm, source, target, raw)
    L, T = len(runs.source) - 1, len(runs.source_tokens)
    same = [a["id"] == b["id"] for a, b in zip(runs.source_tokens, runs.target_tokens, strict=True)]
    first = same.index(False) if False in same else T
    grid = []
    for layer in range(L + 1):
        cancel.check()  # a server's client that hung up stops the grid here (cancel.py)
        if cancelled is not None and cancelled():
            raise InterruptedError("patching cancelled")
        row = [runs.target_prob] * first
        if first < T:
            row += patched_probs(lm.model, runs, layer, [[p] for p in range(first, T)]).tolist()
        grid.append(row)
        if progress is not None:
            progress(layer + 1, L + 1)
    return PatchGrid(runs, grid)
