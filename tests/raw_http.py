"""A streaming POST on a raw socket, so a test decides exactly when to stop reading or hang up."""

from __future__ import annotations

import json
import socket
import time


def raw_stream(url: str, body: dict, headers: dict | None = None, rcvbuf: int | None = None) -> socket.socket:
    """POST body to url's /api/generate and return the socket, its answer unread."""
    host, port = url.removeprefix("http://").split(":")
    data = json.dumps(body).encode()
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: a small window
    s.settimeout(10)
    s.connect((host, int(port)))
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    s.sendall(f"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(data)}\r\n{extra}\r\n".encode() + data)
    return s


def read_until(s: socket.socket, marker: bytes, count: int = 1, limit: float = 10) -> bytes:
    """Read until `marker` has arrived `count` times; fail the test after `limit` seconds or on a close."""
    buf, deadline = b"", time.time() + limit
    while buf.count(marker) < count:
        assert time.time() < deadline, f"timed out waiting for {marker!r}; got {buf[-300:]!r}"
        chunk = s.recv(65536)
        assert chunk, f"connection closed early: {buf[-300:]!r}"
        buf += chunk
    return buf

