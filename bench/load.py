"""Overload test: 200 streaming generations at once against a real server on loopback.

The server runs as its own process (`prediction-machine serve`) with a few running slots and a
bounded queue. Every request must either end with a terminal event (`done` or `error`) or be
refused at once with 429/503 and a Retry-After header; no connection may hang. Meanwhile
/api/health is polled every 100 ms and must stay fast, and the server's memory is sampled
against a stated budget. Bounded in time (--deadline) and count (--clients).

    .venv/bin/python bench/load.py                      # the real model, 200 clients
    .venv/bin/python bench/load.py --clients 50 --tokens 8

Prints a summary (and --json for a machine-readable one); exits 1 if any check fails.
The small, fast version of this is tests/test_reliability.py::test_overload_small_*.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time

import httpx
import psutil


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def one(client: httpx.AsyncClient, i: int, args) -> dict:
    body = {"prompt": f"Tell me a fact about the number {i}.", "max_new_tokens": args.tokens, "seed": i}
    t0 = time.perf_counter()
    out = {"i": i, "status": None, "first_byte_s": None, "total_s": None, "last_event": None, "retry_after": None, "events": 0}
    async with client.stream("POST", "/api/generate", json=body) as r:
        out["status"] = r.status_code
        out["first_byte_s"] = time.perf_counter() - t0
        out["retry_after"] = r.headers.get("retry-after")
        if r.status_code == 200:
            async for line in r.aiter_lines():
                if line.startswith("event: "):
                    out["last_event"] = line[7:]
                    out["events"] += 1
                elif line.startswith("data: "):
                    json.loads(line[6:])  # every event is JSON
        else:
            await r.aread()
    out["total_s"] = time.perf_counter() - t0
    return out


async def poll_health(url: str, stop: asyncio.Event, samples: list[float]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        while not stop.is_set():
            t0 = time.perf_counter()
            r = await c.get("/api/health")
            samples.append((time.perf_counter() - t0) * 1000 if r.status_code == 200 else float("inf"))
            await asyncio.sleep(0.1)


async def sample_memory(proc: psutil.Process, stop: asyncio.Event, peak: list[int]) -> None:
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], proc.memory_info().rss)
        except psutil.Error:
            return
        await asyncio.sleep(0.1)


async def run(args, url: str, server: psutil.Process) -> dict:
    rss0 = server.memory_info().rss
    stop, health, peak = asyncio.Event(), [], [rss0]
    side = [asyncio.create_task(poll_health(url, stop, health)), asyncio.create_task(sample_memory(server, stop, peak))]
    limits = httpx.Limits(max_connections=args.clients + 10, max_keepalive_connections=args.clients + 10)
    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=args.deadline, limits=limits) as client:
        tasks = [asyncio.create_task(one(client, i, args)) for i in range(args.clients)]
        done, pending = await asyncio.wait(tasks, timeout=args.deadline)
        for t in pending:
            t.cancel()
    wall = time.perf_counter() - t0
    stop.set()
    await asyncio.gather(*side, return_exceptions=True)
    results = [t.result() for t in done if not t.exception()]
    errors = [repr(t.exception()) for t in done if t.exception()]
    ok = [r for r in results if r["status"] == 200]
    refused = [r for r in results if r["status"] in (429, 503)]
    other = [r for r in results if r["status"] not in (200, 429, 503)]
    finite_health = [h for h in health if h != float("inf")]
    return {
        "clients": args.clients, "max_running": args.max_running, "max_queued": args.max_queued, "tokens": args.tokens,
        "wall_s": round(wall, 2),
        "completed": len(ok),
        "completed_with_terminal_event": sum(r["last_event"] in ("done", "error") for r in ok),
        "refused": len(refused),
        "refused_with_retry_after": sum(bool(r["retry_after"]) for r in refused),
        "refusal_max_s": round(max((r["first_byte_s"] for r in refused), default=0), 3),
        "other_status": sorted({r["status"] for r in other}),
        "client_errors": errors[:5],
        "hanging": len(pending),
        "completed_max_s": round(max((r["total_s"] for r in ok), default=0), 2),
        "health_polls": len(health),
        "health_failed": len(health) - len(finite_health),
        "health_ms_p50": round(statistics.median(finite_health), 1) if finite_health else None,
        "health_ms_max": round(max(finite_health), 1) if finite_health else None,
        "rss_start_mib": round(rss0 / 2**20), "rss_peak_mib": round(peak[0] / 2**20),
        "rss_budget_mib": args.budget_mib,
    }


def verdict(s: dict, args) -> list[str]:
    bad = []
    if s["hanging"] or s["client_errors"] or s["other_status"]:
        bad.append(f"{s['hanging']} hanging, errors {s['client_errors']}, other statuses {s['other_status']}")
    if s["completed"] + s["refused"] != s["clients"]:
        bad.append("not every request was answered")
    if s["completed_with_terminal_event"] != s["completed"]:
        bad.append("a stream ended without a terminal event")
    if s["refused_with_retry_after"] != s["refused"] or s["refusal_max_s"] > args.refuse_within:
        bad.append(f"refusals must be quick (< {args.refuse_within} s) and carry Retry-After")
    if s["health_failed"] or (s["health_ms_max"] or 0) > args.health_ms:
        bad.append(f"/api/health slower than {args.health_ms} ms (max {s['health_ms_max']})")
    if s["rss_peak_mib"] > args.budget_mib:
        bad.append(f"memory {s['rss_peak_mib']} MiB over the budget of {args.budget_mib} MiB")
    return bad


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--max-running", type=int, default=4)
    p.add_argument("--max-queued", type=int, default=16)
    p.add_argument("--tokens", type=int, default=16, help="max_new_tokens per generation")
    p.add_argument("--model", default=None, help="model name or checkpoint folder (default: the server's)")
    p.add_argument("--deadline", type=float, default=300, help="seconds before a request counts as hanging")
    p.add_argument("--refuse-within", type=float, default=2.0, help="seconds a 429 may take")
    p.add_argument("--health-ms", type=float, default=1000, help="slowest acceptable /api/health answer")
    p.add_argument("--budget-mib", type=int, default=2048, help="the server's peak resident memory budget")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    port = free_port()
    cmd = [sys.executable, "-m", "prediction_machine", "serve", "--port", str(port),
           "--max-running", str(args.max_running), "--max-queued", str(args.max_queued)]
    if args.model:
        cmd += ["--model", args.model]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            if server.poll() is not None:
                print(server.stderr.read().decode(), file=sys.stderr)
                return 1
            try:
                if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                print("server did not start", file=sys.stderr)
                return 1
            time.sleep(0.3)
        summary = asyncio.run(run(args, url, psutil.Process(server.pid)))
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
    problems = verdict(summary, args)
    summary["ok"] = not problems
    summary["problems"] = problems
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for k, v in summary.items():
            print(f"{k:32} {v}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
