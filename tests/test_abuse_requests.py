"""The small things: parse errors that say where, duplicate keys, the cross-site GET
rule at the ASGI level, and the compare cache that no longer keeps every checkpoint loaded.
"""

from __future__ import annotations

import gc
import json
import re
import shutil
import weakref

import pytest
from conftest import make_app
from test_security import JSON, call

from prediction_machine.model.models import shipped_checkpoint
from prediction_machine.training.curriculum import runs
from prediction_machine.web import admission
from prediction_machine.web.validation import json_problem


@pytest.fixture(scope="module")
def app(stub):
    return make_app(model=stub)


def post(app, body: bytes):
    status, _, text = call(app, "POST", "/api/tokenize", {"host": "127.0.0.1", **JSON}, body)
    return status, json.loads(text)["error"]


def test_parse_errors_name_the_place_and_duplicate_keys_get_422(app):
    assert post(app, b'{"text": }') == (400, "body: not valid JSON at line 1 column 10 (Expecting value)")
    assert post(app, b'{"a":\n  [1,]}')[1].startswith("body: not valid JSON at line 2 column")
    assert post(app, b'{"text": "a", "text": "b"}') == (422, "body: the key 'text' appears twice")
    assert post(app, b'{"x": {"k": 1, "k": 2}}') == (422, "body: the key 'k' appears twice")  # nested too
    assert post(app, b'{"text": "\xff"}') == (400, "body: not valid UTF-8 at byte 10")
    assert call(app, "POST", "/api/tokenize", {"host": "127.0.0.1", **JSON}, b'{"text": "fine"}')[0] == 200
    assert json_problem(b"[" * 100_000) is not None  # nested too deeply: a 400, never a crash


@pytest.mark.parametrize(
    "site, expected", [("cross-site", 403), ("same-site", 403), ("same-origin", 200), ("none", 200)]
)
def test_every_api_get_follows_the_sec_fetch_site_rule(app, site, expected):
    for path in ("/api/health", "/api/models", "/api/curriculum/runs"):
        status, headers, _ = call(app, "GET", path, {"host": "127.0.0.1", "sec-fetch-site": site})
        assert status == expected, (path, site, status)
        assert "content-security-policy" in headers
    assert call(app, "GET", "/api/health", {"host": "127.0.0.1"})[0] == 200  # curl and scripts send none


def test_during_shutdown_every_request_gets_503_with_retry_after(app):
    admission.begin_shutdown()
    try:
        status, headers, _ = call(app, "GET", "/api/health", {"host": "127.0.0.1"})
        assert status == 503 and headers["retry-after"] == "5"
    finally:
        admission.reset_shutdown()


def test_compare_keeps_at_most_four_runs_loaded(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from prediction_machine.web.routes import curriculum

    monkeypatch.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path))
    chat = shipped_checkpoint("shakespeare-chat")
    ids = []
    for i in range(6):  # six "fine-tuning runs", each a copy of the shipped chat model
        folder = runs.runs_dir() / f"finetune-2025010{i}-000000"
        shutil.copytree(chat, folder)
        (folder / runs.OWNER_FILE).write_text("local")
        ids.append(folder.name)
    app = make_app(model=str(chat))
    curriculum.COMPARED._items.clear()
    first = None
    with TestClient(app, base_url="http://127.0.0.1") as c:
        for run_id in ids:
            r = c.post(
                "/api/curriculum/compare",
                json={"question": "Who is Hamlet's mother?", "tuned": run_id, "k": 3},
            )
            assert r.status_code == 200, r.text
            if first is None:
                first = weakref.ref(next(v for _, v in curriculum.COMPARED._items.values()))
    assert len(curriculum.COMPARED) == 4
    gc.collect()
    assert first() is None  # the least recently compared model was freed, not kept forever


def post_routes(app) -> list[str]:
    """Every POST operation of the schema, path parameters filled with a well-formed id."""
    paths = app.openapi()["paths"]
    return [re.sub(r"\{[^}]+\}", "abcdefgh", p) for p, ops in paths.items() if "post" in ops]


def test_a_huge_integer_is_a_400_with_the_headers_on_every_post_route(app):
    """Python refuses to parse an integer past 4,300 digits with a ValueError that is no JSONDecodeError."""
    huge = b'{"x": {"y": [1, ' + b"9" * 4301 + b"]}}"
    routes = post_routes(app)
    assert len(routes) >= 20 and "/api/generate" in routes
    for path in routes:
        status, headers, text = call(app, "POST", path, {"host": "127.0.0.1", **JSON}, huge)
        assert status == 400, (path, status, text[:200])
        assert json.loads(text)["error"].startswith("body: a number in the JSON has more than"), path
        assert headers["x-content-type-options"] == "nosniff" and "content-security-policy" in headers
    assert json_problem(b"-" + b"1" * 5000) == (400, json_problem(b"1" * 5000)[1])


def test_head_is_answered_as_allow_says_by_the_app_and_the_early_responder(app):
    """HEAD is not served on the API or the page (405, and Allow does not list it); static files serve it."""
    from prediction_machine.web.early import EarlyResponder

    early = EarlyResponder(None, ("127.0.0.1",), classroom=False)
    for path in ("/api/health", "/", "/api/backprop/sessions/abcdefgh"):
        status, headers, _ = call(app, "HEAD", path, {"host": "127.0.0.1"})
        assert status == 405 and "HEAD" not in headers["allow"] and "GET" in headers["allow"], (path, headers)
    assert call(app, "HEAD", "/static/css/base.css", {"host": "127.0.0.1"})[0] == 200
    for path, status in (("/api/health", 405), ("/", 405), ("/static/css/base.css", 200)):
        head = early.answer(("HEAD", path, {"host": "127.0.0.1"})).split(b"\r\n\r\n")[0].decode()
        assert head.startswith(f"HTTP/1.1 {status} "), (path, head)
        assert status == 200 or "\r\nAllow: GET\r\n" in head, head


@pytest.mark.parametrize("length", [b"abc", b"-1", b"1, 2", b"9" * 30])
def test_a_malformed_content_length_gets_our_400_from_the_real_server(app, length):
    """uvicorn's HTTP parser refuses these before the app runs: the answer is still ours (JSON, headers)."""
    import socket
    import threading
    import time

    from prediction_machine.web import early, serve

    sock = early.bind("127.0.0.1", 0)
    server = serve.make_server(app, app.state.settings)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.time() + 20
        while not server.started:
            assert time.time() < deadline and thread.is_alive(), "test server did not start"
            time.sleep(0.02)
        with socket.create_connection(sock.getsockname(), timeout=10) as s:
            s.sendall(b"POST /api/tokenize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      b"Content-Length: " + length + b"\r\n\r\n{}")
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer[:300]
    head = head.lower()
    assert b"\r\nx-content-type-options: nosniff\r\n" in head and b"content-security-policy: " in head
    assert json.loads(body)["error"].startswith("the request could not be read")
