"""Server-sent events over a bounded pool of slots, with cancellation on disconnect and shutdown.

A long computation hands its items to the stream's event loop as they are made (push, not
poll), through a `Feed`:
- a generation joins the shared decode loop (engine/batching.py), which puts each Step into
  the feed from its own thread; `stream_pushed` renders them as events on the event loop;
- any other computation is a plain Python iterator of events; `stream` runs it in a worker
  thread that puts each event into the feed.
When the client goes away the work is cancelled at once (a generation's batch row is freed
before the next decode step). A client that stops reading is dropped once one write has
waited `stream_send_timeout_s`, and its place is freed. When every slot is busy a request
waits in a bounded queue (told its position); when the queue is full it gets 429 with
Retry-After straight away.

Who gets a place is decided in web/admission.py; this file only moves the events. On
SIGTERM `admission.begin_shutdown()` ends every live stream with a terminal `error` event.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Protocol

import orjson
from fastapi.responses import StreamingResponse

from prediction_machine import cancel
from prediction_machine.engine import priority
from prediction_machine.web.admission import Slots, live_streams, shutting_down

log = logging.getLogger("prediction_machine.web")

# The OpenAPI description of a streaming route: `@router.post(..., responses=SSE_RESPONSES)`.
SSE_RESPONSES = {
    200: {
        "description": "text/event-stream: one JSON object per event; "
                       "the last event is terminal (`done` or `error`)",
        "content": {"text/event-stream": {"schema": {
            "type": "object",
            "description": "one server-sent event; `data` is a JSON object",
            "required": ["data"],
            "properties": {"event": {"type": "string"},
                           "data": {"type": "string", "contentMediaType": "application/json"}},
        }}},
    },
    429: {"description": "busy: every running slot and queue place is taken; see Retry-After"},
    503: {"description": "the server is shutting down, or its model is still loading; see Retry-After"},
}
QUEUED_EVERY_S = 2.0  # a queued client gets a `queued` event at least this often
SEND_TIMEOUT_S = 10.0  # used when the app has no settings (ServerSettings.stream_send_timeout_s)


def sse(event: str, data: dict) -> str:
    """One server-sent event, its JSON written by orjson: a class of 32 streams sends 32 step
    events a step, and orjson renders one several times faster than json.dumps (the figures, with
    their machine and date, are in docs/performance.md).

    Routes pass numbers that can be NaN or Infinity through jsonsafe.json_number (null); for any
    that slips past, orjson too writes null, never a number JSON does not have.
    """
    return f"event: {event}\ndata: {orjson.dumps(data, option=SSE_JSON).decode()}\n\n"


SSE_JSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY  # as json.dumps: int keys become strings


# ----------------------------------------------------------------------------- one request's link


class Link:
    """What the security middleware knows about the request being served.

    `client` is the fairness key (set in classroom mode only); `gone` turns true when the
    client disconnects, and callbacks registered with `on_gone` run then (on the event loop).
    """

    def __init__(self, client: str | None = None):
        self.client = client
        self.gone = False
        self._callbacks: list[Callable[[], None]] = []

    def on_gone(self, callback: Callable[[], None]) -> Callable[[], None]:
        if self.gone:
            callback()
        else:
            self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

    def set_gone(self) -> None:
        if self.gone:
            return
        self.gone = True
        for callback in list(self._callbacks):
            callback()


REQUEST: contextvars.ContextVar[Link | None] = contextvars.ContextVar("pm_request", default=None)


# ----------------------------------------------------------------------------- the feed


class Feed:
    """Items put from any thread land on the stream's event loop at once: nobody polls.

    `put` is the one method of queue.Queue the batcher uses, so a feed can be a batch
    request's `out`. `None` means the work has really stopped: its slot is released then,
    even if the client left long before.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, on_end: Callable[[], None]):
        self.loop, self.queue, self._on_end, self.ended = loop, asyncio.Queue(), on_end, False

    def put(self, item: Any) -> None:  # any thread
        _post(self.loop, self._arrive, item)

    def _arrive(self, item: Any) -> None:  # on the event loop
        if item is None and not self.ended:
            self.ended = True
            self._on_end()
        self.queue.put_nowait(item)


class Events(Protocol):
    """How a pushed stream's items become events; every method returns (event, data) or None."""

    def start(self) -> tuple[str, dict] | None: ...
    def item(self, item: Any) -> tuple[str, dict] | None: ...
    def end(self) -> tuple[str, dict] | None: ...


class _AsIs:
    """The items are already (event, data) pairs (a worker thread's iterator)."""

    def start(self):
        return None

    def item(self, item):
        return item

    def end(self):
        return None


# ----------------------------------------------------------------------------- the streams

SHUTDOWN_EVENT = {"error": "the server is shutting down; your request was stopped. Try again in a moment.",
                  "finish": "shutdown"}


def stream(
    slots: Slots,
    work: Callable[[Callable[[], bool]], Iterator[tuple[str, dict]]],
    on_error: Callable[[Exception], dict] | None = None,
) -> StreamingResponse:
    """An SSE response that runs `work(should_stop)` in a thread once a slot is free.

    `work` yields (event_name, data) pairs. The response always ends with a terminal event:
    whatever `work` sent last ("done"), or "error" if it raised or the server is shutting down.
    A client that disconnects stops the work before its next step; one that leaves while
    queued never runs at all.
    """

    def begin(feed: Feed) -> Callable[[], None]:
        stop = threading.Event()

        def run() -> None:
            # A stream's work is long (a head scan's reruns): at its checkpoints (cancel.check) it stops
            # once unwanted, and steps aside while generations decode (engine/priority.py).
            checkpoints = cancel.stop_when(priority.Turn(stop.is_set).should_stop)
            try:
                for item in work(stop.is_set):
                    if stop.is_set():
                        break
                    feed.put(item)
            except cancel.Cancelled:
                pass  # stopped between two steps: nobody waits for more
            except Exception as e:  # noqa: BLE001 - reported to the client as an event (and logged there)
                feed.put(e)
            finally:
                cancel.reset(checkpoints)
                feed.put(None)

        threading.Thread(target=run, name="pm-stream", daemon=True).start()
        return stop.set

    return stream_pushed(slots, begin, _AsIs(), on_error)


def stream_pushed(
    slots: Slots,
    begin: Callable[[Feed], Callable[[], None]],
    events: Events,
    on_error: Callable[[Exception], dict] | None = None,
) -> StreamingResponse:
    """An SSE response whose work pushes its items into a Feed from wherever it runs.

    `begin(feed)` is called on the event loop once a slot is ours; it starts the work and
    returns `cancel()`. The work puts items (rendered by `events.item`), an Exception on
    failure, and None when it has stopped. The slot is held until that None arrives.
    """
    link = REQUEST.get() or Link()
    ticket = slots.admit(link.client)  # 429 / 503 happen here, as a plain HTTP status

    async def body() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        interrupted = asyncio.Event()
        reason: list[str] = []
        cancel: list[Callable[[], None]] = []
        feed = Feed(loop, slots.release)

        def interrupt(why: str) -> None:  # on the event loop
            if not reason:
                reason.append(why)
            for c in cancel:
                c()  # a generation leaves the batch before the next decode step
            interrupted.set()
            feed.queue.put_nowait(_WAKE)

        end_on_shutdown = lambda: interrupt("shutdown")  # noqa: E731
        live_streams.add(end_on_shutdown)
        forget_link = link.on_gone(lambda: interrupt("gone"))
        try:
            if shutting_down():
                interrupt("shutdown")
            async for event in _wait_in_line(slots, interrupted):
                yield event
            if interrupted.is_set():
                if reason[0] == "shutdown":
                    yield sse("error", SHUTDOWN_EVENT)
                return
            try:
                cancel.append(begin(feed))
            except Exception as e:  # noqa: BLE001 - e.g. a prompt the decoder refuses
                slots.release()
                feed.ended = True
                log.exception("stream work failed to start")
                yield sse("error", _error(e, on_error))
                return
            first = events.start()
            if first is not None:
                yield sse(*first)
            failed = False
            while not interrupted.is_set():
                item = await feed.queue.get()
                if item is None:
                    last = None if failed else events.end()  # after an error, the error is the terminal event
                    if last is not None:
                        yield sse(*last)
                    break
                if item is _WAKE or failed:
                    continue
                if isinstance(item, Exception):
                    failed = True
                    log.error("stream work failed", exc_info=item)
                    yield sse("error", _error(item, on_error))
                    continue
                out = events.item(item)
                if out is not None:
                    yield sse(*out)
            if reason and reason[0] == "shutdown":
                yield sse("error", SHUTDOWN_EVENT)
        finally:
            for c in cancel:
                c()  # the client left or we finished: either way the work stops
            live_streams.discard(end_on_shutdown)
            forget_link()
            ticket.close()

    return EventStream(body(), media_type="text/event-stream",
                       headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


_WAKE = object()  # put by interrupt(): wakes the loop so it notices


async def _wait_in_line(slots: Slots, interrupted: asyncio.Event) -> AsyncIterator[str]:
    """Wait for a running slot, yielding `queued` events as the place in line changes.

    On return the slot is ours, unless `interrupted` is set (then we hold nothing)."""
    holder: list[asyncio.Future] = []
    await_slot = asyncio.ensure_future(slots.acquire(holder=holder))
    wake = asyncio.ensure_future(interrupted.wait())
    try:
        await asyncio.sleep(0)  # let acquire() take a free slot or join the line
        last, told = None, 0.0
        while not await_slot.done() and not interrupted.is_set():
            pos = slots.waiters.index(holder[0]) + 1 if holder and holder[0] in slots.waiters else None
            now = time.monotonic()
            if pos is not None and (pos != last or now - told >= QUEUED_EVERY_S):
                last, told = pos, now  # repeated unchanged too: a waiting client hears from us every few s
                yield sse("queued", {"position": pos, **slots.status()})
            await asyncio.wait([await_slot, wake], timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        _leave_line(slots, await_slot)
        raise
    finally:
        wake.cancel()
    if interrupted.is_set():
        _leave_line(slots, await_slot)  # abandoned while queued: this request never runs


def _error(e: Exception, on_error: Callable[[Exception], dict] | None) -> dict:
    return on_error(e) if on_error else {"error": f"{type(e).__name__}: {e}"}


def _leave_line(slots: Slots, await_slot: asyncio.Future) -> None:
    """Give up a place in line, or the slot itself if it was handed to us meanwhile."""
    if not await_slot.done():
        await_slot.cancel()  # acquire() removes its waiter (or passes a just-handed slot on)
    elif not await_slot.cancelled() and await_slot.exception() is None:
        slots.release()


def _post(loop: asyncio.AbstractEventLoop, fn, *args) -> None:
    """Run fn on the event loop from a worker thread; after shutdown the loop may be gone."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:
        pass


# ----------------------------------------------------------------------------- slow readers


class _SlowReader(Exception):
    pass


class EventStream(StreamingResponse):
    """A StreamingResponse whose every write is bounded in time.

    A client that keeps its socket open but stops reading fills the socket buffers, and then
    a write waits forever, holding the stream's place in admission. Here a write that waits
    longer than the app's `stream_send_timeout_s` drops the stream: the work is cancelled,
    the place is freed, and the server closes the connection.
    """

    send_timeout = SEND_TIMEOUT_S

    async def __call__(self, scope, receive, send) -> None:
        app_settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
        self.send_timeout = getattr(app_settings, "stream_send_timeout_s", SEND_TIMEOUT_S)
        await super().__call__(scope, receive, send)

    async def stream_response(self, send) -> None:
        async def timed(message: dict) -> None:
            try:
                # wait_for, not asyncio.timeout: with the latter a disconnect behind Starlette's http
                # middleware sometimes left the admission place held (docs/performance.md, its log)
                await asyncio.wait_for(send(message), self.send_timeout)
            except TimeoutError:
                raise _SlowReader from None

        try:
            await timed({"type": "http.response.start", "status": self.status_code,
                         "headers": self.raw_headers})
            async for chunk in self.body_iterator:
                await timed({"type": "http.response.body", "body": chunk.encode(self.charset),
                             "more_body": True})
            await timed({"type": "http.response.body", "body": b"", "more_body": False})
        except _SlowReader:
            log.warning("dropped a stream whose client read nothing for %.0f s; its place is free again",
                        self.send_timeout)
            await self.body_iterator.aclose()  # runs the stream's cleanup now: work cancelled, place freed
