"""The same MLP as nn.py, as PyTorch tensors: one matrix multiply per layer instead of one Value per number.

Reference: the PyTorch autograd documentation. Shapes: N = points, I = inputs to a layer,
O = outputs of a layer.

The function computed is identical to `nn.MLP` (same layout of weights, same activations,
same loss), only batched, so the playground can train at many steps per second. The tests
load one set of numbers into both and compare losses and gradients to 1e-9.
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager

import torch

from prediction_machine.training.backprop.nn import ACTIVATIONS, init_parameters

ACT = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}


@contextmanager
def one_thread():
    """Run torch single-threaded inside the block, in this thread only.

    Why: these matrices are tiny (8 x 200). Handing each op to OpenMP worker threads costs
    more than the op, and on a busy 2-core machine a parallel region can stall for
    milliseconds waiting for a descheduled worker: measured 35 steps/s with 2 threads
    against 400 with 1.

    torch.set_num_threads sets two things: the calling thread's own pools (OpenMP, MKL), and the
    default a thread takes the first time torch runs in it. Left at 1 for the whole block, every thread
    the server started meanwhile would keep one thread for good (docs/security.md). So the default
    is put back at once, from a short-lived helper thread, and this thread alone stays at 1.
    """
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    helper = threading.Thread(target=torch.set_num_threads, args=(saved,))
    helper.start()
    helper.join()
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def bce_with_logits(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-point cross-entropy (N,), the same formula as nn.bce_with_logits: softplus(z) − z·y."""
    return torch.nn.functional.softplus(z) - z * y


class TensorMLP:
    """Weights as float64 tensors [(W (O, I), b (O,)), ...]; the last layer is linear and has O = 1."""

    def __init__(self, sizes: list[int], activation: str = "tanh", seed: int = 0, params=None):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.sizes, self.activation = list(sizes), activation
        self.load(params if params is not None else init_parameters(sizes, seed))

    def load(self, params) -> None:
        """Set the numbers from the nested-list layout of nn.init_parameters (copies them)."""
        self.params = [
            (torch.tensor(W, dtype=torch.float64, requires_grad=True),
             torch.tensor(b, dtype=torch.float64, requires_grad=True))
            for W, b in params
        ]

    def export(self) -> list[tuple[list[list[float]], list[float]]]:
        return [(W.detach().tolist(), b.detach().tolist()) for W, b in self.params]

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Logits z (N,) for points X (N, 2)."""
        h = X
        last = len(self.params) - 1
        for i, (W, b) in enumerate(self.params):
            h = h @ W.T + b  # (N, I) @ (I, O) + (O,) -> (N, O)
            if i < last:
                h = ACT[self.activation](h)
        return h[:, 0]  # (N, 1) -> (N,)

    @torch.no_grad()
    def hidden_outputs(self, X: torch.Tensor) -> list[torch.Tensor]:
        """What each hidden layer outputs for points X (N, 2): one (N, O) tensor per hidden layer."""
        outs, h = [], X
        for W, b in self.params[:-1]:
            h = ACT[self.activation](h @ W.T + b)  # (N, I) @ (I, O) + (O,) -> (N, O)
            outs.append(h)
        return outs

    def loss(self, X: torch.Tensor, y: torch.Tensor, l2: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(objective, data loss): mean cross-entropy of sigmoid(z) against y (N,), plus l2 · Σ W²."""
        z = self.forward(X)  # (N,)
        data = bce_with_logits(z, y).mean()
        reg = sum((W * W).sum() for W, _ in self.params) if l2 else torch.zeros((), dtype=torch.float64)
        return data + l2 * reg, data

    def gradients(self, X: torch.Tensor, y: torch.Tensor, l2: float = 0.0) -> tuple[float, float]:
        """Fill .grad of every weight with d(objective)/d(weight); returns (objective, data loss)."""
        for W, b in self.params:
            W.grad = None
            b.grad = None
        total, data = self.loss(X, y, l2)
        total.backward()
        return total.item(), data.item()

    @torch.no_grad()
    def sgd_step(self, lr: float) -> None:
        """w ← w − lr · grad, for every weight and bias."""
        for W, b in self.params:
            W -= lr * W.grad
            b -= lr * b.grad

    @torch.no_grad()
    def predict(self, X: torch.Tensor) -> torch.Tensor:
        """Probability of class 1 for each point: sigmoid(z) (N,)."""
        return torch.sigmoid(self.forward(X))

    @torch.no_grad()
    def finite(self) -> bool:
        """True when no weight is NaN or infinite (one sum: it is finite only if every term is)."""
        return math.isfinite(sum(W.sum() + b.sum() for W, b in self.params).item())
