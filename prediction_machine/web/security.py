"""Local-first security, as a plain ASGI middleware (it never buffers or breaks a stream).

What it guards against:
- DNS rebinding: a foreign site that resolves its own name to 127.0.0.1. Its requests carry
  its own Host header, so any Host that is not ours is refused (400), static files included.
- Cross-site requests (CSRF): a page elsewhere posting to our API. Browsers add an Origin
  header; a state-changing or API request from a foreign Origin, or from Origin "null", is
  refused (403), as is one the browser marks `Sec-Fetch-Site: cross-site`. Every /api request,
  GET included, must come from our own page (`Sec-Fetch-Site` same-origin, or none for an
  address typed in the bar): a foreign page's <img src> or fetch gets 403. Request bodies
  must be application/json, which a plain HTML form cannot send (415), valid JSON (400, with
  the line and column) and without duplicate keys (422).
- Oversized or slow bodies: refused with 413 before the app sees them, or 408 when the body
  does not arrive within body_timeout_s (the body is read here and replayed: request bodies
  are small JSON).
- Classroom mode (an access token is set): every route but the static files needs the token,
  as the HttpOnly session cookie set by visiting /?token=... (the client id signed with the
  server's secret, never the token itself), or an `Authorization: Bearer` header (401
  otherwise). The client id is one the server drew (web/identity.py), never a name the client
  chose (a `pm_client` cookie alone counts for nothing, and one the server did not draw is
  replaced). Fairness counts both the client (one generation at a time) and its address
  (places_per_ip), and the address each client comes from is remembered for the other
  per-address ceilings. The teacher (the Bearer token, or
  only teacher_token when one is set; then the class token as Bearer counts as its IP
  address) sees and stops everyone's jobs. The token never appears in a response or a log line.
- While the server shuts down, every request gets 503 with Retry-After.
- Every response gets a Content-Security-Policy without inline scripts, nosniff and
  frame-ancestors, so model text can never run as code even if a bug let it through.

It also notices a client that hangs up mid-stream, even with other middleware in between,
and tells the stream (streaming.Link), so the computation stops at its next step. A heavy
answer (admission.HEAVY_ROUTES) waits here for a heavy place, and its hang-up is listened for
from the moment its body is read: cancel.check() in its worker thread then stops it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import secrets
from collections import Counter
from urllib.parse import parse_qs, urlsplit

from prediction_machine import cancel
from prediction_machine.engine import priority
from prediction_machine.web import identity
from prediction_machine.web.admission import (
    HEAVY_ROUTES,
    SHUTTING_DOWN,
    Rate,
    Slots,
    heavy_place,
    quick_refusal,
    shutting_down,
)
from prediction_machine.web.headers import SECURITY_HEADERS, host_name
from prediction_machine.web.settings import ServerSettings
from prediction_machine.web.streaming import REQUEST, Link
from prediction_machine.web.validation import json_problem

_OURS = {name for name, _ in SECURITY_HEADERS}
TOKEN_COOKIE = "pm_token"
CLIENT_COOKIE = "pm_client"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Routes that take a place in app.state.slots (refused at the door when full).
QUEUED_ROUTES = {"/api/generate"}
log = logging.getLogger("prediction_machine.web")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
REFUSED: Counter = Counter()  # refusals by reason, for tests and curious operators


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
        self.secret = secrets.token_hex(32)  # signs session cookies; never leaves this process
        self.heavy = Slots(settings.heavy_running, settings.heavy_queued,
                           settings.heavy_places_per_ip if settings.token else None, what="heavy request",
                           one_per_client=False)
        self.heavy_rate = (Rate(settings.heavy_per_minute_per_ip, settings.heavy_burst_per_ip)
                           if settings.token else None)  # classroom mode: how often an address may ask

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":  # there are none: refuse before anything else looks at it
            return await send({"type": "websocket.close", "code": 1008})
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        state = getattr(scope.get("app"), "state", None)
        if state is not None and getattr(state, "heavy_slots", None) is None:
            state.heavy_slots = self.heavy  # for health, tests and operators
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        path = scope["path"]

        host = headers.get("host", "")
        if not host_name(host) or (not self.any_host and host_name(host) not in self.allowed):
            return await _reply(send, 400,
                                "Host header is not one this server answers to (DNS-rebinding guard)")

        origin = headers.get("origin")
        api = path.startswith("/api/")
        guarded = method in UNSAFE_METHODS or api
        if guarded and origin is not None and not self._same_origin(origin, host):
            REFUSED["cross-origin"] += 1
            return await _reply(send, 403, f"cross-origin request refused (Origin {origin[:80]!r})")
        if guarded and headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            REFUSED["cross-site"] += 1
            return await _reply(send, 403,
                                "cross-site request refused (Sec-Fetch-Site): open the page from this server")
        if shutting_down():
            return await _reply(send, *SHUTTING_DOWN)

        jar = cookies(headers.get("cookie", ""))
        client = fairness = None
        ip = (scope.get("client") or ("?",))[0]
        teacher = not self.settings.token  # on a laptop the one user may see everything
        if self.settings.token:
            if path == "/" and "token" in _query(scope):
                return await self._enter_classroom(scope, send, jar)
            who = self._identify(headers, jar, ip)
            if not path.startswith("/static/") and who is None:
                return await _reply(
                    send, 401,
                    "this server is in classroom mode: open the link with ?token=... that your teacher "
                    "gave you (API clients: send Authorization: Bearer <token>)",
                )
            client, teacher = who or (None, False)
            if client is not None and not teacher:
                self.addresses(scope).saw(client, ip)  # the per-address ceilings count every id of an address
            fairness = f"{client}@{ip}" if client else None  # Slots counts the client and the address
        scope["pm_client"], scope["pm_teacher"] = client, teacher  # read by owner_of()

        at_door = method == "POST" and path in QUEUED_ROUTES
        if at_door:
            refusal = quick_refusal(scope.get("app"), fairness, self.at_door)
            if refusal is not None:
                return await _reply(send, *refusal, headers=[(b"retry-after", b"2")])
            self.at_door += 1
        try:
            await self._pass(scope, receive, send, headers, method, fairness)
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
            try:
                body, gone = await asyncio.wait_for(_read_body(receive, limit), self.settings.body_timeout_s)
            except asyncio.TimeoutError:
                REFUSED["slow-body"] += 1
                late = f"the request body did not arrive within {self.settings.body_timeout_s:g} s"
                return await _reply(send, 408, late, headers=[(b"connection", b"close")])
            if gone:
                return None
            if body is None:
                return await _reply(send, 413, f"request body is larger than the limit of {limit} bytes")
            if body and ctype != "application/json":
                return await _reply(send, 415, "request body must be application/json")
            problem = json_problem(body) if body else None
            if problem is not None:
                return await _reply(send, *problem)

        link = Link(client)
        relay = _Relay(receive, body, link)
        heavy = (method, scope["path"]) in HEAVY_ROUTES and body is not None
        if heavy:
            relay.watch()  # the body is read: from now on a hang-up is noticed while the answer is computed
        token = REQUEST.set(link)
        wanted_no_more = lambda: link.gone or shutting_down()  # noqa: E731 - seen by the route's worker thread
        # A heavy answer also steps aside for generations at each of its checkpoints (engine/priority.py).
        stop = cancel.stop_when(priority.Turn(wanted_no_more).should_stop if heavy else wanted_no_more)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _OURS]
                message = {**message, "headers": kept + SECURITY_HEADERS}
                relay.response_started()
            await send(message)

        place = None
        try:
            if heavy:
                place, refusal = await heavy_place(self.heavy, link, self.heavy_rate)
                if place is None:
                    if refusal is not None:
                        await _reply(send, *refusal)
                    return
            await self.app(scope, relay, send_with_headers)
        except cancel.Cancelled:
            # Stopped between two steps: the client left (nobody to answer) or the server is shutting down.
            if not link.gone and not relay.started:
                await _reply(send, *SHUTTING_DOWN)
        except Exception:  # noqa: BLE001 - a bug: answered here, so the 500 carries our headers too
            # Starlette's own error answer comes from a middleware outside this one, which would
            # send it without the headers above. Log the traceback, answer JSON, never the details.
            log.exception("error while answering %s %s", method, scope.get("path"))
            if relay.started:
                raise  # the answer is already on its way: only the connection can be cut now
            await _reply(send, 500, "internal error: the server hit a bug; it has been logged")
        finally:
            if place is not None:
                self.heavy.release()
                place.close()
            cancel.reset(stop)
            REQUEST.reset(token)
            relay.close()

    def _same_origin(self, origin: str, host: str) -> bool:
        if origin == "null":
            return False
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc.lower() == host.strip().lower()

    def addresses(self, scope) -> identity.Addresses:
        return identity.addresses(scope["app"])

    def _identify(self, headers: dict, jar: dict, ip: str) -> tuple[str, bool] | None:
        """(client, is the teacher) of a request with the token, else None.

        A session cookie gives the id the server signed; a Bearer header gives the teacher (the
        token itself when no teacher_token is set) or, for the class token, the client's IP.
        A `pm_client` cookie alone counts for nothing: the client chose it.
        """
        auth = headers.get("authorization", "")
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        teacher_token = self.settings.teacher_token or self.settings.token
        if _same_secret(given, teacher_token):
            return "teacher", True
        if _same_secret(given, self.settings.token):
            return "ip:" + ip, False
        client_id = self._session_client(jar)
        if client_id is None:
            return None
        return "c:" + client_id, client_id.startswith(identity.TEACHER)

    def _session_client(self, jar: dict) -> str | None:
        """The client id of a valid session cookie "<client id>.<HMAC of it under the secret>", else None.

        The cookie is never the token itself: a cookie copied from one browser is not the
        classroom's password. The secret is new each time the server starts (so a restart ends
        every session), and students never learn it: knowing the token, they still cannot sign
        a client id of their choosing.
        """
        client_id, _, mac = jar.get(TOKEN_COOKIE, "").partition(".")
        if _CLIENT_ID.match(client_id) and _same_secret(mac, session_mac(self.secret, client_id)):
            return client_id
        return None

    async def _enter_classroom(self, scope, send, jar: dict) -> None:
        """/?token=...: check it, keep it in an HttpOnly cookie, and redirect so it leaves the address bar."""
        given = _query(scope)["token"][0]
        is_teacher = bool(self.settings.teacher_token) and _same_secret(given, self.settings.teacher_token)
        if not is_teacher and not _same_secret(given, self.settings.token):
            return await _reply(send, 401, "this access token is not the one this server was started with")
        cookie_opts = "Path=/; HttpOnly; SameSite=Strict; Max-Age=86400"
        # The same browser keeps the id this server gave it (and so its runs); any other id is replaced
        # by a fresh one the server draws: a student cannot pick an id, nor mint one of a chosen shape.
        client_id = jar.get(CLIENT_COOKIE, "")
        if (not _CLIENT_ID.match(client_id) or not identity.recognise(client_id)
                or client_id.startswith(identity.TEACHER) != is_teacher):
            client_id = identity.mint(teacher=is_teacher)
        session = f"{client_id}.{session_mac(self.secret, client_id)}"
        headers = [
            (b"location", b"/"),
            (b"cache-control", b"no-store"),
            (b"set-cookie", f"{TOKEN_COOKIE}={session}; {cookie_opts}".encode()),
            (b"set-cookie", f"{CLIENT_COOKIE}={client_id}; {cookie_opts}".encode()),
        ]
        await send({"type": "http.response.start", "status": 303, "headers": headers + SECURITY_HEADERS})
        await send({"type": "http.response.body", "body": b""})


def session_mac(secret: str, client_id: str) -> str:
    """The session cookie's signature: HMAC-SHA256 of the client id under the server's secret."""
    return hmac.new(secret.encode(), client_id.encode(), "sha256").hexdigest()


def owner_of(request) -> str | None:
    """Whose jobs and runs a request may touch: None for everyone's (the laptop user, the teacher),
    else the client id the middleware established ("c:<signed id>" or "ip:<address>")."""
    scope = request.scope
    return None if scope.get("pm_teacher", True) else scope.get("pm_client")


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
        self.pending = [] if body is None else [{"type": "http.request", "body": body, "more_body": False}]
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

    def watch(self) -> None:
        """Wait for the hang-up from now on (call once the whole body has been read)."""
        if self.watcher is None and not self.gone.is_set():
            self.watcher = asyncio.ensure_future(self._watch())

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


async def _reply(send, status: int, message: str, headers: list | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers + SECURITY_HEADERS})
    await send({"type": "http.response.body", "body": body})
