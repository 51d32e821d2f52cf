"""The playground's newcomer features, in the library and the API: a real spiral, a divergence
warning that names the learning rate, and each hidden neuron's output over the plane."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from prediction_machine.training.backprop import datasets
from prediction_machine.training.backprop.playground import PlaygroundConfig, Session, plane_points
from prediction_machine.web.app import create_app


def test_spiral_has_two_arms_that_wind():
    """Without noise every point sits on its arm: angle = 1.5 turns · r / 1.4 (+ half a turn for class 1)."""
    X, y = datasets.make("spiral", 400, 0.0, seed=3)
    r = np.hypot(X[:, 0], X[:, 1])
    angle = np.arctan2(X[:, 1], X[:, 0])
    expected = r / 1.4 * 1.5 * 2 * np.pi + np.pi * y
    off = np.angle(np.exp(1j * (angle - expected)))  # wrapped to (-π, π]
    assert np.abs(off).max() < 1e-9
    assert r.min() >= 0.1 and r.max() <= 1.4 + 1e-9
    # Along one ray from the centre the classes alternate: class changes at least twice going outwards.
    ray = np.abs(np.angle(np.exp(1j * angle))) < 0.15
    labels = y[ray][np.argsort(r[ray])]
    assert (np.diff(labels) != 0).sum() >= 2


def test_neuron_grids_are_the_hidden_layer_outputs():
    s = Session(PlaygroundConfig(dataset="xor", hidden=(3, 2), activation="tanh", init_seed=4))
    grids = s.neuron_grids(5)
    assert [g.shape for g in grids] == [(3, 5, 5), (2, 5, 5)]
    # Recompute neuron 2 of layer 1 at the grid's top-left cell by hand: tanh(w · (x, y) + b).
    (W1, b1), _, _ = s.net.params
    x, y = plane_points(5)[0].tolist()
    assert x < 0 < y  # row 0 is the top of the plane, column 0 its left
    by_hand = math.tanh(W1[1, 0].item() * x + W1[1, 1].item() * y + b1[1].item())
    assert grids[0][1, 0, 0].item() == pytest.approx(by_hand, abs=1e-12)
    before = [g.clone() for g in grids]
    s.step(50)
    after = s.neuron_grids(5)
    assert all(not torch.equal(a, b) for a, b in zip(after, before, strict=True))  # they change as it trains


def test_divergence_warning_names_the_learning_rate():
    calm = Session(PlaygroundConfig(dataset="spiral", learning_rate=0.3, init_seed=1))
    calm.step(150)
    assert calm.divergence_warning() is None and calm.summary()["warning"] is None
    wild = Session(PlaygroundConfig(dataset="spiral", learning_rate=10.0, init_seed=1))
    wild.step(60)
    assert wild.paused_reason is None  # it swings without overflowing: no pause catches it
    start = wild.history[0].train_loss
    assert max(r.train_loss for r in wild.history[-20:]) > 2 * start
    text = wild.summary()["warning"]
    assert "learning rate 10 is too large" in text and "such as 1," in text and f"{start:.3g}" in text


def test_api_sends_neuron_pictures_with_each_step():
    with TestClient(create_app(), base_url="http://127.0.0.1") as api:
        r = api.post(
            "/api/backprop/sessions",
            json={"dataset": "spiral", "hidden": [4, 2], "init_seed": 1, "learning_rate": 10},
        )
        assert r.status_code == 201, r.text
        key = r.json()["id"]
        first = r.json()["neurons"]
        assert first["resolution"] == 16 and first["activation"] == "tanh"
        assert [len(L) for L in first["values"]] == [4, 2] and len(first["values"][0][0]) == 16
        frame = api.post(
            f"/api/backprop/sessions/{key}/step", json={"steps": 60, "grid": 0, "neurons": 8}
        ).json()
        assert frame["neurons"]["resolution"] == 8 and frame["neurons"]["values"][0] != first["values"][0]
        assert "learning rate 10" in frame["warning"]
        assert (
            api.post(f"/api/backprop/sessions/{key}/step", json={"steps": 1}).json()["neurons"] is None
        )  # only when asked
        bad = api.post(f"/api/backprop/sessions/{key}/step", json={"steps": 1, "neurons": 99})
        assert bad.status_code == 422 and "neurons" in bad.text
        api.delete(f"/api/backprop/sessions/{key}")


def test_one_thread_leaves_other_threads_their_own_thread_count():
    """A server thread that first runs torch while a playground step holds one_thread keeps the
    server's thread count, not 1 (before, it kept 1 for good and ran everything at half speed)."""
    import threading

    import torch

    from prediction_machine.training.backprop.vectorized import one_thread

    default, seen, held, release = torch.get_num_threads(), {}, threading.Event(), threading.Event()

    def step():
        with one_thread():
            torch.ones(4).sum()  # torch runs in this thread, at one thread
            held.set()
            release.wait(10)

    def born_meanwhile():
        torch.ones(4).sum()
        seen["threads"] = torch.get_num_threads()

    a = threading.Thread(target=step)
    a.start()
    assert held.wait(10)
    b = threading.Thread(target=born_meanwhile)
    b.start()
    b.join()
    release.set()
    a.join()
    assert seen["threads"] == default and torch.get_num_threads() == default
