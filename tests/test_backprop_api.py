"""The backprop API: the one-neuron step, playground sessions, their limits, and the NaN pause.

Uses its own in-process app: nothing here needs the language model.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import read_sse
from fastapi.testclient import TestClient

from prediction_machine.web.app import create_app
from prediction_machine.web.routes import backprop as routes

API = "/api/backprop"


@pytest.fixture(scope="module")
def api():
    with TestClient(create_app(), base_url="http://127.0.0.1") as c:
        yield c


@pytest.fixture
def session(api):
    r = api.post(f"{API}/sessions", json={"dataset": "moons", "init_seed": 3, "learning_rate": 0.5})
    assert r.status_code == 201, r.text
    yield r.json()
    api.delete(f"{API}/sessions/{r.json()['id']}")


def test_neuron_walkthrough_matches_torch(api):
    body = {
        "x1": 0.8,
        "x2": -1.5,
        "w1": 0.4,
        "w2": 0.3,
        "b": -0.1,
        "target": 0.9,
        "lr": 0.5,
        "activation": "sigmoid",
    }
    out = api.post(f"{API}/neuron", json=body).json()
    W = torch.tensor([body["w1"], body["w2"], body["b"]], dtype=torch.float64, requires_grad=True)
    y = torch.sigmoid(body["x1"] * W[0] + body["x2"] * W[1] + W[2])
    loss = (y - body["target"]) ** 2
    loss.backward()
    assert out["prediction"] == pytest.approx(y.item(), abs=1e-8) and out["loss"] == pytest.approx(
        loss.item(), abs=1e-8
    )
    assert [u["grad"] for u in out["updates"]] == pytest.approx(W.grad.tolist(), abs=1e-8)
    assert out["new_loss"] < out["loss"]
    nodes = {n["label"]: n for n in out["nodes"]}
    assert set(nodes) == {"x1", "w1", "x2", "w2", "b", "target", "x1·w1", "x2·w2", "s", "z", "y", "e", "L"}
    # Each edge's contribution is its local derivative times the gradient of the node it leaves.
    for e in out["edges"]:
        parent = out["nodes"][e["target"]]
        assert e["contribution"] == pytest.approx(e["local"] * parent["grad"], abs=1e-8)
    assert out["edges"][0]["target"] == nodes["L"]["id"]  # backward starts at the loss


@pytest.mark.parametrize(
    "body, field",
    [
        ({"lr": 0}, "lr"),
        ({"lr": "0.1"}, "lr"),
        ({"x1": True}, "x1"),
        ({"x1": 1e9}, "x1"),
        ({"activation": "gelu"}, "activation"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_neuron_bad_input_is_422(api, body, field):
    r = api.post(f"{API}/neuron", json=body)
    assert r.status_code == 422 and r.json()["error"].startswith(field)


def test_session_trains_and_reset_restores_the_same_weights(api, session):
    sid = session["id"]
    assert session["step"] == 0 and len(session["points"]) == 200 and session["n_test"] == 40
    assert len(session["grid"]["values"]) == 40 and session["network"][0]["weight_grads"] is None
    start = session["latest"]["train_loss"]
    frames = [api.post(f"{API}/sessions/{sid}/step", json={"steps": 50, "grid": 20}).json() for _ in range(4)]
    assert frames[-1]["step"] == 200 and len(frames[0]["rows"]) == 50
    assert frames[-1]["latest"]["train_loss"] < 0.7 * start
    assert frames[-1]["grid"]["values"] != session["grid"]["values"][:20]  # the boundary moved
    assert frames[-1]["network"][0]["weight_grads"] is not None
    full = api.get(f"{API}/sessions/{sid}").json()
    assert len(full["history"]) == 201 and full["history"][-1] == frames[-1]["latest"]
    reset = api.post(f"{API}/sessions/{sid}/reset").json()
    assert reset["step"] == 0 and reset["network"][0]["weights"] == session["network"][0]["weights"]
    again = api.post(f"{API}/sessions/{sid}/step", json={"steps": 50, "grid": 0}).json()
    assert again["rows"] == frames[0]["rows"] and again["grid"] is None
    new = api.post(f"{API}/sessions/{sid}/new-weights", json={"seed": 99}).json()
    assert (
        new["network"][0]["weights"] != session["network"][0]["weights"] and new["config"]["init_seed"] == 99
    )


def test_points_add_remove_and_limits(api, session):
    sid = session["id"]
    r = api.post(
        f"{API}/sessions/{sid}/points", json={"add": [{"x": 0.5, "y": -0.5, "label": 1}], "remove": [0, 1]}
    )
    pts = r.json()["points"]
    assert len(pts) == 199 and pts[-1] == {"x": 0.5, "y": -0.5, "label": 1, "split": "train", "user": True}
    for body, field in [
        ({"add": [{"x": 2.0, "y": 0, "label": 1}]}, "add"),
        ({"add": [{"x": 0, "y": 0, "label": 2}]}, "add"),
        ({"remove": [199]}, "remove"),
        ({"add": [{"x": 0, "y": 0, "label": 1}] * 51}, "add"),
    ]:
        r = api.post(f"{API}/sessions/{sid}/points", json=body)
        assert r.status_code == 422 and r.json()["error"].startswith(field), r.text
    # Fill up to the cap of points in 50s, then one more is refused with a clear reason.
    while len(pts) + 50 <= routes.MAX_POINTS:
        pts = api.post(
            f"{API}/sessions/{sid}/points", json={"add": [{"x": 0.1, "y": 0.1, "label": 0}] * 50}
        ).json()["points"]
    r = api.post(f"{API}/sessions/{sid}/points", json={"add": [{"x": 0.1, "y": 0.1, "label": 0}] * 50})
    assert r.status_code == 422 and "at most" in r.json()["error"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"hidden": [8, 8, 8, 8, 8]}, "hidden"),
        ({"hidden": [17]}, "hidden"),
        ({"n_points": 501}, "n_points"),
        ({"dataset": "iris"}, "dataset"),
        ({"learning_rate": 11}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"l2": -0.1}, "l2"),
        ({"activation": "softmax"}, "activation"),
    ],
)
def test_session_bad_config_is_422(api, body, field):
    r = api.post(f"{API}/sessions", json=body)
    assert r.status_code == 422 and r.json()["error"].startswith(field)


def test_steps_per_request_and_unknown_session(api, session):
    r = api.post(f"{API}/sessions/{session['id']}/step", json={"steps": routes.MAX_STEPS + 1})
    assert r.status_code == 422 and r.json()["error"].startswith("steps")
    assert api.post(f"{API}/sessions/nosuchsession/step", json={"steps": 1}).status_code == 404
    assert api.get(f"{API}/sessions/bad$id!").status_code == 422


def sessions(api):
    return api.app.state.backprop_sessions


def test_session_limit_is_429_and_delete_frees_a_slot(api, monkeypatch):
    store = sessions(api)
    monkeypatch.setattr(store, "limit", len(store) + 2)
    ids = [api.post(f"{API}/sessions", json={"n_points": 10}).json()["id"] for _ in range(2)]
    r = api.post(f"{API}/sessions", json={"n_points": 10})
    assert r.status_code == 429 and r.headers["retry-after"] and "sessions" in r.json()["error"]
    assert api.delete(f"{API}/sessions/{ids[0]}").status_code == 204
    assert api.delete(f"{API}/sessions/{ids[0]}").status_code == 404
    assert api.post(f"{API}/sessions", json={"n_points": 10}).status_code == 201


def test_idle_sessions_expire(api, monkeypatch):
    sid = api.post(f"{API}/sessions", json={"n_points": 10}).json()["id"]
    monkeypatch.setattr(sessions(api), "idle_seconds", -1)
    assert api.get(f"{API}/sessions/{sid}").status_code == 404


def test_exploding_loss_pauses_with_a_reason(api):
    sid = api.post(f"{API}/sessions", json={"learning_rate": 10, "l2": 1, "activation": "relu"}).json()["id"]
    out = api.post(f"{API}/sessions/{sid}/step", json={"steps": 100}).json()
    assert out["paused"] and out["step"] < 100 and "learning rate 10" in out["paused_reason"]
    assert (
        api.post(f"{API}/sessions/{sid}/step", json={"steps": 5}).json()["step"] == out["step"]
    )  # stays paused
    events = read_sse(api.post(f"{API}/sessions/{sid}/stream", json={"frames": 3}))
    assert [e for e, _ in events] == ["frame", "paused", "done"] and events[-1][1]["paused"] is True
    assert api.post(f"{API}/sessions/{sid}/reset").json()["paused"] is False


def test_nan_pauses_and_json_stays_valid(api, session):
    sid = session["id"]
    with torch.no_grad():
        sessions(api).get(sid).net.params[1][0][0, 0] = math.nan  # as if an update had overflowed
    r = api.post(f"{API}/sessions/{sid}/step", json={"steps": 10})
    out = json.loads(
        r.text, parse_constant=lambda c: pytest.fail(f"{c} in the JSON")
    )  # strict: no NaN/Infinity
    assert out["paused"] and "NaN" in out["paused_reason"] and out["rows"] == []
    assert out["network"][1]["weights"][0][0] is None  # shown as missing, never as a made-up number


def test_settings_change_without_touching_weights(api, session):
    sid = session["id"]
    out = api.post(
        f"{API}/sessions/{sid}/settings", json={"learning_rate": 0.05, "batch_size": 500, "l2": 0.001}
    ).json()
    assert out["config"]["learning_rate"] == 0.05 and out["config"]["batch_size"] == 500 and out["step"] == 0
    assert api.get(f"{API}/sessions/{sid}").json()["network"] == session["network"]


def test_stream_sends_frames_then_done(api, session):
    r = api.post(
        f"{API}/sessions/{session['id']}/stream", json={"frames": 4, "steps_per_frame": 5, "grid": 10}
    )
    events = read_sse(r)
    assert [e for e, _ in events] == ["frame"] * 4 + ["done"]
    assert events[-1][1] == {"step": 20, "paused": False}
    assert [d["step"] for _, d in events[:4]] == [5, 10, 15, 20] and events[-1][1]["step"] == 20


def test_no_training_points_pauses_until_one_is_added(api):
    sid = api.post(f"{API}/sessions", json={"n_points": 4, "test_fraction": 0.5}).json()["id"]
    out = api.post(f"{API}/sessions/{sid}/points", json={"remove": [2, 3]}).json()
    assert out["n_train"] == 0
    out = api.post(f"{API}/sessions/{sid}/step", json={"steps": 3}).json()
    assert out["paused"] and "no training points" in out["paused_reason"] and out["rows"] == []
    api.post(f"{API}/sessions/{sid}/points", json={"add": [{"x": 0.5, "y": 0.5, "label": 1}]})
    out = api.post(f"{API}/sessions/{sid}/step", json={"steps": 3}).json()
    assert not out["paused"] and out["step"] == 3
