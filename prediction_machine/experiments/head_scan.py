"""Switch off every head in turn and see how much the chosen token's probability drops.

The scan is ablation.py's zero-ablation of one head, done for each of the model's L x H heads
(30 x 9 = 270 for SmolLM2). Not 270 separate passes: the heads of layer l share everything
before layer l, so for each layer the scan starts from the plain run's stream entering it
(Transformer.forward_from) and runs H copies of the rest of the model as one batch, row h with
head h switched off by a mask. Between two layers' batches it reports progress and checks
whether to stop.

    scan = head_scan(lm, "When Mary and John went to the store, John gave a drink to", raw=True)
    scan.drop[l][h]   # how much the target's probability fell with head l.h off
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

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
                "layers": len(self.prob_after), "heads": len(self.prob_after[0]), "method": self.method,
                "prob_after": self.prob_after, "drop": self.drop}


@torch.inference_mode()
def head_scan(lm, prompt: str | list[int], raw: bool = False,
              progress: Callable[[int, int], None] | None = None,
              cancelled: Callable[[], bool] | None = None) -> HeadScan:
    """Ablate each head alone; one batch of H rows per layer. Raises InterruptedError when cancelled."""
    model, cfg = lm.model, lm.config
    ids = prompt if isinstance(prompt, list) else readout.prompt_ids(lm, prompt, raw)
    readout.check_ids(ids, cfg.max_seq_len)
    logits, streams = readout.plain_run(model, ids)  # (V,), (L+1) x (1, T, D)
    base = logits.softmax(-1)  # (V,)
    target = int(base.argmax())
    rows = []
    for layer in range(cfg.n_layers):
        if cancelled is not None and cancelled():
            raise InterruptedError("head scan cancelled")
        parts = [Part("head", layer, h) for h in range(cfg.n_heads)]
        hooks = hooks_for(keep_mask(parts, cfg))
        x = streams[layer].expand(cfg.n_heads, -1, -1)  # (H, T, D): one copy per head switched off
        out = model.forward_from(x, layer, hooks, last_only=True)[:, -1].float()  # (H, V)
        rows.append(out.softmax(-1)[:, target].tolist())  # H
        if progress is not None:
            progress(layer + 1, cfg.n_layers)
    return HeadScan(readout.texts(lm.tokenizer, ids), readout.token(lm.tokenizer, target),
                    float(base[target]), rows)
