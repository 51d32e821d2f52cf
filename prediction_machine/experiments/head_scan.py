"""Switch off every head in turn and see how much the chosen token's probability drops.

The scan is ablation.py's zero-ablation of one head, done for each of the model's L x H heads
(30 x 9 = 270 for SmolLM2). Not 270 separate passes: the heads of layer l share everything
before layer l, so for each layer the scan starts from the plain run's stream entering it
(Transformer.forward_from) and runs H copies of the rest of the model as one batch, row h with
head h switched off by a mask. It yields after every layer's batch, so a caller can report
progress and stop between two batches.

    scan = head_scan(lm, "When Mary and John went to the store, John gave a drink to", raw=True)
    scan.drop[l][h]   # how much the target's probability fell with head l.h off
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from prediction_machine import cancel
from prediction_machine.experiments import readout
from prediction_machine.experiments.ablation import METHOD, Part, hooks_for, keep_mask


@dataclass
class HeadScan:
    tokens: list[dict]
    target: dict  # {"id", "token"}: the plain run's top-1 next token
    base_prob: float  # its probability with every head on
    prob_after: list[list[float]]  # L x H: its probability with head l.h off
    method: str = METHOD

    @property
    def drop(self) -> list[list[float]]:
        return [[self.base_prob - p for p in row] for row in self.prob_after]

    def to_json(self) -> dict:
        return {"tokens": self.tokens, "target": self.target, "base_prob": self.base_prob,
                "layers": len(self.prob_after), "heads": len(self.prob_after[0]) if self.prob_after else 0,
                "method": self.method,
                "prob_after": self.prob_after, "drop": self.drop}


def head_scan(lm, prompt: str | list[int], raw: bool = False,
              progress: Callable[[int, int], None] | None = None,
              cancelled: Callable[[], bool] | None = None) -> HeadScan:
    """Ablate each head alone; one batch of H rows per layer. Raises InterruptedError when cancelled."""
    scan = None
    for scan in scan_steps(lm, prompt, raw):
        done = len(scan.prob_after)
        if progress is not None and done:
            progress(done, lm.config.n_layers)
        if cancelled is not None and cancelled() and done < lm.config.n_layers:
            raise InterruptedError("head scan cancelled")
    return scan


def scan_steps(lm, prompt: str | list[int], raw: bool = False) -> Iterator[HeadScan]:
    """The scan one layer at a time: yields the scan so far before the first batch and after each.

    A caller that stops iterating stops the scan before its next batch (the page's cancel button).
    """
    model, cfg = lm.model, lm.config
    ids = prompt if isinstance(prompt, list) else readout.prompt_ids(lm, prompt, raw)
    readout.check_ids(ids, cfg.max_seq_len)
    with torch.inference_mode():
        logits, streams = readout.plain_run(model, ids)  # (V,), (L+1) x (1, T, D)
    base = logits.softmax(-1)  # (V,)
    target = int(base.argmax())
    tok = lm.tokenizer
    scan = HeadScan(readout.texts(tok, ids), readout.token(tok, target), float(base[target]), [])
    yield scan
    for layer in range(cfg.n_layers):
        cancel.check()  # a caller that set a stop test (cancel.py) stops the scan between batches
        parts = [Part("head", layer, h) for h in range(cfg.n_heads)]
        hooks = hooks_for(keep_mask(parts, cfg))
        x = streams[layer].expand(cfg.n_heads, -1, -1)  # (H, T, D): one copy per head switched off
        with torch.inference_mode():
            out = model.forward_from(x, layer, hooks, last_only=True)[:, -1].float()  # (H, V)
        scan.prob_after.append(out.softmax(-1)[:, target].tolist())  # H
        yield scan
