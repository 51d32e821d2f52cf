"""How long `prediction-machine serve` takes to exit on SIGTERM with streams open.

Starts the real server (the default model) in a subprocess, opens N streaming generations,
waits until each has produced a token, sends SIGTERM, and reports when the last stream got its
terminal event and when the process exited. Run it alone on an idle machine:

    .venv/bin/python bench/shutdown.py --streams 8 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_stream(port: int, seed: int) -> socket.socket:
    body = json.dumps({"prompt": "Tell me a long story", "max_new_tokens": 400, "seed": seed}).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall(
        b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    return s


def read_until(s: socket.socket, marker: bytes, buf: bytes = b"") -> bytes:
    while marker not in buf:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def wait_until_up(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if b" 200 " in s.recv(1024):
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError("the server did not come up")


def one_run(streams: int) -> tuple[float, float]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prediction_machine",
            "serve",
            "--port",
            str(port),
            "--max-running",
            str(streams),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(port)
        socks = [open_stream(port, i) for i in range(streams)]
        bufs = [read_until(s, b"event: step") for s in socks]
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        for s, buf in zip(socks, bufs, strict=True):
            assert b"event: error" not in buf, buf[-300:]
            assert b'"finish":"shutdown"' in read_until(s, b"event: error", buf)
        streams_ended = time.perf_counter() - t0
        proc.wait(30)
        return streams_ended, time.perf_counter() - t0
    finally:
        if proc.poll() is None:
            proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    results = [one_run(args.streams) for _ in range(args.runs)]
    ended, exited = zip(*results, strict=True)
    print(f"load average {os.getloadavg()[0]:.2f}; {args.streams} open streams, {args.runs} runs")
    print(f"SIGTERM -> every stream ended: median {statistics.median(ended):.3f} s (max {max(ended):.3f})")
    print(f"SIGTERM -> process exited:     median {statistics.median(exited):.2f} s (max {max(exited):.2f})")


if __name__ == "__main__":
    main()
