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
def lens_probs(model: Transformer, t: Trace, position: int = -1) -> torch.Tensor:
    """Each layer's residual stream at one position, read through the final norm and unembedding. -> (L, V)"""
    h = t.residuals[:, position]  # (L, D)
    return torch.softmax(model.unembed(h).float(), dim=-1)  # (L, D) -> (L, V)


@torch.inference_mode()
def logit_lens(model: Transformer, t: Trace, position: int = -1, k: int = 5,
               probs: torch.Tensor | None = None) -> list[LensGuess]:
    """Read each layer's residual stream through the final norm and unembedding (nostalgebraist, 2020).

    Early layers usually guess something generic; the guess sharpens as layers add to the stream.
    Only one position is read: doing every position costs ~17x more and is rarely shown.
    `probs`, if given, is `lens_probs(model, t, position)` already computed by the caller.
    """
    probs = lens_probs(model, t, position) if probs is None else probs  # (L, V)
    top = probs.topk(k, dim=-1)  # (L, k) values and indices
    return [
        LensGuess(layer, top.indices[layer].tolist(), top.values[layer].tolist())
        for layer in range(probs.shape[0])
    ]


@dataclass(frozen=True)
class TokenPath:
    id: int  # the token followed through the layers
    probs: list[float]  # its probability after each layer, read through the logit lens
    ranks: list[int]  # its place after each layer: 1 = the top guess


@torch.inference_mode()
def token_path(probs: torch.Tensor, token: int) -> TokenPath:
    """One token's probability and rank after every layer, from `lens_probs`. (L, V) -> L numbers each

    >>> token_path(torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.7, 0.2]]), 1).ranks
    [2, 1]
    """
    p = probs[:, token]  # (L,)
    ranks = (probs > p[:, None]).sum(-1) + 1  # (L, V) -> (L,): how many tokens beat it, plus one
    return TokenPath(token, p.tolist(), ranks.tolist())
