"""The embedding stage: each token id looks up a learned vector, and similar tokens sit close.

To draw 576-dimensional vectors on a page we project them onto the two directions along
which the whole vocabulary's embeddings vary most (PCA). Neighbours are found in the full
space by cosine similarity, not in the picture, so the picture cannot mislead about them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Projection:
    mean: torch.Tensor  # (D,) the average embedding
    axes: torch.Tensor  # (D, 2) the two principal directions
    explained: tuple[float, float]  # share of the total variance along each axis


@torch.inference_mode()
def principal_axes(table: torch.Tensor) -> Projection:
    """PCA of the embedding table (V, D) through the D x D covariance: cheap even for V = 49k."""
    mean = table.mean(0)  # (D,)
    centred = table - mean  # (V, D)
    cov = centred.T @ centred / (table.shape[0] - 1)  # (D, V) x (V, D) -> (D, D)
    values, vectors = torch.linalg.eigh(cov.double())  # ascending eigenvalues
    axes = vectors[:, -2:].flip(-1).float()  # (D, 2) the two largest
    total = float(values.sum())
    return Projection(mean, axes, (float(values[-1]) / total, float(values[-2]) / total))


def project(p: Projection, vectors: torch.Tensor) -> torch.Tensor:
    return (vectors - p.mean) @ p.axes  # (N, D) x (D, 2) -> (N, 2)


@torch.inference_mode()
def nearest(table: torch.Tensor, ids: list[int], k: int = 5) -> list[list[tuple[int, float]]]:
    """For each id, the k other vocabulary entries with the most similar direction (cosine)."""
    unit = torch.nn.functional.normalize(table, dim=-1)  # (V, D)
    sims = unit[ids] @ unit.T  # (N, D) x (D, V) -> (N, V)
    sims[torch.arange(len(ids)), ids] = -2.0  # a token is not its own neighbour
    top = sims.topk(k, dim=-1)
    return [list(zip(top.indices[n].tolist(), top.values[n].tolist(), strict=True)) for n in range(len(ids))]
