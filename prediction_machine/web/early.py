"""The first seconds of `serve`: answer the page and /api/health while the server itself imports.

Importing PyTorch and the web framework takes 1.5-2 s on a 2-core machine before the app can
answer anything, and the model takes longer still. So `serve` binds its socket first, and this
small responder answers on it until the app is ready:

- GET /api/health: 200, the model is loading;
- GET / and /static/...: the page itself, read from disk (it shows its own loading note);
- anything else: 503 with `X-Model-State: loading` and `Retry-After: 1`, the answer the page
  already waits out while the model loads (static/js/api.js).

Then the app takes over the same socket (`stop()`, then uvicorn serves it), so no connection is
ever refused in between. The guards of web/security.py that apply to these answers apply here
too: a foreign Host header gets 400 (DNS rebinding), every answer carries the security headers
(web/headers.py), and in classroom mode (a token) everything, health included, gets the 503:
only the app can check a token. This module imports nothing from the rest of the package but web/headers.py.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from pathlib import Path

from prediction_machine.web.headers import SECURITY_HEADERS, host_name

LOOPBACK = {"127.0.0.1", "localhost", "::1"}  # addresses that only this machine can reach
TOKEN_ENV = "PREDICTION_MACHINE_TOKEN"  # the classroom token, kept out of the process list
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")  # the Host headers answered on them
STATIC = Path(__file__).parent / "static"
HEAD_BYTES = 16 * 1024  # a request head longer than this is refused
BODY_BYTES = 1 << 20  # a body is read (so the answer is not lost to a reset), up to this much
READ_TIMEOUT_S = 2.0  # the longest wait for any one piece of a request
REQUEST_DEADLINE_S = 5.0  # ... and for the whole request: a client that trickles bytes is cut off
MAX_CLIENTS = 64  # connections answered at once; one more is closed unanswered (the app is seconds away)
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
         ".json": "application/json", ".ico": "image/x-icon", ".woff2": "font/woff2",
         ".txt": "text/plain; charset=utf-8"}


def bind(host: str, port: int) -> socket.socket:
    """The server's listening socket, bound before anything heavy is imported.

    OSError if the port is taken.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def allowed_hosts_for(host: str) -> tuple[str, ...]:
    """The Host headers to answer when bound to `host`: loopback names, or any ("*") when other
    machines can reach it (students use this machine's LAN address; the token guards instead)."""
    return LOOPBACK_HOSTS if host in LOOPBACK else ("*",)


def open_early(host: str, port: int, token_given: bool) -> EarlyResponder:
    """Bind `serve`'s socket and start answering on it; OSError if the port cannot be had."""
    remote = host not in LOOPBACK  # other machines can reach it: serve insists on a token
    return EarlyResponder(bind(host, port), allowed_hosts_for(host), classroom=remote or token_given).start()


class EarlyResponder:
    """Answers on `sock` in a thread until stop(); `allowed_hosts` as in ServerSettings ("*": any)."""

    def __init__(self, sock: socket.socket, allowed_hosts: tuple[str, ...], classroom: bool):
        self.sock, self.classroom = sock, classroom
        self.any_host = "*" in allowed_hosts
        self.allowed = {h.lower() for h in allowed_hosts}
        self.stopping = threading.Event()
        self.clients = threading.BoundedSemaphore(MAX_CLIENTS)
        self.thread = threading.Thread(target=self._serve, name="pm-early", daemon=True)

    def start(self) -> EarlyResponder:
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting; connections that arrive from now on wait in the socket's queue for the app.

        Only the accepting thread is waited for (it checks every 50 ms), never a client: a
        client still being answered is answered by its own thread, and the hand-over goes on.
        """
        self.stopping.set()
        self.thread.join()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.05)
            if not ready or self.stopping.is_set():
                continue
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, OSError):
                continue
            if not self.clients.acquire(blocking=False):
                conn.close()  # MAX_CLIENTS already being answered: a flood is not queued here
                continue
            answering = threading.Thread(target=self._answer_one, args=(conn,), daemon=True)
            answering.start()

    def _answer_one(self, conn: socket.socket) -> None:
        """Read one request within REQUEST_DEADLINE_S and answer it, in this connection's own thread."""
        try:
            with conn:
                conn.sendall(self.answer(read_request(conn, time.monotonic() + REQUEST_DEADLINE_S)))
        except (OSError, ValueError):
            pass  # a client that sent nothing sensible, was too slow, or left: nothing to answer
        finally:
            self.clients.release()

    def answer(self, request: tuple[str, str, dict[str, str]] | None) -> bytes:
        """The whole HTTP answer to (method, path, headers); None is a request that could not be read."""
        if request is None:
            return reply(400, "the request could not be read")
        method, path, headers = request
        name = host_name(headers.get("host", ""))
        if not name or (not self.any_host and name not in self.allowed):
            return reply(400, "Host header is not one this server answers to (DNS-rebinding guard)")
        path = path.split("?", 1)[0]
        if method == "HEAD" and not self.classroom and path in ("/", "/api/health"):
            # as the app answers: its routes serve GET, not HEAD (only its static files serve HEAD)
            return reply(405, f"method HEAD is not allowed for {path}", extra=[("Allow", "GET")])
        if method == "GET" and path == "/api/health" and not self.classroom:
            loading = {"ok": True, "model": "loading", "starting": True}
            return reply(200, body=loading)
        if method in ("GET", "HEAD") and not self.classroom and (path == "/" or path.startswith("/static/")):
            found = static_file(path)
            if found is not None:
                kind = TYPES.get(found.suffix, "application/octet-stream")
                return reply(200, raw=found.read_bytes(), kind=kind, head_only=method == "HEAD")
            return reply(404, f"{path[:80]!r} is not a file of the page")
        return reply(503, "the server is starting and the model is loading; try again in 1 second",
                     extra=[("Retry-After", "1"), ("X-Model-State", "loading")])


def read_request(conn: socket.socket, deadline: float) -> tuple[str, str, dict[str, str]] | None:
    """(method, path, headers) of one request; its body, if any, is read and dropped.

    Every read waits at most READ_TIMEOUT_S and never past `deadline` (time.monotonic()):
    TimeoutError when the whole request has not arrived by then.
    """

    def receive(size: int) -> bytes:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive in time")
        conn.settimeout(min(READ_TIMEOUT_S, left))
        return conn.recv(size)

    data = b""
    while b"\r\n\r\n" not in data:
        chunk = receive(4096)
        if not chunk:
            return None
        data += chunk
        if len(data) > HEAD_BYTES:
            return None
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[1].startswith("/"):
        return None
    headers = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    left = min(int(headers.get("content-length", "0") or 0), BODY_BYTES) - len(rest)
    while left > 0:
        chunk = receive(min(left, 65536))
        if not chunk:
            break
        left -= len(chunk)
    return parts[0], parts[1], headers


def static_file(path: str) -> Path | None:
    """The file behind / or /static/NAME, only if it really lies inside static/ (no '..' way out)."""
    relative = "index.html" if path == "/" else path.removeprefix("/static/")
    found = (STATIC / relative).resolve()
    if STATIC.resolve() not in found.parents or not found.is_file():
        return None
    return found


def reply(status: int, detail: str | None = None, body: dict | None = None, raw: bytes | None = None,
          kind: str = "application/json", extra: list[tuple[str, str]] = (),
          head_only: bool = False) -> bytes:
    """One complete HTTP/1.1 answer, connection closed after it, with the security headers."""
    if raw is None:
        raw = json.dumps(body if body is not None else {"error": detail}).encode()  # the app's error shape
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
              503: "Service Unavailable"}[status]
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {kind}", f"Content-Length: {len(raw)}",
             "Cache-Control: no-cache", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in extra]
    lines += [f"{k.decode()}: {v.decode()}" for k, v in SECURITY_HEADERS]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else raw)
