"""A typed trace of one forward pass: everything the guide shows about the inside of the model.

Tracing is opt-in. `trace()` runs the eager attention path (the only one that can return
attention weights) and hands back plain tensors in a dataclass; the model keeps no state.

Shape letters: L layers, H heads, T tokens, D d_model, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from prediction_machine.model.transformer import Transformer


@dataclass
class Trace:
    ids: list[int]
    embeddings: torch.Tensor  # (T, D) token vectors, before any layer
    attention: torch.Tensor  # (L, H, T, T) [layer][head][query][key]; each row sums to 1
    residuals: torch.Tensor  # (L, T, D) the residual stream after each layer
    logits: torch.Tensor  # (T, V) next-token scores at every position


@torch.inference_mode()
def trace(model: Transformer, ids: list[int]) -> Trace:
    idx = torch.tensor([ids], dtype=torch.long)  # (1, T)
    logits, rec = model(idx, record=True)
    return Trace(
        ids=list(ids),
        embeddings=rec.embeddings[0],  # (T, D)
        attention=torch.stack([a[0] for a in rec.attention]),  # (L, H, T, T)
        residuals=torch.stack([r[0] for r in rec.residuals]),  # (L, T, D)
        logits=logits[0],  # (T, V)
    )


@dataclass(frozen=True)
class LensGuess:
    layer: int  # 0-based; the last layer's guess is the model's real prediction
    ids: list[int]  # top tokens if the model stopped after this layer, most likely first
    probs: list[float]


@torch.inference_mode()
def logit_lens(model: Transformer, t: Trace, position: int = -1, k: int = 5) -> list[LensGuess]:
    """Read each layer's residual stream through the final norm and unembedding (nostalgebraist, 2020).

    Early layers usually guess something generic; the guess sharpens as layers add to the stream.
    Only one position is read: doing every position costs ~17x more and is rarely shown.
    """
    h = t.residuals[:, position]  # (L, D)
    probs = torch.softmax(model.unembed(h).float(), dim=-1)  # (L, V)
    top = probs.topk(k, dim=-1)  # (L, k) values and indices
    return [
        LensGuess(layer, top.indices[layer].tolist(), top.values[layer].tolist())
        for layer in range(h.shape[0])
    ]
