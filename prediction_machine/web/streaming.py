"""Server-sent events over a bounded pool of slots, with cancellation on disconnect and shutdown.

A long computation (a generation, a training run) is a plain Python iterator of events. It
runs in a worker thread; each event it yields is sent as one SSE message. When the client
goes away the stream is cancelled, the iterator's `should_stop` turns true, and it ends
within one step. When every slot is busy a request waits in a bounded queue (told its
position); when the queue is full it gets 429 with Retry-After straight away.

Admission is decided once, under a lock, when the request arrives (`Slots.admit`), so 200
requests arriving together can never overfill the queue. In classroom mode each client may
hold one admitted stream at a time (fairness: nobody can take every slot). On SIGTERM
`begin_shutdown()` ends every live stream with a terminal `error` event.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator

from fastapi.responses import StreamingResponse
from starlette.exceptions import HTTPException

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


# ----------------------------------------------------------------------------- shutdown

_shutting_down = threading.Event()
_live: set[Callable[[], None]] = set()  # one callback per live stream: "end now, with a terminal event"


def begin_shutdown() -> None:
    """Refuse new streams (503) and end the live ones with a terminal event. Call on the event loop."""
    _shutting_down.set()
    for end in list(_live):
        end()


def shutting_down() -> bool:
    return _shutting_down.is_set()


def reset_shutdown() -> None:
    """For tests that run several apps in one process."""
    _shutting_down.clear()


# ----------------------------------------------------------------------------- slots


class Ticket:
    """A request's admitted place (running or queued). Closing it twice is harmless."""

    def __init__(self, slots: "Slots", client: str | None):
        self.slots, self.client, self.closed = slots, client, False

    def close(self) -> None:
        with self.slots.lock:
            if self.closed:
                return
            self.closed = True
            self.slots.admitted -= 1
            if self.client is not None:
                left = self.slots.clients.get(self.client, 0) - 1
                if left > 0:
                    self.slots.clients[self.client] = left
                else:
                    self.slots.clients.pop(self.client, None)

    def __del__(self):  # a response that was never iterated (client gone before the body began)
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass


class Slots:
    """At most `running` computations at once and `queued` waiting; the rest are refused."""

    def __init__(self, running: int, queued: int):
        self.running_limit, self.queued_limit = max(1, running), max(0, queued)
        self.lock = threading.Lock()  # admit() runs in worker threads, release() on the event loop
        self.admitted = 0  # requests holding a place, running or waiting
        self.clients: dict[str, int] = {}  # classroom mode: admitted streams per client
        self.running = 0
        self.waiters: list[asyncio.Future] = []

    def _busy(self) -> HTTPException:
        return HTTPException(
            429,
            f"the server is busy: {self.running} running and {len(self.waiters)} queued "
            f"(limits {self.running_limit} and {self.queued_limit}); try again shortly",
            headers={"Retry-After": "2"},
        )

    def check_capacity(self) -> None:
        if shutting_down():
            raise HTTPException(503, "the server is shutting down; try again in a moment", headers={"Retry-After": "5"})
        if self.admitted >= self.running_limit + self.queued_limit:
            raise self._busy()

    def admit(self, client: str | None = None) -> Ticket:
        """Take a place or raise 429 (full, or this client already has one) / 503 (shutting down)."""
        with self.lock:
            self.check_capacity()
            if client is not None and self.clients.get(client):
                raise HTTPException(
                    429,
                    "you already have a generation running or waiting: one at a time per person, "
                    "so everyone in the room gets a turn. Stop it or wait for it to finish.",
                    headers={"Retry-After": "2"},
                )
            self.admitted += 1
            if client is not None:
                self.clients[client] = self.clients.get(client, 0) + 1
        return Ticket(self, client)

    async def acquire(self, on_position: Callable[[int], None] | None = None, holder: list | None = None) -> None:
        """Wait for a running slot. `holder` receives our place-in-line future (to report position)."""
        if self.running < self.running_limit and not self.waiters:
            self.running += 1
            return
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        if holder is not None:
            holder.append(fut)
        try:
            if on_position:
                on_position(len(self.waiters))
            await fut  # resolved by release(), which hands its slot over
        except BaseException:
            if fut in self.waiters:
                self.waiters.remove(fut)  # abandoned while queued: it never runs
            elif fut.done() and not fut.cancelled():
                self.release()  # we were handed a slot at the moment we left: pass it on
            raise

    def release(self) -> None:
        while self.waiters:
            fut = self.waiters.pop(0)
            if not fut.done():
                fut.set_result(None)  # the slot passes straight to the next in line
                return
        self.running -= 1

    def status(self) -> dict:
        return {
            "running": self.running,
            "queued": len(self.waiters),
            "max_running": self.running_limit,
            "max_queued": self.queued_limit,
        }


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
        _live.add(end_on_shutdown)
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
            _live.discard(end_on_shutdown)
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
