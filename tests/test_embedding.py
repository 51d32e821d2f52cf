"""The embedding stage: PCA projection and cosine neighbours, by hand and against torch."""

from __future__ import annotations

import gc

import pytest
import torch

from prediction_machine.inference import embedding
from prediction_machine.memo import Memo


@pytest.fixture(scope="module")
def table() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(50, 8, generator=g) * torch.linspace(3, 0.5, 8)  # (V, D): axis 0 varies most


def test_describe_shapes_and_projection(table):
    ids = [3, 7, 7, 20]
    view = embedding.describe(table, ids, k=4)
    assert view.vectors.shape == (4, 8) and torch.equal(view.vectors, table[ids])
    assert [p.id for p in view.points] == ids
    assert all(len(p.neighbours) == 4 for p in view.points)
    # the points are the vectors, centred, on the two largest principal directions (torch's PCA)
    centred = table - table.mean(0)
    _, s, v = torch.linalg.svd(centred, full_matrices=False)
    ref = centred[ids] @ v[:2].T  # (T, 2), up to the sign of each axis
    got = torch.tensor([[p.x, p.y] for p in view.points])
    assert torch.allclose(got.abs(), ref.abs(), atol=1e-4)
    share = (s**2 / (s**2).sum())[:2]
    assert view.explained == pytest.approx(share.tolist(), abs=1e-5)


def test_neighbours_by_cosine_without_itself(table):
    ids = [5, 11]
    view = embedding.describe(table, ids, k=5)
    unit = torch.nn.functional.normalize(table, dim=-1)
    for i, p in zip(ids, view.points, strict=True):
        sims = unit @ unit[i]  # (V,)
        sims[i] = -2  # itself excluded
        assert [n.id for n in p.neighbours] == sims.topk(5).indices.tolist()
        got = [n.similarity for n in p.neighbours]
        assert got == sorted(got, reverse=True) and i not in [n.id for n in p.neighbours]
        assert got == pytest.approx(sims.topk(5).values.tolist(), abs=1e-6)
        # a neighbour's place in the picture is its own projection
        n = p.neighbours[0]
        xy = embedding.project(embedding.projection_of(table), table[[n.id]])[0]
        assert (n.x, n.y) == pytest.approx(xy.tolist(), abs=1e-6)


def test_describe_uses_the_given_vectors_and_k_zero(table):
    vectors = table[[1, 2]] * 2
    view = embedding.describe(table, [1, 2], vectors, k=0)
    assert torch.equal(view.vectors, vectors) and all(p.neighbours == [] for p in view.points)
    xy = embedding.project(embedding.projection_of(table), vectors)
    assert [(p.x, p.y) for p in view.points] == [tuple(r) for r in xy.tolist()]


def test_projection_is_remembered_per_table(table):
    a = embedding.projection_of(table)
    assert embedding.projection_of(table) is a  # computed once
    other = table.clone()
    assert embedding.projection_of(other) is not a  # same shape, another model: its own entry


def test_memo_is_bounded_and_keyed_by_identity():
    memo, calls = Memo(size=2), []

    class Owner:
        pass

    a, b = Owner(), Owner()
    for name, owner, key in [("a", a, 1), ("a", a, 1), ("b", b, 1), ("a", a, 2)]:
        memo.get(owner, key, lambda n=name, k=key: calls.append((n, k)) or len(calls))
    assert calls == [("a", 1), ("b", 1), ("a", 2)] and len(memo) == 2  # ("a", 1) went out: least recent
    assert memo.get(b, 1, lambda: "again") == 2
    old = id(b)
    del b
    gc.collect()
    c = Owner()  # often gets b's address: it must still not see b's entry
    assert memo.get(c, 1, lambda: "fresh") == "fresh", id(c) == old
