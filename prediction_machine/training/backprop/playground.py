"""A training session of the playground: a 2-D dataset, an MLP, and plain gradient descent on it.

Reference: the TensorFlow Playground (Smilkov & Carter, 2016), whose controls this mirrors.

One `Session` owns its points, its network and its history. `step(n)` runs n updates of
mini-batch gradient descent and records the train and test loss after each. Nothing
diverges silently: the first non-finite loss or weight pauses the session with a reason, and a
loss that keeps jumping far above where it started (too large a learning rate, overshooting
without overflowing) gets a warning that names the learning rate and a smaller one to try.
`grid()` is the picture of the whole network's answer over the plane; `neuron_grids()` is the
same picture for each hidden neuron alone, which shows what each one has learned to detect.
`reset()` goes back to the very same initial weights (and the same batch order), so two
runs with different settings start from the same place; `new_weights()` draws fresh ones.

`SessionStore` is the small, bounded, self-expiring set of sessions a server keeps.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field, replace

import torch

from prediction_machine.training.backprop import datasets
from prediction_machine.training.backprop.nn import ACTIVATIONS, init_parameters
from prediction_machine.training.backprop.vectorized import TensorMLP, bce_with_logits, one_thread

MAX_HISTORY = 2000  # rows kept per session; beyond this every other row is dropped
NO_POINTS = "There are no training points: add some by clicking on the plane."
DIVERGING = 2.0  # a training loss above twice its starting value, again and again, means the steps overshoot
EXPLODED = 1000.0  # a mean cross-entropy this large means confidently wrong by a factor e^1000: overshooting


@dataclass(frozen=True)
class PlaygroundConfig:
    dataset: str = "moons"  # moons, circles, xor or spiral
    n_points: int = 200  # points generated (user clicks add more)
    noise: float = 0.1  # standard deviation of the Gaussian jitter added to every point
    test_fraction: float = 0.2  # share of the generated points held out to measure generalisation
    hidden: tuple[int, ...] = (8, 8)  # width of each hidden layer; () is logistic regression
    activation: str = "tanh"  # tanh, relu or sigmoid, in every hidden layer
    learning_rate: float = 0.3  # the step size of w ← w − lr · grad
    batch_size: int = 32  # points per update; ≥ the training set means full-batch gradient descent
    l2: float = 0.0  # weight decay: the objective adds l2 · Σ w²
    seed: int = 0  # which points are drawn, and the order of the mini-batches
    init_seed: int = 0  # which initial weights are drawn

    def __post_init__(self) -> None:
        if self.dataset not in datasets.GENERATORS:
            raise ValueError(f"dataset must be one of {', '.join(datasets.GENERATORS)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}")
        if not 0 <= self.test_fraction < 1:
            raise ValueError("test_fraction must be in [0, 1)")

    @property
    def sizes(self) -> list[int]:
        return [2, *self.hidden, 1]


@dataclass
class Point:
    x: float
    y: float
    label: int  # 0 or 1
    split: str  # "train" or "test"
    user: bool = False  # added by a click, not by the generator


@dataclass
class Record:
    step: int
    train_loss: float  # mean cross-entropy on the training points (without the L2 term)
    test_loss: float | None  # ... on the held-out points (None when there are none)
    train_accuracy: float
    test_accuracy: float | None


@dataclass
class Session:
    config: PlaygroundConfig
    points: list[Point] = field(default_factory=list)
    step_count: int = 0
    history: list[Record] = field(default_factory=list)
    paused_reason: str | None = None  # set when training stopped by itself, and why

    def __post_init__(self) -> None:
        X, y = datasets.make(self.config.dataset, self.config.n_points, self.config.noise, self.config.seed)
        n_test = round(len(X) * self.config.test_fraction)
        self.points = [Point(float(a), float(b), int(c), "test" if i < n_test else "train")
                       for i, ((a, b), c) in enumerate(zip(X, y, strict=True))]
        self.lock = threading.Lock()  # one request at a time may train or edit a session
        self.last_used = time.monotonic()
        self._init_weights(self.config.init_seed)

    # ------------------------------------------------------------------------- weights

    def _init_weights(self, seed: int) -> None:
        self.config = replace(self.config, init_seed=seed)
        self.initial = init_parameters(self.config.sizes, seed)
        self.reset()

    def reset(self) -> None:
        """Back to the initial weights and batch order of this session; the points stay."""
        self.net = TensorMLP(self.config.sizes, self.config.activation, params=self.initial)
        self.batches = torch.Generator().manual_seed(self.config.seed)
        self.step_count, self.history, self.paused_reason = 0, [], None
        self._data = None
        self.history.append(self.evaluate())

    def new_weights(self, seed: int | None = None) -> None:
        self._init_weights(secrets.randbelow(2**31) if seed is None else seed)

    def set_hyperparameters(self, learning_rate: float | None = None, batch_size: int | None = None,
                            l2: float | None = None) -> None:
        """Change what the next steps do, without touching the weights."""
        asked = (("learning_rate", learning_rate), ("batch_size", batch_size), ("l2", l2))
        changes = {k: v for k, v in asked if v is not None}
        self.config = replace(self.config, **changes)
        if self.paused_reason and "learning_rate" in changes:
            self.paused_reason = None if self.net.finite() else self.paused_reason

    # ------------------------------------------------------------------------- points

    def add_points(self, new: list[tuple[float, float, int]]) -> None:
        """User points join the training set (they are what the learner wants the net to fit)."""
        for x, y, label in new:
            self.points.append(Point(float(x), float(y), int(label), "train", user=True))
        self._data = None
        if new and self.paused_reason == NO_POINTS:
            self.paused_reason = None

    def remove_points(self, indices: list[int]) -> None:
        drop = set(indices)
        self.points = [p for i, p in enumerate(self.points) if i not in drop]
        self._data = None

    def data(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """{"train": (X (N, 2), y (N,)), "test": ...} as float64 tensors, rebuilt when points change."""
        if self._data is None:
            self._data = {}
            for split in ("train", "test"):
                pts = [p for p in self.points if p.split == split]
                X = torch.tensor([[p.x, p.y] for p in pts], dtype=torch.float64).reshape(-1, 2)  # (N, 2)
                y = torch.tensor([float(p.label) for p in pts], dtype=torch.float64)  # (N,)
                self._data[split] = (X, y)
        return self._data

    # ------------------------------------------------------------------------- training

    @torch.no_grad()
    def evaluate(self) -> Record:
        out = {}
        for split, (X, y) in self.data().items():
            if len(X) == 0:
                out[split] = (None, None)
                continue
            z = self.net.forward(X)  # (N,)
            loss = bce_with_logits(z, y).mean().item()
            out[split] = (loss, ((z > 0).double() == y).double().mean().item())
        (tl, ta), (vl, va) = out["train"], out["test"]
        return Record(self.step_count, math.nan if tl is None else tl, vl, math.nan if ta is None else ta, va)

    def step(self, n: int = 1) -> list[Record]:
        """Up to n updates of gradient descent; returns the new history rows (fewer if it paused)."""
        with one_thread():
            return self._steps(n)

    def _steps(self, n: int) -> list[Record]:
        rows = []
        X, y = self.data()["train"]
        if len(X) == 0:
            self.paused_reason = NO_POINTS
            return rows
        for _ in range(n):
            if self.paused_reason:
                break
            B = self.config.batch_size
            if B < len(X):
                idx = torch.randperm(len(X), generator=self.batches)[:B]  # (B,)
                xb, yb = X[idx], y[idx]
            else:
                xb, yb = X, y
            total, _ = self.net.gradients(xb, yb, self.config.l2)
            # One check for every gradient: a sum is finite only if all its terms are.
            grad_sum = sum(W.grad.sum() + b.grad.sum() for W, b in self.net.params)
            if not math.isfinite(total) or not math.isfinite(grad_sum.item()):
                self._pause(f"the loss became {_name(total)}")
                break
            self.net.sgd_step(self.config.learning_rate)
            self.step_count += 1
            if not self.net.finite():
                self._pause("a weight became infinite or NaN")
                break
            record = self.evaluate()
            if not math.isfinite(record.train_loss):
                self._pause(f"the training loss became {_name(record.train_loss)}")
            elif record.train_loss > EXPLODED:
                self._pause(f"the training loss exploded to {record.train_loss:.4g} "
                            f"(it started at {self.history[0].train_loss:.3g})")
            rows.append(record)
            self._remember(record)
        return rows

    def _pause(self, what: str) -> None:
        self.paused_reason = (
            f"Training paused at step {self.step_count}: {what}. The learning rate "
            f"{self.config.learning_rate:g} is probably too large for this network: "
            "lower it and start again from the same weights (Reset)."
        )

    def _remember(self, record: Record) -> None:
        self.history.append(record)
        if len(self.history) > MAX_HISTORY:
            self.history = self.history[::2]  # keep the whole run, at half the resolution

    # ------------------------------------------------------------------------- what is drawn

    @torch.no_grad()
    def grid(self, resolution: int = 40) -> torch.Tensor:
        """P(class 1) at the centres of a resolution² grid over the plane; row 0 is the top (y = +EXTENT)."""
        with one_thread():
            P = self.net.predict(plane_points(resolution))  # (R*R, 2) -> (R*R,)
        return P.reshape(resolution, resolution)  # (R, R)

    @torch.no_grad()
    def neuron_grids(self, resolution: int = 16) -> list[torch.Tensor]:
        """Each hidden neuron's output over the same grid as `grid`: one (O, R, R) tensor per hidden layer.

        This is what each neuron has learned to detect: the output neuron combines these pictures.
        """
        with one_thread():
            outs = self.net.hidden_outputs(plane_points(resolution))  # [(R*R, O), ...]
        return [h.T.reshape(-1, resolution, resolution) for h in outs]  # (R*R, O) -> (O, R, R)

    def divergence_warning(self, window: int = 20) -> str | None:
        """A plain-words warning when the recent training loss keeps jumping far above where it started.

        Too large a learning rate makes each step overshoot the valley, so the loss swings up and down
        instead of falling; it may never become infinite, so the pause above would not catch it.
        """
        recent = [r.train_loss for r in self.history[-window:] if math.isfinite(r.train_loss)]
        start = self.history[0].train_loss
        high = [v for v in recent if v > DIVERGING * start]
        if len(self.history) < 3 or len(high) < 3:
            return None
        lr = self.config.learning_rate
        return (f"Training is diverging: the training loss jumps as high as {max(high):.3g} "
                f"(it started at {start:.3g}). The learning rate {lr:g} is too large, so each step "
                f"overshoots. Try a smaller one, such as {lr / 10:g}, then Reset.")

    def network(self) -> list[dict]:
        """Each layer's weights, biases and their gradients from the last step (None before the first)."""
        layers = []
        for W, b in self.net.params:
            layers.append({
                "weights": W.detach().tolist(),
                "bias": b.detach().tolist(),
                "weight_grads": W.grad.tolist() if W.grad is not None else None,
                "bias_grads": b.grad.tolist() if b.grad is not None else None,
            })
        return layers

    def summary(self) -> dict:
        last = self.history[-1]
        return {
            "step": self.step_count,
            "paused": self.paused_reason is not None,
            "paused_reason": self.paused_reason,
            "warning": None if self.paused_reason else self.divergence_warning(),
            "config": {**asdict(self.config), "hidden": list(self.config.hidden)},
            "latest": asdict(last),
            "n_train": sum(p.split == "train" for p in self.points),
            "n_test": sum(p.split == "test" for p in self.points),
        }


def plane_points(resolution: int) -> torch.Tensor:
    """The centres of a resolution² grid over [-EXTENT, EXTENT]², row by row from the top: (R*R, 2)."""
    e = datasets.EXTENT
    c = (torch.arange(resolution, dtype=torch.float64) + 0.5) / resolution * 2 * e - e  # (R,)
    gy, gx = torch.meshgrid(c.flip(0), c, indexing="ij")  # (R, R) each
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)  # (R*R, 2)


def _name(x: float) -> str:
    return "NaN" if math.isnan(x) else "infinite" if math.isinf(x) else f"{x:g}"


# ----------------------------------------------------------------------------- the store


class StoreFull(Exception):
    """Every session slot is in use and none has been idle long enough to expire."""


class SessionStore:
    """At most `limit` sessions, at most `per_owner` of them for one owner, each forgotten after
    `idle_seconds` without a request (so one person cannot lock the playground for everyone)."""

    def __init__(self, limit: int = 32, idle_seconds: float = 900.0, per_owner: int | None = None):
        self.limit, self.idle_seconds, self.per_owner = limit, idle_seconds, per_owner
        self.sessions: dict[str, Session] = {}
        self.owners: dict[str, str | None] = {}  # session key -> who created it
        self.lock = threading.Lock()

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, s in self.sessions.items() if now - s.last_used > self.idle_seconds]:
            del self.sessions[key]
            self.owners.pop(key, None)

    def _check_room(self, owner: str | None) -> None:
        if len(self.sessions) >= self.limit:
            raise StoreFull(f"{len(self.sessions)} playground sessions are open (the limit); "
                            "delete one or wait")
        mine = sum(1 for o in self.owners.values() if o == owner)
        if owner is not None and self.per_owner is not None and mine >= self.per_owner:
            raise StoreFull(f"you already have {mine} playground sessions open (the limit per person is "
                            f"{self.per_owner}); delete one, or it expires after "
                            f"{self.idle_seconds / 60:g} idle minutes")

    def create(self, config: PlaygroundConfig, owner: str | None = None) -> tuple[str, Session]:
        with self.lock:
            self._expire()
            self._check_room(owner)
        session = Session(config)  # built outside the lock: generating points takes a moment
        key = secrets.token_urlsafe(12)
        with self.lock:
            self._check_room(owner)
            self.sessions[key] = session
            self.owners[key] = owner
        return key, session

    def owner(self, key: str) -> str | None:
        return self.owners.get(key)

    def get(self, key: str) -> Session | None:
        with self.lock:
            self._expire()
            session = self.sessions.get(key)
            if session is not None:
                session.last_used = time.monotonic()
            return session

    def delete(self, key: str) -> bool:
        with self.lock:
            self.owners.pop(key, None)
            return self.sessions.pop(key, None) is not None

    def __len__(self) -> int:
        with self.lock:
            self._expire()
            return len(self.sessions)
