"""The embedding stage: each token id looks up a learned vector, and similar tokens sit close.

To draw 576-dimensional vectors on a page we project them onto the two directions along
which the whole vocabulary's embeddings vary most (PCA). Neighbours are found in the full
space by cosine similarity, not in the picture, so the picture cannot mislead about them.

`describe(table, ids, vectors)` is what the page's embedding stage shows: the prompt's
vectors, their points in the picture, and each one's nearest vocabulary entries.

Shape letters: V vocabulary, D d_model, T prompt tokens, N any number of vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from prediction_machine.memo import Memo


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


_projections = Memo(size=4)  # one PCA per embedding table; it takes a moment for 49k x 576


def projection_of(table: torch.Tensor) -> Projection:
    """`principal_axes(table)`, computed once per table (per model) and then remembered."""
    return _projections.get(table, tuple(table.shape), lambda: principal_axes(table))


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


# ------------------------------------------------------------------------ the stage, as the page shows it


@dataclass(frozen=True)
class Neighbour:
    id: int  # a vocabulary entry
    similarity: float  # cosine similarity with the prompt token, in all D dimensions
    x: float  # where it sits in the picture
    y: float


@dataclass(frozen=True)
class Point:
    id: int  # the prompt token
    x: float
    y: float
    neighbours: list[Neighbour]  # most similar first; never the token itself


@dataclass(frozen=True)
class EmbeddingView:
    vectors: torch.Tensor  # (T, D) the prompt's token vectors
    explained: tuple[float, float]  # share of the vocabulary's variance along each picture axis
    points: list[Point]  # one per prompt token, in order


@torch.inference_mode()
def describe(table: torch.Tensor, ids: list[int], vectors: torch.Tensor | None = None,
             k: int = 5) -> EmbeddingView:
    """The embedding stage for a prompt: its vectors, projected, each with its k nearest neighbours.

    table: (V, D) the embedding table; ids: the prompt's T token ids; vectors: (T, D) the
    vectors the model really used (default: table[ids]); k = 0 asks for no neighbours.
    """
    vectors = table[ids] if vectors is None else vectors  # (T, D)
    proj = projection_of(table)
    xy = project(proj, vectors).tolist()  # (T, 2)
    near = nearest(table, ids, k) if k else [[] for _ in ids]
    others = sorted({j for row in near for j, _ in row})
    near_xy = dict(zip(others, project(proj, table[others]).tolist(), strict=True)) if others else {}
    points = [
        Point(i, x, y, [Neighbour(j, s, *near_xy[j]) for j, s in near[n]])
        for n, (i, (x, y)) in enumerate(zip(ids, xy, strict=True))
    ]
    return EmbeddingView(vectors, proj.explained, points)
