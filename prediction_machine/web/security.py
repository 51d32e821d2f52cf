"""Local-first security, as a plain ASGI middleware (it never buffers or breaks a stream).

What it guards against:
- DNS rebinding: a foreign site that resolves its own name to 127.0.0.1. Its requests carry
  its own Host header, so any Host that is not ours is refused (400), static files included.
- Cross-site requests (CSRF): a page elsewhere posting to our API. Browsers add an Origin
  header; a state-changing or API request from a foreign Origin, or from Origin "null", is
  refused (403), as is one the browser marks `Sec-Fetch-Site: cross-site`. Request bodies
  must be application/json, which a plain HTML form cannot send (415).
- Oversized bodies: refused with 413 before the app sees them (the body is read here, up to
  the limit, and replayed: request bodies are small JSON).
- Classroom mode (an access token is set): every route but the static files needs the token,
  as the HttpOnly session cookie set by visiting /?token=... (the client id signed with the
  token, never the token itself), or an `Authorization: Bearer` header (401 otherwise). Each client is told apart (a random cookie, else its IP) so that it can hold
  one generation at a time. The token never appears in a response or a log line.
- Every response gets a Content-Security-Policy without inline scripts, nosniff and
  frame-ancestors, so model text can never run as code even if a bug let it through.

It also notices a client that hangs up mid-stream, even with other middleware in between,
and tells the stream (streaming.Link), so the computation stops at its next step.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import secrets
from urllib.parse import parse_qs, urlsplit

from prediction_machine.web.admission import shutting_down
from prediction_machine.web.settings import ServerSettings
from prediction_machine.web.streaming import REQUEST, Link

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
    (b"cross-origin-resource-policy", b"same-origin"),
]
_OURS = {name for name, _ in SECURITY_HEADERS}
TOKEN_COOKIE = "pm_token"
CLIENT_COOKIE = "pm_client"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
QUEUED_ROUTES = {"/api/generate"}  # routes that take a place in app.state.slots (refused at the door when full)
log = logging.getLogger("prediction_machine.web")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def host_name(host_header: str) -> str:
    """'localhost:8000' -> 'localhost'; '[::1]:8000' -> '[::1]'."""
    h = host_header.strip().lower()
    if h.startswith("["):
        return h[: h.find("]") + 1] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def cookies(header: str) -> dict[str, str]:
    out = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        out.setdefault(name, value)
    return out


class SecurityMiddleware:
    def __init__(self, app, settings: ServerSettings):
        self.app = app
        self.settings = settings
        self.any_host = "*" in settings.allowed_hosts
        self.allowed = {h.lower() for h in settings.allowed_hosts}
        self.at_door = 0  # requests on QUEUED_ROUTES inside the app right now (validating, queued or running)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":  # there are none: refuse before anything else looks at it
            return await send({"type": "websocket.close", "code": 1008})
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        path = scope["path"]

        host = headers.get("host", "")
        if not host_name(host) or (not self.any_host and host_name(host) not in self.allowed):
            return await _reply(send, 400, "Host header is not one this server answers to (DNS-rebinding guard)")

        origin = headers.get("origin")
        guarded = method in UNSAFE_METHODS or path.startswith("/api/")
        if guarded and origin is not None and not self._same_origin(origin, host):
            return await _reply(send, 403, f"cross-origin request refused (Origin {origin[:80]!r})")
        if method in UNSAFE_METHODS and headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return await _reply(send, 403, "cross-site request refused (Sec-Fetch-Site)")

        jar = cookies(headers.get("cookie", ""))
        client = None
        if self.settings.token:
            if path == "/" and "token" in _query(scope):
                return await self._enter_classroom(scope, send, jar)
            if not path.startswith("/static/") and not self._has_token(headers, jar):
                return await _reply(
                    send, 401,
                    "this server is in classroom mode: open the link with ?token=... that your teacher gave you "
                    "(API clients: send Authorization: Bearer <token>)",
                )
            client_id = self._session_client(jar) or jar.get(CLIENT_COOKIE, "")
            client = "c:" + client_id if _CLIENT_ID.match(client_id) else "ip:" + (scope.get("client") or ("?",))[0]

        at_door = method == "POST" and path in QUEUED_ROUTES
        if at_door:
            refusal = _quick_refusal(scope.get("app"), client, self.at_door)
            if refusal is not None:
                return await _reply(send, *refusal, headers=[(b"retry-after", b"2")])
            self.at_door += 1
        try:
            await self._pass(scope, receive, send, headers, method, client)
        finally:
            if at_door:
                self.at_door -= 1

    async def _pass(self, scope, receive, send, headers, method, client):
        """Body rules, then the app, with the body replayed and the disconnect relayed."""
        body = None  # None: not read here; bytes (maybe empty): read here, replayed to the app
        if method in UNSAFE_METHODS:
            length = headers.get("content-length")
            limit = self.settings.max_body_bytes
            if length is not None and (not length.isdigit() or int(length) > limit):
                return await _reply(send, 413, f"request body is larger than the limit of {limit} bytes")
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype and ctype != "application/json":
                return await _reply(send, 415, "request body must be application/json")
            body, gone = await _read_body(receive, limit)
            if gone:
                return None
            if body is None:
                return await _reply(send, 413, f"request body is larger than the limit of {limit} bytes")
            if body and ctype != "application/json":
                return await _reply(send, 415, "request body must be application/json")

        link = Link(client)
        relay = _Relay(receive, body, link)
        token = REQUEST.set(link)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _OURS]
                message = {**message, "headers": kept + SECURITY_HEADERS}
                relay.response_started()
            await send(message)

        try:
            await self.app(scope, relay, send_with_headers)
        except Exception:  # noqa: BLE001 - a bug: answered here, so the 500 carries our headers too
            # Starlette's own error answer comes from a middleware outside this one, which would
            # send it without the headers above. Log the traceback, answer JSON, never the details.
            log.exception("error while answering %s %s", method, scope.get("path"))
            if relay.started:
                raise  # the answer is already on its way: only the connection can be cut now
            await _reply(send, 500, "internal error: the server hit a bug; it has been logged")
        finally:
            REQUEST.reset(token)
            relay.close()

    def _same_origin(self, origin: str, host: str) -> bool:
        if origin == "null":
            return False
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc.lower() == host.strip().lower()

    def _has_token(self, headers: dict, jar: dict) -> bool:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and _same_secret(auth[7:].strip(), self.settings.token):
            return True
        return self._session_client(jar) is not None

    def _session_client(self, jar: dict) -> str | None:
        """The client id of a valid session cookie "<client id>.<HMAC of it under the token>", else None.

        The cookie is never the token itself: a cookie copied from one browser is not the
        classroom's password, and a teacher who restarts with a new token ends every session.
        """
        client_id, _, mac = jar.get(TOKEN_COOKIE, "").partition(".")
        if _CLIENT_ID.match(client_id) and _same_secret(mac, session_mac(self.settings.token, client_id)):
            return client_id
        return None

    async def _enter_classroom(self, scope, send, jar: dict) -> None:
        """/?token=...: check it, keep it in an HttpOnly cookie, and redirect so it leaves the address bar."""
        given = _query(scope)["token"][0]
        if not _same_secret(given, self.settings.token):
            return await _reply(send, 401, "this access token is not the one this server was started with")
        cookie_opts = "Path=/; HttpOnly; SameSite=Strict; Max-Age=86400"
        client_id = jar.get(CLIENT_COOKIE, "")
        if not _CLIENT_ID.match(client_id):
            client_id = secrets.token_urlsafe(18)
        session = f"{client_id}.{session_mac(self.settings.token, client_id)}"
        headers = [
            (b"location", b"/"),
            (b"cache-control", b"no-store"),
            (b"set-cookie", f"{TOKEN_COOKIE}={session}; {cookie_opts}".encode()),
            (b"set-cookie", f"{CLIENT_COOKIE}={client_id}; {cookie_opts}".encode()),
        ]
        await send({"type": "http.response.start", "status": 303, "headers": headers + SECURITY_HEADERS})
        await send({"type": "http.response.body", "body": b""})


def session_mac(token: str, client_id: str) -> str:
    """The session cookie's signature: HMAC-SHA256 of the client id under the classroom token."""
    return hmac.new(token.encode(), client_id.encode(), "sha256").hexdigest()


def _same_secret(given: str, want: str | None) -> bool:
    if not want or not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), want.encode("utf-8", "replace"))


def _query(scope) -> dict[str, list[str]]:
    return parse_qs(scope.get("query_string", b"").decode("latin-1"))


async def _read_body(receive, limit: int) -> tuple[bytes | None, bool]:
    """The whole request body, or None when it passes `limit`; and whether the client hung up."""
    chunks, seen = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"", True
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > limit:
            return None, False
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False


class _Relay:
    """The app's `receive`: replays the body we read, then reports the client hanging up.

    Once the response has started and nobody inside is waiting on `receive`, a watcher waits
    for the disconnect itself, so a stream learns of it even through middleware that never
    listens (BaseHTTPMiddleware) and even when no bytes are being written.
    """

    def __init__(self, receive, body: bytes | None, link: Link):
        self.receive, self.link = receive, link
        self.pending = [{"type": "http.request", "body": body, "more_body": False}] if body is not None else []
        self.inside = 0
        self.started = False  # the app has begun its answer
        self.watcher: asyncio.Task | None = None
        self.gone = asyncio.Event()

    async def __call__(self):
        if self.pending:
            return self.pending.pop(0)
        if self.watcher is not None:
            await self.gone.wait()
            return {"type": "http.disconnect"}
        self.inside += 1
        try:
            message = await self.receive()
        finally:
            self.inside -= 1
        if message["type"] == "http.disconnect":
            self._gone()
        return message

    def response_started(self) -> None:
        self.started = True
        if self.watcher is None and self.inside == 0 and not self.pending and not self.gone.is_set():
            self.watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass
        self._gone()

    def _gone(self) -> None:
        self.gone.set()
        self.link.set_gone()

    def close(self) -> None:
        if self.watcher is not None and not self.watcher.done():
            self.watcher.cancel()


def _quick_refusal(app, client: str | None, at_door: int) -> tuple[int, str] | None:
    """Refuse a queued route at the door when it is sure to be refused later anyway.

    Under a burst this keeps refusals instant: no body parsing, no tokenizing, no wait for a
    worker thread. admission.Slots.admit() still makes the binding decision afterwards.
    """
    slots = getattr(getattr(app, "state", None), "slots", None)
    if slots is None:
        return None
    if shutting_down():
        return 503, "the server is shutting down; try again in a moment"
    if max(slots.admitted, at_door) >= slots.running_limit + slots.queued_limit:
        return 429, (f"the server is busy: {slots.running} running and {len(slots.waiters)} queued "
                     f"(limits {slots.running_limit} and {slots.queued_limit}); try again shortly")
    if client is not None and slots.clients.get(client):
        return 429, "you already have a generation running or waiting: one at a time per person"
    return None


async def _reply(send, status: int, message: str, headers: list | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())] + (headers or [])
    await send({"type": "http.response.start", "status": status, "headers": headers + SECURITY_HEADERS})
    await send({"type": "http.response.body", "body": body})
