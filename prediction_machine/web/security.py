"""Local-first security, as a plain ASGI middleware (it never buffers or breaks a stream).

What it guards against:
- DNS rebinding: a foreign site that resolves its own name to 127.0.0.1. Its requests carry
  its own Host header, so any Host that is not ours is refused (400).
- Cross-site requests (CSRF): a page elsewhere posting to our API. Browsers add an Origin
  header; a state-changing request from a foreign Origin, or from Origin "null", is refused (403).
  POST bodies must be application/json, which a plain HTML form cannot send.
- Oversized bodies: refused with 413 before they are read in full.
- Classroom mode: with an access token set, every API route needs it (401 otherwise).
- Every response gets a Content-Security-Policy without inline scripts, nosniff and
  frame-ancestors, so model text can never run as code even if a bug let it through.
"""

from __future__ import annotations

import hmac
import json
from urllib.parse import parse_qs, urlsplit

from ..config import ServerSettings

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
TOKEN_COOKIE = "pm_token"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def host_name(host_header: str) -> str:
    """'localhost:8000' -> 'localhost'; '[::1]:8000' -> '[::1]'."""
    h = host_header.strip().lower()
    if h.startswith("["):
        return h[: h.find("]") + 1] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


class SecurityMiddleware:
    def __init__(self, app, settings: ServerSettings):
        self.app = app
        self.settings = settings
        self.any_host = "*" in settings.allowed_hosts
        self.allowed = {h.lower() for h in settings.allowed_hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        path = scope["path"]

        host = headers.get("host", "")
        if not host or (not self.any_host and host_name(host) not in self.allowed):
            return await _reply(send, 400, "Host header is not one this server answers to (DNS-rebinding guard)")

        origin = headers.get("origin")
        if origin is not None and (method in UNSAFE_METHODS or path.startswith("/api/")):
            if not self._same_origin(origin, host):
                return await _reply(send, 403, f"cross-origin request refused (Origin {origin[:80]!r})")

        if method in UNSAFE_METHODS:
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > self.settings.max_body_bytes):
                return await _reply(send, 413, f"request body is larger than the limit of {self.settings.max_body_bytes} bytes")
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if length not in (None, "0") and ctype != "application/json":
                return await _reply(send, 415, "request body must be application/json")

        if self.settings.token and path.startswith("/api/") and path != "/api/health":
            if not self._has_token(scope, headers):
                return await _reply(send, 401, "this server is in classroom mode: an access token is required")

        receive = self._limit_body(receive)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + SECURITY_HEADERS}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except _BodyTooLarge:
            await _reply(send, 413, f"request body is larger than the limit of {self.settings.max_body_bytes} bytes")

    def _same_origin(self, origin: str, host: str) -> bool:
        if origin == "null":
            return False
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()

    def _has_token(self, scope, headers) -> bool:
        want = self.settings.token.encode()
        candidates = []
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            candidates.append(auth[7:].strip())
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == TOKEN_COOKIE:
                candidates.append(value)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        candidates += query.get("token", [])
        return any(hmac.compare_digest(c.encode(), want) for c in candidates)

    def _limit_body(self, receive):
        limit, seen = self.settings.max_body_bytes, 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge()
            return message

        return limited


class _BodyTooLarge(Exception):
    pass


async def _reply(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + SECURITY_HEADERS})
    await send({"type": "http.response.body", "body": body})
