"""A classroom on one small machine: 1, 8, 32 and 100 students streaming generations at once.

    .venv/bin/python bench/bench_classroom.py             # about 5 minutes on 2 cores
    .venv/bin/python bench/bench_classroom.py --quick     # 1, 8 and 32 clients, fewer tokens

A real `prediction-machine serve` subprocess on loopback, started with --max-running 32 so
up to 32 generations decode together in one batch (prediction_machine/batching.py); the
rest wait in the queue (web/admission.Slots). Each client is an asyncio task streaming
POST /api/generate (server-sent events) with its own prompt and seed.

Reported per level:
- aggregate tokens/s: every client's tokens over the wall time from the first request to
  the last `done`; the ratio is against the single-client rate measured in the same run;
- p50 / p95 time per step: the gaps between consecutive `step` events of each client,
  pooled over clients (a queued client's wait is its time to first token, reported apart);
- memory: the server's peak resident set size while the level ran.
Each level is bounded in time; clients still running at the deadline are cancelled and
counted with what they received.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ANIMALS = ["cat", "owl", "whale", "fox", "bee", "horse", "crow", "seal", "ant", "wolf"]


def row(benchmark, ours, reference, unit, note="", ratio=None):
    if ratio is None and ours is not None and reference:
        ratio = ours / reference
    return {"benchmark": benchmark, "ours": ours, "reference": reference, "ratio": ratio, "unit": unit, "note": note}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def start_server(precision: str, max_running: int = 32, max_queued: int = 128):
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "prediction_machine", "serve", "--port", str(port), "--precision", precision,
         "--max-running", str(max_running), "--max-queued", str(max_queued)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode(errors='replace')[-500:]}")
        try:
            if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server not ready within 120 s")


class PeakRSS:
    """Samples a process's resident memory in a thread; .peak in MB."""

    def __init__(self, pid: int):
        import psutil

        self.proc, self.peak, self.stop = psutil.Process(pid), 0.0, threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def sample(self):
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss / 2**20)
            except Exception:  # noqa: BLE001 - the process ended
                return
            self.stop.wait(0.2)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


async def one_client(client, url: str, n: int, max_new: int, deadline: float) -> dict:
    body = {"prompt": f"Tell me a short story about a {ANIMALS[n % len(ANIMALS)]} called number {n}.",
            "max_new_tokens": max_new, "temperature": 0.8, "seed": n, "top_n": 10}
    t0 = time.perf_counter()
    stamps: list[float] = []
    status = "ok"
    try:
        async with client.stream("POST", url + "/api/generate", json=body) as r:
            if r.status_code != 200:
                return {"stamps": [], "t0": t0, "status": f"HTTP {r.status_code}"}
            async for line in r.aiter_lines():
                if line == "event: step":
                    stamps.append(time.perf_counter())
                elif line == "event: error":
                    status = "error"
                if time.perf_counter() > deadline:
                    status = "deadline"
                    break
    except Exception as e:  # noqa: BLE001 - counted, not fatal
        status = f"{type(e).__name__}"
    return {"stamps": stamps, "t0": t0, "status": status}


async def level(url: str, clients: int, max_new: int, budget_s: float) -> dict:
    import httpx

    deadline = time.perf_counter() + budget_s
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
    async with httpx.AsyncClient(timeout=httpx.Timeout(budget_s + 30), limits=limits) as client:
        t0 = time.perf_counter()
        results = await asyncio.gather(*(one_client(client, url, n, max_new, deadline) for n in range(clients)))
    ends = [r["stamps"][-1] for r in results if r["stamps"]]
    wall = (max(ends) if ends else time.perf_counter()) - t0
    tokens = sum(len(r["stamps"]) for r in results)
    gaps = [b - a for r in results for a, b in zip(r["stamps"], r["stamps"][1:], strict=False)]
    ttft = [r["stamps"][0] - r["t0"] for r in results if r["stamps"]]
    bad = [r["status"] for r in results if r["status"] != "ok"]
    return {"tokens": tokens, "wall": wall, "rate": tokens / wall if wall > 0 else 0.0,
            "p50": percentile(gaps, 0.5), "p95": percentile(gaps, 0.95),
            "ttft": statistics.median(ttft) if ttft else float("nan"), "bad": bad}


def run(quick: bool = False, precision: str = "fp32-fused") -> list[dict]:
    levels = [1, 8, 32] if quick else [1, 8, 32, 100]
    max_new = 16 if quick else 32
    proc, url = start_server(precision)
    rows, single = [], None
    try:
        import httpx

        # Warm-up: the first generation pays for lazy set-up (threads, allocator), not the steady state.
        httpx.post(url + "/api/generate", json={"prompt": "Hi", "max_new_tokens": 2}, timeout=120)
        for n in levels:
            with PeakRSS(proc.pid) as mem:
                r = asyncio.run(level(url, n, max_new, budget_s=60 + 4 * n))
            single = single or r["rate"]
            target = {32: "; target >= 8x single, p95 < 1 s, RSS < 2.5 GB"}.get(n, "")
            note = (f"p50 step {r['p50']:.2f} s, p95 {r['p95']:.2f} s, median time to first token "
                    f"{r['ttft']:.1f} s, peak RSS {mem.peak:.0f} MB, {r['tokens']} tokens in {r['wall']:.1f} s"
                    f"{target}" + (f"; {len(r['bad'])} clients {sorted(set(r['bad']))}" if r["bad"] else ""))
            rows.append(row(f"classroom, {n} streaming client{'s' if n > 1 else ''}: aggregate", r["rate"], single,
                            "tok/s", note))
            if n == 32:
                rows.append(row("classroom, 32 clients: p95 time per step", r["p95"], 1.0, "s", "target < 1 s"))
                rows.append(row("classroom, 32 clients: server peak RSS", mem.peak, 2560.0, "MB", "target < 2.5 GB"))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    for r in rows:
        r["note"] = f"{precision}, --max-running 32, {max_new} new tokens, temperature 0.8; " + r["note"]
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import print_table

    print_table(run(quick="--quick" in sys.argv))
