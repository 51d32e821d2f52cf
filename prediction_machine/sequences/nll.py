"""Negative log-likelihood of held-out sequences under a model: the number every baseline is held to.

NLL is in nats: -ln p of each true next token, averaged. A uniform guess among V tokens costs
ln V (ln 17 = 2.83 nats for a grey level); a perfect model costs 0.

Shape letters: B batch, T sequence length, V vocabulary.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prediction_machine.model.transformer import Transformer
from prediction_machine.training.curriculum.loop import pad_rows


@torch.no_grad()
def token_nll(model: Transformer, rows: list[tuple[list[int], list[int]]], batch: int = 128
              ) -> list[tuple[list[int], list[float]]]:
    """For each row: the predicted tokens (ids[1:]) and -ln p of each, whatever the mask says."""
    out = []
    for i in range(0, len(rows), batch):
        chunk = rows[i : i + batch]
        x, y, _ = pad_rows(chunk)  # (B, T) each
        logits, _ = model(x)  # (B, T, V)
        nll = F.cross_entropy(logits.transpose(1, 2), y, reduction="none")  # (B, T)
        for r, (ids, _) in enumerate(chunk):
            n = len(ids) - 1
            out.append((ids[1:], nll[r, :n].tolist()))
    return out


def mean_nll(model: Transformer, rows: list[tuple[list[int], list[int]]]) -> float:
    """Mean NLL over the tokens whose mask is 1 (mask[j] belongs to ids[j])."""
    total, count = 0.0, 0
    for (_, mask), (_, nll) in zip(rows, token_nll(model, rows), strict=True):
        for m, v in zip(mask[1:], nll, strict=True):
            if m:
                total, count = total + v, count + 1
    return total / count
