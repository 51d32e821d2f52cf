"""Soak: mixed classroom load with abandoned heavy requests; does another student still get served?

Starts the real `prediction-machine serve` in classroom mode (a subprocess, a token, a fresh runs
folder). A victim student (127.0.0.1) first times its greedy generation on the idle server. Then,
for `--seconds`, attacker students on other addresses (127.0.0.2...) keep sending heavy requests
(safety table, comparisons, trace, attention, the rating samples) and hang up after `--hold`
seconds, open generations and hang up after a few tokens, and make light requests (tokenize, runs,
playground sessions). Meanwhile the victim keeps timing the same generation. At the end it sends
SIGTERM and times the exit. It prints:

- the ratio of the victim's median generation time under load to its idle time, the smaller of
  the medians measured before and after the load (want <= 1.5);
- how long the process took to exit after SIGTERM (want <= serve's documented bound:
  DRAIN_S + SHUTDOWN_GRACE_S + JOB_STOP_GRACE_S);
- how many requests of each kind the attackers made, and the status codes they got.

Not part of `make test` (it takes minutes and needs an idle machine for a fair ratio):

    .venv/bin/python bench/soak_heavy.py                             # 5 minutes, the default model
    .venv/bin/python bench/soak_heavy.py --pause 2                   # attackers at a person's pace
    .venv/bin/python bench/soak_heavy.py --seconds 40 --model shakespeare-chat   # a short run
    .venv/bin/python bench/soak_heavy.py --seconds 60 --heavy-share 1   # heavy work never steps aside

`--heavy-share` sets the most of the time heavy answers take while generations decode
(the server's PREDICTION_MACHINE_HEAVY_SHARE, engine/priority.py; 1 switches the priority off),
so runs with and without it compare side by side.

It also prints the server's CPU in the 5 s after the load: near 0 when no abandoned work goes on.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil

from prediction_machine.web.serve import DRAIN_S, JOB_STOP_GRACE_S, SHUTDOWN_GRACE_S

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "soak-heavy-token-" + os.urandom(6).hex()
VICTIM = {"prompt": "Name three colours.", "max_new_tokens": 24, "temperature": 0.0, "seed": 1}
HEAVY = [  # (path, body): every one costs more than a forward pass
    ("/api/curriculum/align/safety", {}),
    ("/api/curriculum/compare", {"question": "Who is Hamlet?", "tuned": "shakespeare-chat"}),
    ("/api/curriculum/align/compare", {"question": "Who is Ophelia?"}),
    ("/api/curriculum/align/sample", {"prompt": "Who is Juliet?", "seed": 3}),
    ("/api/trace", {"prompt": "The capital of France is"}),
    ("/api/attention", {"text": "The cat sat on the mat because it was tired."}),
]
BOUND_S = DRAIN_S + SHUTDOWN_GRACE_S + JOB_STOP_GRACE_S


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sign_in(url: str, source: str) -> str:
    """A student's session cookie, from the class link opened at `source`."""
    with httpx.Client(base_url=url, timeout=30, transport=httpx.HTTPTransport(local_address=source)) as c:
        r = c.get("/", params={"token": TOKEN}, follow_redirects=False)
    if r.status_code != 303:
        raise RuntimeError(f"the class link answered {r.status_code}: {r.text[:200]}")
    return "; ".join(f"{k}={v}" for k, v in r.cookies.items())


def send_and_hang_up(port: int, source: str, cookie: str, path: str, body: dict, hold: float) -> str:
    """Send a request, read at most `hold` seconds of the answer, close: returns its status (or '-')."""
    data = json.dumps(body).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0)) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  f"Cookie: {cookie}\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
        s.settimeout(hold)
        try:
            head = s.recv(64)
        except TimeoutError:
            return "-"  # hung up before any answer: abandoned
    return head.split()[1].decode() if head.startswith(b"HTTP/") else "?"


def generation_seconds(client: httpx.Client, cookie: str) -> float:
    t0 = time.perf_counter()
    with client.stream("POST", "/api/generate", json=VICTIM, headers={"cookie": cookie}) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith("event: done") or line.startswith("event: error"):
                break
    return time.perf_counter() - t0


def attacker(url: str, port: int, source: str, hold: float, pause: float, until: float,
             seen: Counter) -> None:
    cookie = sign_in(url, source)
    rng = random.Random(source)
    with httpx.Client(base_url=url, timeout=30, transport=httpx.HTTPTransport(local_address=source)) as c:
        while time.monotonic() < until:
            roll = rng.random()
            try:
                if roll < 0.6:  # a heavy request, abandoned
                    path, body = rng.choice(HEAVY)
                    seen[f"heavy {path} {send_and_hang_up(port, source, cookie, path, body, hold)}"] += 1
                elif roll < 0.8:  # a generation, abandoned after its first bytes
                    body = {"prompt": "Tell a long story.", "max_new_tokens": 64, "seed": rng.randrange(99)}
                    status = send_and_hang_up(port, source, cookie, "/api/generate", body, 1.0)
                    seen[f"generate {status}"] += 1
                else:  # light requests
                    h = {"cookie": cookie}
                    r = c.post("/api/tokenize", json={"text": "hello"}, headers=h)
                    seen[f"tokenize {r.status_code}"] += 1
                    seen[f"runs {c.get('/api/curriculum/runs', headers=h).status_code}"] += 1
                    r = c.post("/api/backprop/sessions", json={"n_points": 40, "hidden": [4]}, headers=h)
                    seen[f"playground {r.status_code}"] += 1
                    if r.status_code == 201:
                        key = r.json()["id"]
                        c.post(f"/api/backprop/sessions/{key}/step", json={"steps": 20}, headers=h)
                        c.delete(f"/api/backprop/sessions/{key}", headers=h)
            except (OSError, httpx.HTTPError) as e:
                seen[f"client error {type(e).__name__}"] += 1
            time.sleep(rng.uniform(0.5, 1.5) * pause)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=300, help="how long the mixed load runs")
    ap.add_argument("--attackers", type=int, default=6, help="attacking students, on 3 other addresses")
    ap.add_argument("--hold", type=float, default=0.1,
                    help="seconds before an attacker hangs up on a heavy request (0.5: a harsher load)")
    ap.add_argument("--pause", type=float, default=0.2,
                    help="mean seconds between an attacker's actions (0.2: a flood; 2: a person clicking)")
    ap.add_argument("--model", default=None, help="the server's model (default: serve's default)")
    ap.add_argument("--idle-runs", type=int, default=5)
    ap.add_argument("--heavy-share", type=float, default=None,
                    help="the server's heavy_share setting (default: its own; 1: never steps aside)")
    args = ap.parse_args()

    load_at_start = os.getloadavg()[0]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    runs = tempfile.mkdtemp(prefix="pm-soak-runs-")
    env = {**os.environ, "PREDICTION_MACHINE_TOKEN": TOKEN, "PREDICTION_MACHINE_RUNS": runs}
    cmd = [sys.executable, "-m", "prediction_machine", "serve", "--port", str(port)]
    if args.heavy_share is not None:  # the server's own setting (web/settings.py heavy_share)
        env["PREDICTION_MACHINE_HEAVY_SHARE"] = str(args.heavy_share)
    cmd += ["--model", args.model] if args.model else []
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        bearer = {"authorization": f"Bearer {TOKEN}"}
        deadline = time.monotonic() + 300
        while True:
            if server.poll() is not None:
                raise SystemExit(f"server exited: {server.stderr.read().decode(errors='replace')[-800:]}")
            try:
                if httpx.get(f"{url}/api/health", headers=bearer, timeout=2).json().get("model") == "ready":
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server not ready within 300 s")
            time.sleep(0.2)
        victim = sign_in(url, "127.0.0.1")
        with httpx.Client(base_url=url, timeout=120) as c:
            generation_seconds(c, victim)  # warm-up
            before = statistics.median(generation_seconds(c, victim) for _ in range(args.idle_runs))
            seen: Counter = Counter()
            until = time.monotonic() + args.seconds
            sources = [f"127.0.0.{2 + n % 3}" for n in range(args.attackers)]
            threads = [threading.Thread(target=attacker, daemon=True,
                                        args=(url, port, s, args.hold, args.pause, until, seen))
                       for s in sources]
            for t in threads:
                t.start()
            loaded = []
            while time.monotonic() < until:
                loaded.append(generation_seconds(c, victim))
            for t in threads:
                t.join(60)
            proc = psutil.Process(server.pid)
            proc.cpu_percent()
            time.sleep(5)  # abandoned work has stopped: the server should be idle again
            leftover = proc.cpu_percent()  # % of one core over those 5 s; near 0 when nothing still runs
            after = statistics.median(generation_seconds(c, victim) for _ in range(args.idle_runs))
        # The smaller idle time is the stricter yardstick (start-up work such as the layout probe
        # can still be running during the first idle runs).
        idle = min(before, after)
        ratio = statistics.median(loaded) / idle
        print(f"load: {args.attackers} attackers for {args.seconds:g} s, hang-up after {args.hold:g} s, "
              f"{args.pause:g} s between actions; "
              f"model {args.model or 'default'}; heavy share {args.heavy_share or 'default'}; "
              f"load average {load_at_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end "
              f"on {os.cpu_count()} cores")
        print(f"victim generation: idle {before:.3f} s before the load and {after:.3f} s after; "
              f"under load median {statistics.median(loaded):.3f} s "
              f"(p90 {sorted(loaded)[int(0.9 * (len(loaded) - 1))]:.3f} s, {len(loaded)} runs)")
        print(f"ratio {ratio:.2f} (want <= 1.5); the server's CPU in the 5 s after the load: "
              f"{leftover:.0f}% of a core")
        for key, n in sorted(seen.items()):
            print(f"  {n:5d}  {key}")
        t0 = time.monotonic()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(BOUND_S + 30)
        except subprocess.TimeoutExpired:
            server.kill()
        took = time.monotonic() - t0
        print(f"SIGTERM to exit: {took:.1f} s (want <= {BOUND_S:g} s), exit code {server.returncode}")
        return 0 if ratio <= 1.5 and took <= BOUND_S else 1
    finally:
        if server.poll() is None:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
