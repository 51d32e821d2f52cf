"""The backprop playground's speed: visible updates per second through the real HTTP API.

    .venv/bin/python bench/bench_backprop.py            # about 30 s on 2 cores
    .venv/bin/python bench/bench_backprop.py --quick    # a few seconds, noisier

A "visible update" is what the page's Play loop does once per animation frame: one
POST /api/backprop/sessions/{id}/step with 3 training steps and a 30 x 30 decision-boundary
grid, answered with the new loss rows, the grid and every weight and gradient. The network
is 2-8-8-1 on 200 moons points (batch 32), served by uvicorn in a subprocess and called
over HTTP with keep-alive, like a browser. Target: at least 30 per second.

Second row: training steps per second of the tensor path (vectorized.TensorMLP) against
the scalar engine (nn.MLP on Values) on the same network and batch: why the playground
trains with tensors.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET = 30.0  # visible updates per second: the goal for a playground that feels live
SERVER = ("import sys, uvicorn; from prediction_machine.web.app import create_app; "
          "uvicorn.run(create_app(), host='127.0.0.1', port=int(sys.argv[1]), log_level='warning')")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_updates_per_second(seconds: float) -> tuple[float, float]:
    """(median updates/s over 1-second windows, median ms per update) against a real server."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    url = f"http://127.0.0.1:{port}/api/backprop/sessions"
    try:
        with httpx.Client(timeout=10) as http:
            deadline = time.time() + 60
            while True:
                try:
                    http.get(f"http://127.0.0.1:{port}/api/health")
                    break
                except httpx.TransportError:
                    if time.time() > deadline or proc.poll() is not None:
                        raise RuntimeError("the server did not start") from None
                    time.sleep(0.2)
            sid = http.post(
                url,
                json={
                    "dataset": "moons",
                    "n_points": 200,
                    "hidden": [8, 8],
                    "batch_size": 32,
                    "init_seed": 0,
                },
            ).json()["id"]
            for _ in range(10):  # warm up
                http.post(f"{url}/{sid}/step", json={"steps": 3, "grid": 30})
            windows, latencies = [], []
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                t0, n = time.perf_counter(), 0
                while time.perf_counter() - t0 < 1.0:
                    t = time.perf_counter()
                    r = http.post(f"{url}/{sid}/step", json={"steps": 3, "grid": 30})
                    r.raise_for_status()
                    latencies.append((time.perf_counter() - t) * 1000)
                    n += 1
                windows.append(n / (time.perf_counter() - t0))
            http.delete(f"{url}/{sid}")
        return statistics.median(windows), statistics.median(latencies)
    finally:
        proc.terminate()
        proc.wait(10)


def steps_per_second(quick: bool) -> tuple[float, float]:
    """(tensor path, scalar engine) training steps per second on 2-8-8-1, batch 32, interleaved."""
    import torch

    from prediction_machine.training.backprop import datasets, nn
    from prediction_machine.training.backprop.vectorized import TensorMLP, one_thread

    X, y = datasets.make("moons", 32, 0.1, seed=0)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    fast, slow = TensorMLP([2, 8, 8, 1], "tanh", seed=0), nn.MLP([2, 8, 8, 1], "tanh", seed=0)
    fast_rates, slow_rates = [], []
    for _ in range(3 if quick else 7):
        t0 = time.perf_counter()
        with one_thread():
            for _ in range(100):
                fast.gradients(Xt, yt)
                fast.sgd_step(0.1)
        fast_rates.append(100 / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for _ in range(3):
            loss = nn.loss(slow, X.tolist(), y.tolist())
            loss.backward()
            for p in slow.parameters():
                p.data -= 0.1 * p.grad
        slow_rates.append(3 / (time.perf_counter() - t0))
    return statistics.median(fast_rates), statistics.median(slow_rates)


def run(quick: bool = False) -> list[dict]:
    rate, ms = api_updates_per_second(4 if quick else 15)
    fast, slow = steps_per_second(quick)
    return [
        {
            "benchmark": "backprop: visible updates/s (2-8-8-1, 200 moons, HTTP API)",
            "ours": rate,
            "reference": TARGET,
            "ratio": rate / TARGET,
            "unit": "updates/s",
            "note": f"reference = the goal; each update = 3 steps + 30x30 boundary + weights; "
                    f"median {ms:.1f} ms per request",
        },
        {
            "benchmark": "backprop: training steps/s, tensors vs scalar engine",
            "ours": fast,
            "reference": slow,
            "ratio": fast / slow,
            "unit": "steps/s",
            "note": "2-8-8-1, batch 32, same weights; reference = nn.MLP on Values",
        },
    ]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import print_table

    print_table(run(quick="--quick" in sys.argv))
