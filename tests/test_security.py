"""Local security defaults and classroom mode.

Most checks call the ASGI app directly with hand-made scopes, so every header is exactly
what the test says (an empty Host, a duplicated cookie...). The classroom checks start the
real `prediction-machine serve` in a subprocess with the tiny stub model.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from conftest import make_app, run_in_thread, start_server
from hostile_model import LiveServer

from prediction_machine.web.app import create_app
from prediction_machine.web.security import CLIENT_COOKIE, TOKEN_COOKIE, session_mac
from prediction_machine.web.settings import ServerSettings

TOKEN = "classroom-secret-4f9a2c1e"


@pytest.fixture(scope="module")
def app(stub):
    return make_app(model=stub)


def call(
    app,
    method: str,
    path: str,
    headers: dict | None = None,
    body: bytes = b"",
    chunks: list[bytes] | None = None,
    query: bytes = b"",
    max_bytes: int = 200_000,
):
    """One request straight into the ASGI app: (status, headers dict, body bytes).
    Streams are cut at max_bytes."""
    raw = [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in (headers if headers is not None else {"host": "127.0.0.1"}).items()
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": raw,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    parts = chunks if chunks is not None else [body]
    inbox = [
        {"type": "http.request", "body": c, "more_body": i < len(parts) - 1} for i, c in enumerate(parts)
    ]
    out = {"status": None, "headers": {}, "body": b""}

    async def run():
        finished = asyncio.Event()

        async def receive():
            if inbox:
                return inbox.pop(0)
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
                for k, v in message.get("headers", []):
                    out["headers"].setdefault(k.decode().lower(), []).append(v.decode())
            elif message["type"] == "http.response.body":
                out["body"] += message.get("body", b"")
                if not message.get("more_body") or len(out["body"]) > max_bytes:
                    finished.set()

        task = asyncio.ensure_future(app(scope, receive, send))
        await finished.wait()
        await asyncio.wait_for(task, 30)

    run_in_thread(run)
    return out["status"], {k: v[-1] for k, v in out["headers"].items()}, out["body"]


JSON = {"content-type": "application/json"}
GEN = json.dumps({"prompt": "hi", "max_new_tokens": 2, "seed": 1}).encode()
# (method, path, body): a page, static files, a JSON route, a stream and colleague routes.
ROUTES = [
    ("GET", "/", b""),
    ("GET", "/static/js/main.js", b""),
    ("GET", "/static/css/base.css", b""),
    ("GET", "/api/health", b""),
    ("GET", "/api/models", b""),
    ("GET", "/openapi.json", b""),
    ("POST", "/api/tokenize", json.dumps({"text": "hi"}).encode()),
    ("POST", "/api/generate", GEN),
    ("POST", "/api/sample/preview", json.dumps({"prompt": "hi"}).encode()),
    ("POST", "/api/attention", json.dumps({"text": "hi there"}).encode()),
    ("POST", "/api/backprop/neuron", b"{}"),
    ("GET", "/api/curriculum/jobs", b""),
    ("GET", "/no/such/route", b""),
]


def headers_for(host, method, extra=None):
    h = {"host": host} if host is not None else {}
    if method == "POST":
        h.update(JSON)
    h.update(extra or {})
    return h


# ----------------------------------------------------------------------------- Host (DNS rebinding)


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "localhost.evil.example",
        "",
        None,
        "127.0.0.1.evil.example:8000",
        "localhost@evil.example",
        ":8000",
    ],
)
@pytest.mark.parametrize("method,path,body", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_foreign_host_is_refused_everywhere(app, host, method, path, body):
    status, headers, text = call(app, method, path, headers_for(host, method), body)
    assert status in (400, 403), (status, text[:200])
    assert b"<script" not in text


@pytest.mark.parametrize(
    "host",
    ["localhost", "localhost:8000", "127.0.0.1", "127.0.0.1:8000", "[::1]", "[::1]:8000", "LOCALHOST:8000"],
)
def test_own_hosts_are_accepted(app, host):
    for method, path, body in [
        ("GET", "/", b""),
        ("GET", "/api/health", b""),
        ("POST", "/api/tokenize", b'{"text":"x"}'),
        ("GET", "/static/js/main.js", b""),
    ]:
        status, _, text = call(app, method, path, headers_for(host, method), body)
        assert status == 200, (host, path, status, text[:200])


# ----------------------------------------------------------------------------- Origin, CSRF


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "null",
        "http://localhost.evil.example",
        "http://127.0.0.1:9999",
        "https://127.0.0.1",
        "file://",
        "http://127.0.0.1@evil.example",
    ],
)
@pytest.mark.parametrize(
    "method,path,body",
    [r for r in ROUTES if r[1].startswith("/api/")],
    ids=[f"{m} {p}" for m, p, _ in ROUTES if p.startswith("/api/")],
)
def test_foreign_origin_is_refused_on_api_and_streams(app, origin, method, path, body):
    status, _, text = call(app, method, path, headers_for("127.0.0.1:8000", method, {"origin": origin}), body)
    assert status == 403, (status, text[:200])


def test_same_origin_is_accepted(app):
    status, _, _ = call(
        app,
        "POST",
        "/api/tokenize",
        headers_for("127.0.0.1:8000", "POST", {"origin": "http://127.0.0.1:8000"}),
        b'{"text":"x"}',
    )
    assert status == 200


@pytest.mark.parametrize(
    "ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""]
)
def test_simple_cross_site_posts_are_refused(app, ctype):
    """What an HTML form or a no-preflight fetch from another site can send: none gets through."""
    body = b'{"prompt": "hi", "max_new_tokens": 1}'
    for extra in ({"origin": "http://evil.example"}, {"sec-fetch-site": "cross-site"}, {}):
        headers = {"host": "127.0.0.1:8000", **({"content-type": ctype} if ctype else {}), **extra}
        status, _, text = call(app, "POST", "/api/generate", headers, body)
        assert status in (403, 415), (ctype, extra, status, text[:200])


def test_chunked_body_without_json_type_is_refused(app):
    status, _, _ = call(
        app,
        "POST",
        "/api/tokenize",
        {"host": "127.0.0.1", "transfer-encoding": "chunked", "content-type": "text/plain"},
        chunks=[b'{"text":', b'"x"}'],
    )
    assert status == 415


# ----------------------------------------------------------------------------- headers on every answer


@pytest.mark.parametrize(
    "method,path,body",
    ROUTES + [("GET", "/api/source", b"")],
    ids=[f"{m} {p}" for m, p, _ in ROUTES] + ["missing query"],
)
def test_every_answer_has_csp_nosniff_and_frame_ancestors(app, method, path, body):
    status, headers, _ = call(app, method, path, headers_for("127.0.0.1", method), body)
    csp = headers["content-security-policy"]
    directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";"))
    assert directives["script-src"] == "'self'" and "unsafe" not in csp
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert headers["x-content-type-options"] == "nosniff"
    # Refusals too (the same checks on a foreign Host's 400).
    _, refused, _ = call(app, method, path, headers_for("evil.example", method), body)
    assert refused["content-security-policy"] == csp and refused["x-content-type-options"] == "nosniff"


def test_a_crash_still_carries_the_security_headers_and_hides_the_traceback(stub):
    app = create_app(ServerSettings(model=stub))

    @app.get("/api/test-crash")
    def crash():
        raise RuntimeError("secret internals /home/someone/path")

    status, headers, body = call(app, "GET", "/api/test-crash")
    assert status == 500
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
    assert headers["content-type"] == "application/json"
    answer = json.loads(body)
    assert answer == {"error": "internal error: the server hit a bug; it has been logged"}
    assert b"Traceback" not in body and b"secret" not in body
    # the server is still healthy afterwards
    assert call(app, "GET", "/api/health")[0] == 200


def test_page_has_no_inline_script_or_style():
    """The CSP forbids inline code; the page must not need it (or it would silently break)."""
    import re
    from pathlib import Path

    static = Path(__file__).resolve().parent.parent / "prediction_machine" / "web" / "static"
    html = (static / "index.html").read_text()
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag, f"inline script: {tag}"
    assert not re.search(r"\son\w+\s*=", html), "inline event handler attribute"
    assert not re.search(r"\sstyle\s*=", html), "inline style attribute"
    for js in static.rglob("*.js"):
        src = js.read_text()
        assert ".innerHTML" not in src and "insertAdjacentHTML" not in src and "document.write" not in src, (
            js.name
        )
        assert 'setAttribute("style"' not in src and "eval(" not in src and "new Function" not in src, js.name


# ----------------------------------------------------------------------------- body size


def test_body_over_the_limit_gets_413_before_the_app(app):
    limit = ServerSettings().max_body_bytes
    status, _, text = call(
        app,
        "POST",
        "/api/generate",
        {"host": "127.0.0.1", **JSON, "content-length": str(limit + 1)},
        b"x" * (limit + 1),
    )
    assert status == 413 and str(limit) in json.loads(text)["error"]
    # The same body sent in chunks, without a length: counted as it arrives.
    chunk = b" " * (1 << 20)
    status, _, text = call(
        app,
        "POST",
        "/api/generate",
        {"host": "127.0.0.1", **JSON, "transfer-encoding": "chunked"},
        chunks=[chunk] * 5,
    )
    assert status == 413 and str(limit) in json.loads(text)["error"]
    status, _, _ = call(
        app, "POST", "/api/generate", {"host": "127.0.0.1", **JSON, "content-length": "-1"}, b""
    )
    assert status == 413


# ----------------------------------------------------------------------------- classroom mode, in process


@pytest.fixture(scope="module")
def classroom(stub):
    return make_app(model=stub, token=TOKEN, allowed_hosts=("*",), max_running=1, max_queued=4)


def test_classroom_needs_the_token_on_every_api_route(classroom):
    for method, path, body in ROUTES:
        if path.startswith("/static/"):
            continue
        status, _, text = call(classroom, method, path, headers_for("192.168.1.20:8000", method), body)
        assert status == 401, (path, status)
        assert TOKEN.encode() not in text
        wrong = headers_for("192.168.1.20:8000", method, {"authorization": "Bearer not-the-token-at-all"})
        assert call(classroom, method, path, wrong, body)[0] == 401
        wrong_cookie = headers_for("192.168.1.20:8000", method, {"cookie": f"{TOKEN_COOKIE}=nope"})
        assert call(classroom, method, path, wrong_cookie, body)[0] == 401
    ok = headers_for("192.168.1.20:8000", "GET", {"authorization": f"Bearer {TOKEN}"})
    assert call(classroom, "GET", "/api/health", ok)[0] == 200
    # Static files carry no secrets: the page's scripts load before the cookie exists.
    assert call(classroom, "GET", "/static/js/main.js", {"host": "192.168.1.20:8000"})[0] == 200


def test_classroom_link_sets_an_httponly_strict_cookie_and_redirects(classroom):
    status, headers, _ = call(
        classroom, "GET", "/", {"host": "10.0.0.5:8000"}, query=f"token={TOKEN}".encode()
    )
    assert status == 303 and headers["location"] == "/"
    raw = [v for k, v in _all_headers(classroom, f"token={TOKEN}") if k == "set-cookie"]
    token_cookie = next(c for c in raw if c.startswith(TOKEN_COOKIE + "="))
    assert "HttpOnly" in token_cookie and "SameSite=Strict" in token_cookie
    client_cookie = next(c for c in raw if c.startswith(CLIENT_COOKIE + "="))
    assert "HttpOnly" in client_cookie
    session = token_cookie.split(";")[0].split("=", 1)[1]
    assert TOKEN not in session and session.split(".")[0] == client_cookie.split(";")[0].split("=", 1)[1]
    cookie = f"{TOKEN_COOKIE}={session}; " + client_cookie.split(";")[0]
    # the raw token is not a session, and neither is a session signed with another token
    assert (
        call(classroom, "GET", "/", {"host": "10.0.0.5:8000", "cookie": f"{TOKEN_COOKIE}={TOKEN}"})[0] == 401
    )
    forged = session.split(".")[0] + "." + session_mac("another-token-123", session.split(".")[0])
    assert (
        call(classroom, "GET", "/", {"host": "10.0.0.5:8000", "cookie": f"{TOKEN_COOKIE}={forged}"})[0] == 401
    )
    assert call(classroom, "GET", "/", {"host": "10.0.0.5:8000", "cookie": cookie})[0] == 200
    assert (
        call(
            classroom,
            "POST",
            "/api/tokenize",
            {"host": "10.0.0.5:8000", "cookie": cookie, **JSON},
            b'{"text":"x"}',
        )[0]
        == 200
    )
    status, _, text = call(classroom, "GET", "/", {"host": "10.0.0.5:8000"}, query=b"token=wrong-token-guess")
    assert status == 401 and TOKEN.encode() not in text


def _all_headers(app, query):
    """Every response header, repeated ones included (Set-Cookie comes twice)."""
    got = []

    async def run():
        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            if message["type"] == "http.response.start":
                got.extend((k.decode().lower(), v.decode()) for k, v in message["headers"])

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/",
            "raw_path": b"/",
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(b"host", b"10.0.0.5:8000")],
            "client": ("10.0.0.9", 1),
            "server": ("10.0.0.5", 8000),
        }
        await app(scope, receive, send)

    run_in_thread(run)
    return got


def test_classroom_one_generation_per_client_with_queue_position(stub):
    """Fairness: a second generation from the same person is refused; others queue and see their place."""
    app = make_app(model=stub, token=TOKEN, allowed_hosts=("*",), max_running=1, max_queued=4)
    body = {"prompt": "go", "max_new_tokens": 200, "temperature": 1.0, "seed": 3, "chat": False}

    with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=20) as c:
        # two students, each with the id the server signed
        sessions = {name: signed_session(c) for name in "ab"}

        def who(name):
            return {"cookie": sessions[name]}

        with c.stream("POST", "/api/generate", json=body, headers=who("a")) as first:
            assert first.status_code == 200
            lines = first.iter_lines()
            assert next(lines) == "event: start"
            again = c.post("/api/generate", json=body, headers=who("a"))
            assert again.status_code == 429 and again.headers["retry-after"]
            assert "one at a time" in again.json()["error"]
            with c.stream("POST", "/api/generate", json=body, headers=who("b")) as other:
                assert other.status_code == 200
                other_lines = other.iter_lines()
                first_line, data = next(other_lines), next(other_lines)
                assert first_line == "event: queued" and json.loads(data[6:])["position"] == 1
        # Both streams closed: the slot and the per-client places are free again.
        deadline = time.time() + 3
        while time.time() < deadline and (app.state.slots.running or app.state.slots.admitted):
            time.sleep(0.05)
        assert app.state.slots.running == 0 and app.state.slots.admitted == 0 and not app.state.slots.clients
        done = c.post("/api/generate", json={**body, "max_new_tokens": 3}, headers=who("a"))
        assert done.status_code == 200 and "event: done" in done.text


def signed_session(c: httpx.Client, token: str = TOKEN) -> str:
    """Open the classroom link as a new browser would: the Cookie header of the session it gets."""
    with httpx.Client(base_url=c.base_url, timeout=20) as fresh:  # an empty cookie jar
        r = fresh.get("/", params={"token": token}, follow_redirects=False)
    assert r.status_code == 303
    return "; ".join(f"{k}={v}" for k, v in r.cookies.items())


# --------------------------------------------------------------------------- classroom mode, the real command


def test_serve_on_all_interfaces_refuses_without_a_token(stub):
    from conftest import free_port

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "prediction_machine",
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            str(free_port()),
            "--model",
            stub,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )
    out = done.stdout
    assert done.returncode == 2, out
    assert "--token" in out and "Traceback" not in out
    suggested = out.split("--token ")[1].split()[0]
    assert len(suggested) >= 16  # a fresh, usable token is printed
    from prediction_machine.web.serve import ServeError, check_token

    with pytest.raises(ServeError, match="at least"):
        check_token("0.0.0.0", 8000, "short")
    assert check_token("127.0.0.1", 8000, None) is None  # the laptop default needs none
    assert check_token("0.0.0.0", 8000, TOKEN) == TOKEN


def test_classroom_server_end_to_end_token_never_logged(stub):
    with start_server(
        "--host",
        "0.0.0.0",
        "--model",
        stub,
        env={"PREDICTION_MACHINE_TOKEN": TOKEN},
        headers={"authorization": f"Bearer {TOKEN}"},
    ) as server:
        with httpx.Client(base_url=server.url, timeout=20, follow_redirects=True) as c:
            assert c.get("/api/health").status_code == 401
            assert (
                c.get("/api/health", headers={"authorization": "Bearer wrong-token-0000"}).status_code == 401
            )
            r = c.get("/", params={"token": TOKEN})  # follows the redirect with the cookie set
            assert r.status_code == 200 and r.url.path == "/" and "token" not in str(r.url)
            assert c.get("/api/health").status_code == 200
            r = c.post("/api/generate", json={"prompt": "x", "max_new_tokens": 2, "seed": 1})
            assert r.status_code == 200 and "event: done" in r.text
            c.get("/", params={"token": "not-" + TOKEN})
            c.post("/api/generate", content=b"{bad json", headers=JSON)
        returncode, out = server.stop(signal.SIGTERM), server.output()
    assert returncode == 0, out
    assert TOKEN not in out and "Classroom mode" in out


def test_a_weak_teacher_token_is_refused_at_start_like_a_weak_class_token(stub):
    # "PREDICTION_MACHINE_TEACHER_TOKEN=abc" was accepted: a student who tried "Bearer abc" listed
    # every job and stopped another student's. Now serve refuses to start, and says why.
    from conftest import free_port

    from prediction_machine.web.serve import ServeError, check_teacher_token

    env = {**os.environ, "PREDICTION_MACHINE_TEACHER_TOKEN": "abc"}
    done = subprocess.run(
        [sys.executable, "-m", "prediction_machine", "serve", "--port", str(free_port()), "--model", stub,
         "--token", TOKEN],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60, env=env,
    )
    assert done.returncode == 2, done.stdout
    assert "TEACHER_TOKEN must be at least 12 characters" in done.stdout and "Traceback" not in done.stdout
    with pytest.raises(ServeError, match="differ from the class token"):
        check_teacher_token(ServerSettings(token=TOKEN, teacher_token=TOKEN))
    check_teacher_token(ServerSettings(token=TOKEN, teacher_token="another-long-teacher-token"))
