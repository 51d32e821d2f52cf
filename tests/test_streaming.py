"""Streams are pushed, not polled; a client that leaves or stops reading frees its place.

Real uvicorn in a thread (tests/hostile_model.LiveServer) over the tiny stub model, raw sockets
so each test decides exactly when a client hangs up or stops reading.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from conftest import make_app, read_sse, run_in_thread, wait_until
from hostile_model import LiveServer
from raw_http import raw_stream, read_until

from prediction_machine.engine import server_batcher
from prediction_machine.model import models
from prediction_machine.web import streaming

BODY = {"prompt": "go", "max_new_tokens": 240, "chat": False, "temperature": 1, "seed": 2}


@pytest.fixture
def slow_lm(stub, monkeypatch):
    """The stub model, every forward pass slowed to 10 ms: a generation is still running when we act."""
    lm = models.load(stub)
    monkeypatch.setattr(lm, "decoder", Slow(lm.decoder, 0.01))
    return lm


class Slow:
    """A decoder that sleeps before each forward pass (and otherwise is the decoder it wraps)."""

    def __init__(self, decoder, delay: float):
        self.inner, self.delay = decoder, delay

    def __call__(self, *args, **kwargs):
        time.sleep(self.delay)
        return self.inner(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_disconnect_frees_its_batch_row_within_one_step(stub, slow_lm, monkeypatch):
    app = make_app(model=stub, max_running=2, max_queued=2)
    batcher = server_batcher.batcher_for(slow_lm.decoder, 2)
    at_gone: list[int] = []
    real_set_gone = streaming.Link.set_gone

    def set_gone(link):  # note the decode step at which the server learnt that the client left
        if not link.gone:
            at_gone.append(batcher.steps_run)
        real_set_gone(link)

    monkeypatch.setattr(streaming.Link, "set_gone", set_gone)
    with LiveServer(app) as live:
        s = raw_stream(live.url, BODY)
        read_until(s, b"event: step", 3)
        t_close = time.perf_counter()
        s.close()
        wait_until(lambda: at_gone, 2.0, "the server to notice the disconnect", poll=0.01)
        wait_until(lambda: not batcher.rows, 2.0, "the row to be freed", poll=0.01)
        freed_after = time.perf_counter() - t_close
        time.sleep(0.1)  # nothing left to decode: steps_run stands still now
        assert batcher.steps_run - at_gone[0] <= 1, (
            f"{batcher.steps_run - at_gone[0]} decode steps ran after the disconnect; "
            "the row must go before the next one")
        assert batcher.steps_run < 200, "the generation ran on to its end"
        wait_until(lambda: app.state.slots.running == 0 and app.state.slots.admitted == 0, 1.0, "the place")
        assert freed_after < 1.0, f"the row was freed {freed_after:.2f} s after the client left"


def test_steps_are_pushed_to_the_event_loop_without_a_thread_per_stream(stub, slow_lm):
    app = make_app(model=stub, max_running=4, max_queued=4)
    with LiveServer(app) as live:
        streams = [raw_stream(live.url, {**BODY, "seed": i}) for i in range(3)]
        for s in streams:
            read_until(s, b"event: step", 2)
        per_stream = [t.name for t in threading.enumerate() if t.name == "pm-stream"]
        assert per_stream == [], "a generation stream should not need a consumer thread of its own"
        for s in streams:
            s.close()
        wait_until(lambda: app.state.slots.admitted == 0, 2.0, "the places to be freed")


def test_a_client_that_stops_reading_loses_its_place_and_others_get_in(stub, slow_lm):
    """A connection kept open but never read again must not hold the only place for ever.

    Driven at the ASGI level, because on loopback the kernel's socket buffers (up to 4 MB) would
    swallow a whole stub generation: here the third write simply never completes, as it does
    when a real client's buffers are full.
    """
    app = make_app(model=stub, max_running=1, max_queued=0, stream_send_timeout_s=0.3)
    body = json.dumps({**BODY, "top_n": 5}).encode()

    async def call(send) -> None:
        delivered = False

        async def receive():  # the body, then a client that never hangs up
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()

        await app(asgi_scope(len(body)), receive, send)

    async def scenario() -> tuple[int, int, list[bytes]]:
        messages: list[dict] = []

        async def stops_reading(message):
            messages.append(message)
            if len([m for m in messages if m["type"] == "http.response.body"]) >= 2:
                await asyncio.Event().wait()  # this write never completes

        await asyncio.wait_for(call(stops_reading), 10)  # before: it waited for ever, holding the place
        for _ in range(200):
            if app.state.slots.running == 0:
                break
            await asyncio.sleep(0.01)
        held = (app.state.slots.admitted, app.state.slots.running)
        second: list[bytes] = []

        async def reads(message):
            second.append(message.get("body", b""))

        await asyncio.wait_for(call(reads), 20)
        return held, messages[0]["status"], second

    held, status, second = run_in_thread(scenario)  # after a Playwright test this thread owns a loop
    assert status == 200
    assert held == (0, 0), f"admitted and running after the drop: {held}"
    assert b"event: done" in b"".join(second), "the next student did not get in"


def asgi_scope(length: int) -> dict:
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
        "method": "POST", "scheme": "http", "path": "/api/generate", "raw_path": b"/api/generate",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                    (b"content-length", str(length).encode())],
    }


def test_top_n_asks_for_the_table(stub):
    from fastapi.testclient import TestClient

    with TestClient(make_app(model=stub), base_url="http://127.0.0.1") as c:
        body = {"prompt": "go", "max_new_tokens": 2, "chat": False, "temperature": 0}
        plain = [d for e, d in read_sse(c.post("/api/generate", json=body)) if e == "step"]
        assert plain and all(d["prediction"] is None for d in plain)  # the default: no table computed or sent
        asked = [d for e, d in read_sse(c.post("/api/generate", json={**body, "top_n": 3})) if e == "step"]
        assert [len(d["prediction"]["rows"]) for d in asked] == [3, 3]
        assert [d["id"] for d in asked] == [d["id"] for d in plain]  # asking for the table changes no token
        for bad in (-1, 21, 2.5):
            r = c.post("/api/generate", json={**body, "top_n": bad})
            assert r.status_code == 422 and "top_n" in r.text, r.text


def test_a_failing_decode_ends_the_stream_with_its_error_and_frees_the_place(stub, monkeypatch):
    from fastapi.testclient import TestClient

    lm = models.load(stub)

    class Breaking(Slow):  # the prompt's pass and one decode step work; the next step fails
        calls = 0

        def __call__(self, *args, **kwargs):
            Breaking.calls += 1
            if Breaking.calls > 2:
                raise RuntimeError("the decoder broke")
            return self.inner(*args, **kwargs)

    monkeypatch.setattr(lm, "decoder", Breaking(lm.decoder, 0.0))
    app = make_app(model=stub, max_running=1, max_queued=0)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        events = read_sse(c.post("/api/generate", json={**BODY, "max_new_tokens": 10}))
        names = [e for e, _ in events]
        assert names[-1] == "error" and "done" not in names, names
        assert "the decoder broke" in events[-1][1]["error"]
        wait_until(lambda: app.state.slots.running == 0 and app.state.slots.admitted == 0, 2.0, "the place")
