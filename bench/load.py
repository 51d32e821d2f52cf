"""A light load generator for a real server on loopback, and the overload and memory checks built on it.

The client side is as thin as it can be, so it does not steal the CPU it is measuring: raw
asyncio sockets, `Connection: close`, and no JSON parsing at all; it only finds each
`event: NAME` line and notes the time. It runs in its own process (`drive`), and reports its own
CPU seconds beside the server's, so a reader can see how much of the machine the clients took.

    .venv/bin/python bench/load.py                      # overload: 200 clients at --max-running 4
    .venv/bin/python bench/load.py --clients 50 --tokens 8
    .venv/bin/python bench/load.py --memory             # peak RSS: 512-token generations, long prompts
    .venv/bin/python bench/load.py --memory --quick     # the same, shorter
    python bench/load.py drive '{"url": ..., "bodies": [...]}'   # what bench_classroom.py runs

Overload: every request must either end with a terminal event (`done` or `error`) or be refused at
once with 429/503 and a Retry-After header; no connection may hang; /api/health stays fast and the
server's memory stays under a budget. Prints a summary (--json for a machine-readable one); exits 1
if a check fails. The small, fast version is tests/test_reliability.py::test_overload_small_*.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# ----------------------------------------------------------------------------- the light client


async def one_stream(host: str, port: int, body: dict, path: str = "/api/generate") -> dict:
    """POST and read a text/event-stream; returns the times (perf_counter) of every event by name."""
    data = json.dumps(body).encode()
    out = {"t0": time.perf_counter(), "status": None, "retry_after": None, "events": [], "error": None}
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: text/event-stream\r\nConnection: close\r\nContent-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        head = await reader.readuntil(b"\r\n\r\n")
        out["status"] = int(head.split(b" ", 2)[1])
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"retry-after:"):
                out["retry_after"] = line.split(b":", 1)[1].strip().decode()
        buf = b"\n"
        while chunk := await reader.read(65536):
            now = time.perf_counter()
            buf += chunk
            while True:  # each `event: NAME` line, found without parsing the JSON around it
                i = buf.find(b"\nevent: ")
                j = buf.find(b"\n", i + 8) if i >= 0 else -1
                if j < 0:
                    buf = buf[i:] if i >= 0 else buf[-8:]
                    break
                out["events"].append((buf[i + 8 : j].decode(errors="replace"), now))
                buf = buf[j:]
        writer.close()
    except Exception as e:  # noqa: BLE001 - counted, not fatal
        out["error"] = f"{type(e).__name__}: {e}"
    out["t1"] = time.perf_counter()
    return out


async def drive_all(url: str, bodies: list[dict], deadline: float) -> list[dict]:
    """Every body sent at once (a class pressing Generate together); stragglers cut at the deadline."""
    host, port = url.removeprefix("http://").split(":")
    tasks = [asyncio.create_task(one_stream(host, int(port), b)) for b in bodies]
    done, pending = await asyncio.wait(tasks, timeout=deadline)
    for t in pending:
        t.cancel()
    return [
        t.result()
        if t in done
        else {"status": None, "events": [], "error": "unfinished at the deadline", "t0": 0, "t1": 0}
        for t in tasks
    ]


def drive(config: dict) -> dict:
    """Run one level in this process and report what the client itself cost."""
    cpu0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    streams = asyncio.run(drive_all(config["url"], config["bodies"], config.get("deadline", 300)))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "streams": streams,
        "wall_s": time.perf_counter() - t0,
        "client_cpu_s": (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime),
    }


def drive_in_subprocess(url: str, bodies: list[dict], deadline: float) -> dict:
    """`drive` in a fresh process of its own: the load generator never shares the caller's interpreter."""
    config = json.dumps({"url": url, "bodies": bodies, "deadline": deadline})
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "drive", config],
        capture_output=True,
        text=True,
        timeout=deadline + 60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr[-800:]}")
    return json.loads(done.stdout)


# ----------------------------------------------------------------------------- the server under test


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(url: str, timeout: float = 2.0) -> dict | None:
    import http.client

    host, port = url.removeprefix("http://").split(":")
    try:
        c = http.client.HTTPConnection(host, int(port), timeout=timeout)
        c.request("GET", "/api/health")
        r = c.getresponse()
        body = r.read()
        c.close()
        return json.loads(body) if r.status == 200 else {"status": r.status}
    except (OSError, ValueError):
        return None


class Server:
    """`prediction-machine serve` as a subprocess; records when health first answered and when the
    model was ready."""

    def __init__(self, *args: str, env: dict | None = None, ready_within: float = 300):
        self.url = f"http://127.0.0.1:{free_port()}"
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prediction_machine",
                "serve",
                "--port",
                self.url.rsplit(":", 1)[1],
                *args,
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        self.health_s = self.ready_s = None
        while self.ready_s is None:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited: {self.proc.stderr.read().decode(errors='replace')[-800:]}"
                )
            if time.perf_counter() - t0 > ready_within:
                self.stop()
                raise RuntimeError(f"server not ready within {ready_within} s")
            h = health(self.url, timeout=1)
            if h is not None and self.health_s is None:
                self.health_s = time.perf_counter() - t0
            if h is not None and h.get("model", "ready") not in ("loading",):
                self.ready_s = time.perf_counter() - t0
            else:
                time.sleep(0.02)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class PeakRSS:
    """Samples a process's resident memory (MiB) and CPU seconds in a thread while a level runs."""

    def __init__(self, pid: int):
        import psutil

        self.proc, self.peak, self.stop = psutil.Process(pid), 0.0, threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def cpu(self) -> float:
        t = self.proc.cpu_times()
        return t.user + t.system

    def sample(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss / 2**20)
            except Exception:  # noqa: BLE001 - the process ended
                return
            self.stop.wait(0.1)

    def __enter__(self):
        self.start_rss, self.cpu0 = self.proc.memory_info().rss / 2**20, self.cpu()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.cpu_s = self.cpu() - self.cpu0


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} cores"


# ----------------------------------------------------------------------------- overload


def overload(args) -> dict:
    import statistics

    bodies = [
        {"prompt": f"Tell me a fact about the number {i}.", "max_new_tokens": args.tokens, "seed": i}
        for i in range(args.clients)
    ]
    with Server("--max-running", str(args.max_running), "--max-queued", str(args.max_queued)) as server:
        polls: list[float] = []
        stop = threading.Event()

        def poll() -> None:  # /api/health every 100 ms, as a watching teacher would
            while not stop.is_set():
                t0 = time.perf_counter()
                ok = health(server.url, timeout=10) is not None
                polls.append((time.perf_counter() - t0) * 1000 if ok else float("inf"))
                stop.wait(0.1)

        poller = threading.Thread(target=poll, daemon=True)
        with PeakRSS(server.proc.pid) as mem:
            poller.start()
            run = drive_in_subprocess(server.url, bodies, args.deadline)
            stop.set()
            poller.join()
    streams = run["streams"]
    ok = [s for s in streams if s["status"] == 200]
    refused = [s for s in streams if s["status"] in (429, 503)]
    finite = [h for h in polls if h != float("inf")]
    return {
        "clients": args.clients,
        "max_running": args.max_running,
        "max_queued": args.max_queued,
        "tokens": args.tokens,
        "wall_s": round(run["wall_s"], 2),
        "completed": len(ok),
        "completed_with_terminal_event": sum(
            bool(s["events"]) and s["events"][-1][0] in ("done", "error") for s in ok
        ),
        "refused": len(refused),
        "refused_with_retry_after": sum(bool(s["retry_after"]) for s in refused),
        "refusal_max_s": round(max((s["t1"] - s["t0"] for s in refused), default=0), 3),
        "other_status": sorted({str(s["status"]) for s in streams if s["status"] not in (200, 429, 503)}),
        "client_errors": [s["error"] for s in streams if s["error"]][:5],
        "completed_max_s": round(max((s["t1"] - s["t0"] for s in ok), default=0), 2),
        "health_polls": len(polls),
        "health_failed": len(polls) - len(finite),
        "health_ms_p50": round(statistics.median(finite), 1) if finite else None,
        "health_ms_max": round(max(finite), 1) if finite else None,
        "rss_start_mib": round(mem.start_rss),
        "rss_peak_mib": round(mem.peak),
        "rss_budget_mib": args.budget_mib,
        "server_cpu_s": round(mem.cpu_s, 1),
        "client_cpu_s": round(run["client_cpu_s"], 1),
    }


def verdict(s: dict, args) -> list[str]:
    bad = []
    if s["client_errors"] or s["other_status"]:
        bad.append(f"errors {s['client_errors']}, other statuses {s['other_status']}")
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


# ----------------------------------------------------------------------------- memory worst cases


def memory(args) -> dict:
    """Peak RSS for the costliest requests: long generations, and long prompts at --max-running 4."""
    new = 64 if args.quick else 512
    out = {}
    with Server("--max-running", "4", "--max-queued", "16") as server:
        prompt, n_tokens = long_prompt(server.url, 300 if args.quick else 1000)
        scenarios = {
            f"1 stream, short prompt, {new} new tokens": [
                {"prompt": "Tell me a long story.", "max_new_tokens": new, "temperature": 0.8, "seed": 1}
            ],
            f"4 streams at once, {n_tokens}-token prompts, {new} new tokens each": [
                {"prompt": f"{i} {prompt}", "max_new_tokens": new, "temperature": 0.8, "seed": i}
                for i in range(4)
            ],
        }
        out["idle_rss_mib"] = round(PeakRSS(server.proc.pid).proc.memory_info().rss / 2**20)
        for name, bodies in scenarios.items():
            with PeakRSS(server.proc.pid) as mem:
                run = drive_in_subprocess(
                    server.url, bodies, max(args.deadline, 1200)
                )  # 4 x 512 tokens take a while
            ends = [s["events"][-1][0] if s["events"] else s["error"] or s["status"] for s in run["streams"]]
            out[name] = {"peak_rss_mib": round(mem.peak), "ends": ends, "wall_s": round(run["wall_s"], 1)}
    return out


def long_prompt(url: str, most_tokens: int) -> tuple[str, int]:
    """A prompt of close to `most_tokens` chat tokens that fits the server's 4,000-character limit."""
    import http.client

    host, port = url.removeprefix("http://").split(":")
    words = [f"item {i % 100}," for i in range(800)]
    while True:
        text = "Please summarise this list: " + " ".join(words)
        c = http.client.HTTPConnection(host, int(port), timeout=30)
        c.request(
            "POST",
            "/api/tokenize",
            json.dumps({"text": text, "chat": True}),
            {"Content-Type": "application/json"},
        )
        r = c.getresponse()
        body = json.loads(r.read())
        c.close()
        if r.status == 200 and body["chat"]["count"] <= most_tokens:
            return text, body["chat"]["count"]
        words = words[: int(len(words) * 0.9)]  # too long (in tokens or characters): trim and ask again


def main() -> int:
    if sys.argv[1:2] == ["drive"]:
        print(json.dumps(drive(json.loads(sys.argv[2]))))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--max-running", type=int, default=4)
    p.add_argument("--max-queued", type=int, default=16)
    p.add_argument("--tokens", type=int, default=16, help="max_new_tokens per generation")
    p.add_argument("--deadline", type=float, default=300, help="seconds before a request counts as hanging")
    p.add_argument("--refuse-within", type=float, default=2.0, help="seconds a 429 may take")
    p.add_argument("--health-ms", type=float, default=1000, help="slowest acceptable /api/health answer")
    p.add_argument("--budget-mib", type=int, default=2048, help="the server's peak resident memory budget")
    p.add_argument(
        "--memory", action="store_true", help="peak RSS for 512-token generations and long prompts"
    )
    p.add_argument("--quick", action="store_true", help="with --memory: 64 new tokens instead of 512")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    print(load_average(), file=sys.stderr)
    if args.memory:
        summary = memory(args)
        problems = []
    else:
        summary = overload(args)
        problems = verdict(summary, args)
        summary["ok"], summary["problems"] = not problems, problems
    summary["load_average"] = load_average()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for k, v in summary.items():
            print(f"{k:40} {v}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
