"""API of the backprop section: the one-neuron walkthrough and the training playground.

Thin on purpose: validate, call prediction_machine.training.backprop, serialize. Playground sessions
live in a small in-memory SessionStore, one per app (see `store()`): bounded in number (and,
in classroom mode, per student), forgotten after playground_idle_s (15 minutes), and each
trained by one request at a time. A student's session answers only to that student (others get
the 404 of a missing one).
"""

from __future__ import annotations

import secrets
import threading
from typing import Annotated, Literal

import torch
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import Field
from starlette.exceptions import HTTPException

from prediction_machine.jsonsafe import json_number as num
from prediction_machine.training.backprop import datasets
from prediction_machine.training.backprop.neuron import neuron_step
from prediction_machine.training.backprop.playground import PlaygroundConfig, Session, SessionStore, StoreFull
from prediction_machine.web import identity
from prediction_machine.web.admission import Slots
from prediction_machine.web.deps import settings
from prediction_machine.web.security import owner_of
from prediction_machine.web.streaming import SSE_RESPONSES, stream
from prediction_machine.web.validation import Strict, unprocessable

router = APIRouter(prefix="/api/backprop", tags=["backprop"])

MAX_SESSIONS = 24  # open playgrounds on one server; the 25th gets 429 until one is deleted or expires
MAX_POINTS = 600  # generated + clicked points in one session
MAX_STEPS = 200  # updates per step request (one request stays well under a second)
MAX_FRAMES = 3000  # frames per stream
MAX_NEURON_GRID = 24  # per-neuron pictures: 64 neurons x 24² cells stays a small answer

Activation = Literal["tanh", "relu", "sigmoid"]
Coordinate = Annotated[float, Field(ge=-datasets.EXTENT, le=datasets.EXTENT, strict=True)]
SessionId = Annotated[str, Path(min_length=8, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]


class NeuronRequest(Strict):
    x1: float = Field(1.0, ge=-10, le=10, description="first input", strict=True)
    x2: float = Field(-0.5, ge=-10, le=10, description="second input", strict=True)
    w1: float = Field(0.6, ge=-10, le=10, description="weight of x1", strict=True)
    w2: float = Field(-0.4, ge=-10, le=10, description="weight of x2", strict=True)
    b: float = Field(0.1, ge=-10, le=10, description="bias", strict=True)
    target: float = Field(1.0, ge=-10, le=10, description="the output we want", strict=True)
    lr: float = Field(0.1, gt=0, le=10,
                      description="learning rate of the update w <- w - lr * grad", strict=True)
    activation: Activation = "tanh"


class SessionRequest(Strict):
    dataset: Literal["moons", "circles", "xor", "spiral"] = "moons"
    n_points: int = Field(200, ge=4, le=500, strict=True, description="points generated")
    noise: float = Field(0.1, ge=0, le=0.5, description="std of the jitter added to every point", strict=True)
    test_fraction: float = Field(0.2, ge=0, le=0.5,
                                 description="share of the points held out for the test loss", strict=True)
    hidden: list[Annotated[int, Field(ge=1, le=16, strict=True)]] = Field(
        [8, 8], max_length=4, description="hidden layer widths (at most 4 layers of 16)")
    activation: Activation = "tanh"
    learning_rate: float = Field(0.3, gt=0, le=10, strict=True)
    batch_size: int = Field(32, ge=1, le=MAX_POINTS, strict=True)
    l2: float = Field(0.0, ge=0, le=1, strict=True)
    seed: int = Field(0, ge=0, le=2**31 - 1, strict=True, description="which points, and the batch order")
    init_seed: int | None = Field(None, ge=0, le=2**31 - 1, strict=True,
                                  description="which initial weights (default: fresh random)")


class StepRequest(Strict):
    steps: int = Field(10, ge=1, le=MAX_STEPS, strict=True, description="updates to run before answering")
    grid: int = Field(40, ge=0, le=60, strict=True,
                      description="decision-boundary grid resolution (0 = none)")
    neurons: int = Field(0, ge=0, le=MAX_NEURON_GRID, strict=True,
                         description="each hidden neuron's output on a grid this fine (0 = none)")


class StreamRequest(Strict):
    frames: int = Field(100, ge=1, le=MAX_FRAMES, strict=True, description="frames to send")
    steps_per_frame: int = Field(5, ge=1, le=MAX_STEPS, strict=True)
    grid: int = Field(30, ge=0, le=60, strict=True)


class SettingsRequest(Strict):
    learning_rate: float | None = Field(None, gt=0, le=10, strict=True)
    batch_size: int | None = Field(None, ge=1, le=MAX_POINTS, strict=True)
    l2: float | None = Field(None, ge=0, le=1, strict=True)


class NewPoint(Strict):
    x: Coordinate
    y: Coordinate
    label: Literal[0, 1]


class PointsRequest(Strict):
    add: list[NewPoint] = Field(default_factory=list, max_length=50)
    remove: list[Annotated[int, Field(ge=0, strict=True)]] = Field(
        default_factory=list, max_length=MAX_POINTS, description="indices into the session's points")


class NewWeightsRequest(Strict):
    seed: int | None = Field(None, ge=0, le=2**31 - 1, strict=True, description="default: fresh random")


# ----------------------------------------------------------------------------- serialization


def record_json(r) -> dict:
    return {"step": r.step, "train_loss": num(r.train_loss, 6), "test_loss": num(r.test_loss, 6),
            "train_accuracy": num(r.train_accuracy, 4), "test_accuracy": num(r.test_accuracy, 4)}


def network_json(s: Session) -> list[dict]:
    def rows(m):
        return None if m is None else [[num(v, 5) for v in row] for row in m]

    def vec(v):
        return None if v is None else [num(x, 5) for x in v]

    return [{"weights": rows(L["weights"]), "bias": vec(L["bias"]), "weight_grads": rows(L["weight_grads"]),
             "bias_grads": vec(L["bias_grads"])} for L in s.network()]


def grid_json(s: Session, resolution: int) -> dict | None:
    if not resolution:
        return None
    P = s.grid(resolution)  # (R, R)
    if bool(torch.isfinite(P).all()):
        values = (P * 1000).round().div(1000).tolist()  # fast path: 3 decimals is finer than a pixel's colour
    else:
        values = [[num(p, 3) for p in row] for row in P.tolist()]
    return {"resolution": resolution, "extent": datasets.EXTENT, "values": values}


def neurons_json(s: Session, resolution: int) -> dict | None:
    """Each hidden neuron's output on a resolution² grid, top row first: values[layer][neuron]."""
    if not resolution:
        return None
    layers = [[[[num(v, 3) for v in row] for row in n] for n in L.tolist()]
              for L in s.neuron_grids(resolution)]
    return {"resolution": resolution, "activation": s.config.activation, "values": layers}


def summary_json(s: Session) -> dict:
    out = s.summary()
    out["latest"] = record_json(s.history[-1])
    return out


def frame_json(s: Session, rows, resolution: int, neurons: int = 0) -> dict:
    return {**summary_json(s), "rows": [record_json(r) for r in rows], "grid": grid_json(s, resolution),
            "network": network_json(s),
            "neurons": neurons_json(s, neurons)}


def state_json(key: str, s: Session, resolution: int = 40, neurons: int = 16) -> dict:
    return {
        "id": key,
        **summary_json(s),
        "points": [{"x": round(p.x, 5), "y": round(p.y, 5), "label": p.label, "split": p.split,
                    "user": p.user} for p in s.points],
        "history": [record_json(r) for r in s.history],
        "grid": grid_json(s, resolution),
        "network": network_json(s),
        "neurons": neurons_json(s, neurons),
    }


# ----------------------------------------------------------------------------- helpers


def store(request: Request) -> SessionStore:
    """This app's playground sessions (made on first use: the router adds no startup hook)."""
    state = request.app.state
    if not hasattr(state, "backprop_sessions"):
        s = settings(request)
        state.backprop_sessions = SessionStore(MAX_SESSIONS, s.playground_idle_s,
                                               s.playground_sessions_per_client)
    return state.backprop_sessions


def _missing(request: Request, key: str) -> HTTPException:
    idle = store(request).idle_seconds / 60
    return HTTPException(404, f"session: no playground session {key!r} "
                              f"(it may have expired after {idle:g} idle minutes)")


def _owned(request: Request, key: str) -> None:
    """Someone else's session answers exactly as a missing one: its existence is not revealed."""
    viewer = owner_of(request)
    sessions = store(request)
    if viewer is not None and key in sessions.owners and sessions.owner(key) != viewer:
        raise _missing(request, key)


class _Locked:
    """The session, with its lock held: one request trains or edits it at a time."""

    def __init__(self, request: Request, key: str):
        _owned(request, key)
        self.session = store(request).get(key)
        if self.session is None:
            raise _missing(request, key)

    def __enter__(self) -> Session:
        if not self.session.lock.acquire(timeout=5):
            raise HTTPException(429, "session: another request is still training this session; "
                                     "try again shortly", headers={"Retry-After": "1"})
        return self.session

    def __exit__(self, *exc) -> None:
        self.session.lock.release()


_creating = threading.Lock()  # the per-address count and the new session, one request at a time


def address_full(request: Request) -> None:
    """Classroom mode: 429 when the clients of this request's address already hold their sessions
    (ids are free to mint, so the per-person limit alone would not bound one machine)."""
    s, viewer = settings(request), owner_of(request)
    table = identity.addresses(request.app)
    ip = table.of(viewer) if s.token and viewer is not None else None
    if ip is None:
        return
    ours = table.clients_at(ip)
    held = sum(1 for owner in list(store(request).owners.values()) if owner in ours)
    if held >= s.playground_sessions_per_ip:
        raise HTTPException(429, f"sessions: your network address already holds {held} playground sessions "
                                 f"(the limit per address is {s.playground_sessions_per_ip}); delete one, "
                                 f"or they expire after {store(request).idle_seconds / 60:g} idle minutes",
                            headers={"Retry-After": "30"})


def _slots(request: Request) -> Slots:
    """Streams of training share a small pool of their own (the generation pool is for the model)."""
    state = request.app.state
    if not hasattr(state, "backprop_slots"):
        s = settings(request)  # a playground stream is training too: the training jobs' share per address
        state.backprop_slots = Slots(s.max_training_jobs, 4, s.training_jobs_per_ip if s.token else None,
                                     what="playground stream")
    return state.backprop_slots


# ----------------------------------------------------------------------------- routes


@router.post("/neuron",
             summary="One neuron, one step: forward values, gradients edge by edge, and the update")
def neuron(req: NeuronRequest) -> dict:
    step = neuron_step(req.x1, req.x2, req.w1, req.w2, req.b, req.target, req.lr, req.activation)
    out = step.to_dict()
    for node in out["nodes"]:
        node["data"], node["grad"] = num(node["data"], 9), num(node["grad"], 9)
    for edge in out["edges"]:
        for k in ("local", "contribution", "grad_after"):
            edge[k] = num(edge[k], 9)
    for u in out["updates"]:
        u["before"], u["grad"], u["after"] = num(u["before"], 9), num(u["grad"], 9), num(u["after"], 9)
    for k in ("prediction", "loss", "new_prediction", "new_loss"):
        out[k] = num(out[k], 9)
    out["activation"], out["lr"] = req.activation, req.lr
    return out


@router.get("/datasets", summary="The datasets, and the limits of a playground session")
def list_datasets(request: Request) -> dict:
    return {"datasets": list(datasets.GENERATORS), "extent": datasets.EXTENT, "limits": {
        "sessions": MAX_SESSIONS, "idle_seconds": store(request).idle_seconds,
        "sessions_per_person": store(request).per_owner, "points": MAX_POINTS, "steps_per_request": MAX_STEPS,
        "hidden_layers": 4, "hidden_width": 16}}


@router.post("/sessions", status_code=201,
             summary="Start a playground session: data, network, initial weights")
def create_session(req: SessionRequest, request: Request) -> dict:
    config = PlaygroundConfig(
        dataset=req.dataset, n_points=req.n_points, noise=req.noise, test_fraction=req.test_fraction,
        hidden=tuple(req.hidden), activation=req.activation, learning_rate=req.learning_rate,
        batch_size=req.batch_size, l2=req.l2, seed=req.seed,
        init_seed=secrets.randbelow(2**31) if req.init_seed is None else req.init_seed,
    )
    with _creating:
        address_full(request)
        try:
            key, session = store(request).create(config, owner=owner_of(request))
        except StoreFull as e:
            raise HTTPException(429, f"sessions: {e}", headers={"Retry-After": "30"}) from None
    with session.lock:
        return state_json(key, session)


@router.get("/sessions/{key}", summary="Everything about a session: points, history, boundary, weights")
def get_session(key: SessionId, request: Request,
                grid: int = Query(40, ge=0, le=60, description="boundary grid resolution")) -> dict:
    with _Locked(request, key) as s:
        return state_json(key, s, grid)


@router.delete("/sessions/{key}", status_code=204, summary="Forget a session")
def delete_session(key: SessionId, request: Request) -> Response:
    _owned(request, key)
    if not store(request).delete(key):
        raise _missing(request, key)
    return Response(status_code=204)


@router.post("/sessions/{key}/step",
             summary="Run up to `steps` updates; returns the new history rows and the new picture")
def step_session(key: SessionId, req: StepRequest, request: Request) -> dict:
    with _Locked(request, key) as s:
        rows = s.step(req.steps)
        return frame_json(s, rows, req.grid, req.neurons)


@router.post("/sessions/{key}/stream",
             summary="Train and send one server-sent event per frame ('paused' if it stops itself), "
                     "then 'done'",
             responses=SSE_RESPONSES)
def stream_session(key: SessionId, req: StreamRequest, request: Request):
    _Locked(request, key)  # 404 now, not inside the stream

    def work(should_stop):
        for _ in range(req.frames):
            if should_stop():
                return
            with _Locked(request, key) as s:
                frame = frame_json(s, s.step(req.steps_per_frame), req.grid)
            yield "frame", frame
            if frame["paused"]:
                yield "paused", {"reason": frame["paused_reason"], "step": frame["step"]}
                break
        yield "done", {"step": frame["step"], "paused": frame["paused"]}  # always the terminal event

    return stream(_slots(request), work, on_error=lambda e: {"error": str(getattr(e, "detail", e))})


@router.post("/sessions/{key}/reset",
             summary="Back to the same initial weights (and batch order); the points stay")
def reset_session(key: SessionId, request: Request) -> dict:
    with _Locked(request, key) as s:
        s.reset()
        return state_json(key, s)


@router.post("/sessions/{key}/new-weights", summary="Draw new initial weights, then reset to them")
def new_weights(key: SessionId, req: NewWeightsRequest, request: Request) -> dict:
    with _Locked(request, key) as s:
        s.new_weights(req.seed)
        return state_json(key, s)


@router.post("/sessions/{key}/settings",
             summary="Change learning rate, batch size or L2 without touching the weights")
def change_settings(key: SessionId, req: SettingsRequest, request: Request) -> dict:
    with _Locked(request, key) as s:
        s.set_hyperparameters(req.learning_rate, req.batch_size, req.l2)
        return summary_json(s)


@router.post("/sessions/{key}/points",
             summary="Add points (they join the training set) and/or remove points by index")
def edit_points(key: SessionId, req: PointsRequest, request: Request) -> dict:
    with _Locked(request, key) as s:
        bad = [i for i in req.remove if i >= len(s.points)]
        if bad:
            raise unprocessable("remove",
                                f"index {bad[0]} is out of range: the session has {len(s.points)} points")
        if len(s.points) - len(set(req.remove)) + len(req.add) > MAX_POINTS:
            raise unprocessable("add", f"a session holds at most {MAX_POINTS} points")
        s.remove_points(req.remove)
        s.add_points([(p.x, p.y, p.label) for p in req.add])
        return state_json(key, s)
