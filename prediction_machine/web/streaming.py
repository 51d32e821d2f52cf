"""Server-sent events over a bounded pool of slots, with cancellation on disconnect and shutdown.

A long computation (a generation, a training run) is a plain Python iterator of events. It
runs in a worker thread; each event it yields is sent as one SSE message. When the client
goes away the stream is cancelled, the iterator's `should_stop` turns true, and it ends
within one step. When every slot is busy a request waits in a bounded queue (told its
position); when the queue is full it gets 429 with Retry-After straight away.

Who gets a place is decided in web/admission.py; this file only moves the events. On
SIGTERM `admission.begin_shutdown()` ends every live stream with a terminal `error` event.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator

from fastapi.responses import StreamingResponse

from prediction_machine.web.admission import Slots, live_streams, shutting_down

log = logging.getLogger("prediction_machine.web")

# The OpenAPI description of a streaming route: `@router.post(..., responses=SSE_RESPONSES)`.
SSE_RESPONSES = {
    200: {
        "description": "text/event-stream: one JSON object per event; the last event is terminal (`done` or `error`)",
        "content": {"text/event-stream": {"schema": {
            "type": "object",
            "description": "one server-sent event; `data` is a JSON object",
            "required": ["data"],
            "properties": {"event": {"type": "string"}, "data": {"type": "string", "contentMediaType": "application/json"}},
        }}},
    },
    429: {"description": "busy: every running slot and queue place is taken; see Retry-After"},
    503: {"description": "the server is shutting down; see Retry-After"},
}


def sse(event: str, data: dict) -> str:
    """One server-sent event. JSON with allow_nan=False: NaN or Infinity would be a bug, loudly."""
    return f"event: {event}\ndata: {json.dumps(data, allow_nan=False, ensure_ascii=False)}\n\n"


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


# ----------------------------------------------------------------------------- the stream

SHUTDOWN_EVENT = {"error": "the server is shutting down; your request was stopped. Try again in a moment.", "finish": "shutdown"}


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
    link = REQUEST.get() or Link()
    ticket = slots.admit(link.client)  # 429 / 503 happen here, as a plain HTTP status

    async def events() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()
        interrupted = asyncio.Event()
        reason: list[str] = []

        def interrupt(why: str) -> None:  # on the event loop
            if not reason:
                reason.append(why)
            stop.set()
            interrupted.set()
            queue.put_nowait(None)

        end_on_shutdown = lambda: interrupt("shutdown")  # noqa: E731
        live_streams.add(end_on_shutdown)
        forget_link = link.on_gone(lambda: interrupt("gone"))
        try:
            if shutting_down():
                interrupt("shutdown")
            # -- wait for a slot, telling the client its place in line
            holder: list[asyncio.Future] = []
            await_slot = asyncio.ensure_future(slots.acquire(holder=holder))
            wake = asyncio.ensure_future(interrupted.wait())
            try:
                await asyncio.sleep(0)  # let acquire() take a free slot or join the line
                last = None
                while not await_slot.done() and not interrupted.is_set():
                    pos = slots.waiters.index(holder[0]) + 1 if holder and holder[0] in slots.waiters else None
                    if pos is not None and pos != last:
                        last = pos
                        yield sse("queued", {"position": pos, **slots.status()})
                    await asyncio.wait([await_slot, wake], timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
            except BaseException:
                _leave_line(slots, await_slot)
                raise
            finally:
                wake.cancel()
            if interrupted.is_set():
                _leave_line(slots, await_slot)  # abandoned while queued: this request never runs
                if reason[0] == "shutdown":
                    yield sse("error", SHUTDOWN_EVENT)
                return

            # -- run the work in a thread; the slot is freed when the work has really stopped
            def run() -> None:
                try:
                    for item in work(stop.is_set):
                        if stop.is_set():
                            break
                        _post(loop, queue.put_nowait, item)
                except Exception as e:  # noqa: BLE001 - reported to the client as an event
                    log.exception("stream work failed")
                    payload = on_error(e) if on_error else {"error": f"{type(e).__name__}: {e}"}
                    _post(loop, queue.put_nowait, ("error", payload))
                finally:
                    _post(loop, slots.release)
                    _post(loop, queue.put_nowait, None)

            thread = threading.Thread(target=run, name="pm-stream", daemon=True)
            try:
                thread.start()
            except BaseException:
                slots.release()
                raise
            while (item := await queue.get()) is not None:
                yield sse(*item)
            if reason and reason[0] == "shutdown":
                yield sse("error", SHUTDOWN_EVENT)
        finally:
            stop.set()  # the client left or we finished: either way the worker stops
            live_streams.discard(end_on_shutdown)
            forget_link()
            ticket.close()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


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
