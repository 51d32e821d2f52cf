"""Soak test: many generate/cancel and train/cancel cycles; nothing may leak.

The app runs under uvicorn in a thread of this process (so its asyncio tasks can be counted);
each cycle opens a streaming generation and hangs up after a few tokens, or starts a small
training job and stops it after a few optimizer steps. After a warm-up, resident memory,
thread count and live asyncio tasks are taken as the baseline; after all cycles they must be
back near it, with every slot and job place free.

    .venv/bin/python bench/soak.py                      # the real model, 200 + 20 cycles
    .venv/bin/python bench/soak.py --generate 50 --train 5

The small version is tests/test_reliability.py::test_soak_small_*.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import socket
import sys
import tempfile
import threading
import time

import httpx
import psutil
import uvicorn

from prediction_machine.web.app import create_app
from prediction_machine.web.settings import ServerSettings

CORPUS = "Shall I compare thee to a summer's day? Thou art more lovely and more temperate.\n" * 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def generate_and_hang_up(url: str, i: int, events: int = 3) -> None:
    port = int(url.rsplit(":", 1)[1])
    body = json.dumps({"prompt": f"Count to {i}.", "max_new_tokens": 200, "seed": i}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(
            f"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        buf = b""
        while buf.count(b"event: step") < events:
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError(f"stream ended early: {buf[-200:]!r}")
            buf += chunk


def train_and_stop(c: httpx.Client, app, steps: int = 3) -> int:
    r = c.post(
        "/api/curriculum/pretrain",
        json={
            "text": CORPUS,
            "tokenizer": "char",
            "steps": 20000,
            "batch_size": 4,
            "context": 32,
            "eval_every": 1000,
            "sample_every": 1000,
        },
    )
    r.raise_for_status()
    job = app.state.training_jobs.get(r.json()["job"]["id"])
    deadline = time.time() + 60
    while sum(n == "step" for n, _ in list(job.events)) < steps:
        if time.time() > deadline or job.ended:
            raise RuntimeError(f"job did not train: {job.status} {job.error}")
        time.sleep(0.02)
    c.post(f"/api/curriculum/jobs/{job.id}/stop").raise_for_status()
    seen = max(d["step"] for n, d in list(job.events) if n == "step")
    while job.ended is None:
        time.sleep(0.02)
    final = [d["step"] for n, d in job.events if n == "done"][-1]
    return final - seen  # optimizer steps taken after the stop request


def snapshot(proc: psutil.Process, loop) -> dict:
    async def count():
        return len([t for t in asyncio.all_tasks() if not t.done()]) - 1

    gc.collect()
    return {
        "rss_mib": round(proc.memory_info().rss / 2**20, 1),
        "threads": threading.active_count(),
        "tasks": asyncio.run_coroutine_threadsafe(count(), loop).result(10),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--generate", type=int, default=200, help="generate/hang-up cycles")
    p.add_argument("--train", type=int, default=20, help="train/stop cycles")
    p.add_argument("--model", default=None)
    p.add_argument("--rss-slack-mib", type=float, default=100, help="allowed growth of resident memory")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    os.environ.setdefault("PREDICTION_MACHINE_RUNS", tempfile.mkdtemp(prefix="pm-soak-runs-"))
    settings = ServerSettings(**({"model": args.model} if args.model else {}), max_running=4, max_queued=16)
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    loop = server.servers[0].get_loop()
    proc = psutil.Process()
    t0 = time.perf_counter()
    late_steps = []
    with httpx.Client(base_url=url, timeout=60) as c:
        for i in range(3):  # warm-up: model, batcher thread, thread pools, caches
            generate_and_hang_up(url, i)
        train_and_stop(c, app)
        time.sleep(1)
        base = snapshot(proc, loop)
        for i in range(args.generate):
            generate_and_hang_up(url, i)
            if args.train and i % max(1, args.generate // args.train) == 0 and len(late_steps) < args.train:
                late_steps.append(train_and_stop(c, app))
        while len(late_steps) < args.train:
            late_steps.append(train_and_stop(c, app))
        deadline = time.time() + 10
        while time.time() < deadline and (app.state.slots.running or app.state.slots.admitted):
            time.sleep(0.05)
        time.sleep(1)
        end = snapshot(proc, loop)
        health = c.get("/api/health").json()
    server.should_exit = True
    thread.join(10)
    summary = {
        "generate_cycles": args.generate,
        "train_cycles": args.train,
        "seconds": round(time.perf_counter() - t0, 1),
        "baseline": base,
        "after": end,
        "rss_growth_mib": round(end["rss_mib"] - base["rss_mib"], 1),
        "max_steps_after_stop": max(late_steps, default=0),
        "slots_after": health["generation"],
    }
    problems = []
    if end["threads"] > base["threads"]:
        problems.append("threads grew")
    if end["tasks"] > base["tasks"]:
        problems.append("asyncio tasks grew")
    if summary["rss_growth_mib"] > args.rss_slack_mib:
        problems.append(f"memory grew by more than {args.rss_slack_mib} MiB")
    if summary["max_steps_after_stop"] > 1:
        problems.append("a job took more than one optimizer step to stop")
    if health["generation"]["running"] or health["generation"]["queued"]:
        problems.append("slots not free at the end")
    summary["ok"], summary["problems"] = not problems, problems
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for k, v in summary.items():
            print(f"{k:24} {v}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
