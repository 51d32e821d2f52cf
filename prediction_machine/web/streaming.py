"""Server-sent events over a bounded pool of slots, with cancellation on disconnect.

A long computation (a generation, a training run) is a plain Python iterator of events. It
runs in a worker thread; each event it yields is sent as one SSE message. When the client
goes away the stream is cancelled, the iterator's `should_stop` turns true, and it ends
within one step. When every slot is busy a request waits in a bounded queue (told its
position); when the queue is full it gets 429 with Retry-After straight away.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import AsyncIterator, Callable, Iterator

from fastapi.responses import StreamingResponse
from starlette.exceptions import HTTPException


def sse(event: str, data: dict) -> str:
    """One server-sent event. JSON with allow_nan=False: NaN or Infinity would be a bug, loudly."""
    return f"event: {event}\ndata: {json.dumps(data, allow_nan=False, ensure_ascii=False)}\n\n"


def finite(x: float, ndigits: int = 6) -> float:
    """A float fit for JSON: rounded, and never NaN or Infinity."""
    if not math.isfinite(x):
        return 0.0 if math.isnan(x) else math.copysign(3.4e38, x)
    return round(x, ndigits)


class Slots:
    """At most `running` computations at once and `queued` waiting; the rest are refused."""

    def __init__(self, running: int, queued: int):
        self.running_limit, self.queued_limit = running, queued
        self.running = 0
        self.waiters: list[asyncio.Future] = []

    def check_capacity(self) -> None:
        if self.running >= self.running_limit and len(self.waiters) >= self.queued_limit:
            raise HTTPException(
                429,
                f"the server is busy: {self.running} running and {len(self.waiters)} queued "
                f"(limits {self.running_limit} and {self.queued_limit}); try again shortly",
                headers={"Retry-After": "2"},
            )

    async def acquire(self, on_position: Callable[[int], None] | None = None) -> None:
        if self.running < self.running_limit and not self.waiters:
            self.running += 1
            return
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
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
        return {"running": self.running, "queued": len(self.waiters), "max_running": self.running_limit, "max_queued": self.queued_limit}


def stream(
    slots: Slots,
    work: Callable[[Callable[[], bool]], Iterator[tuple[str, dict]]],
    on_error: Callable[[Exception], dict] | None = None,
) -> StreamingResponse:
    """An SSE response that runs `work(should_stop)` in a thread once a slot is free.

    `work` yields (event_name, data) pairs. The response always ends with a terminal event:
    whatever `work` sent last ("done"), or "error" if it raised.
    """
    slots.check_capacity()

    async def events() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()
        positions: list[int] = []
        await_slot = asyncio.ensure_future(slots.acquire(positions.append))
        try:
            while not await_slot.done():
                if positions:
                    yield sse("queued", {"position": positions.pop()})
                await asyncio.wait([await_slot], timeout=0.5)
            await_slot.result()
        except BaseException:
            await_slot.cancel()
            raise

        def run() -> None:
            try:
                for item in work(stop.is_set):
                    loop.call_soon_threadsafe(queue.put_nowait, item)
                    if stop.is_set():
                        break
            except Exception as e:  # noqa: BLE001 - reported to the client as an event
                payload = on_error(e) if on_error else {"error": f"{type(e).__name__}: {e}"}
                loop.call_soon_threadsafe(queue.put_nowait, ("error", payload))
            finally:
                # The slot belongs to the computation: it is free once the work has really stopped.
                loop.call_soon_threadsafe(slots.release)
                loop.call_soon_threadsafe(queue.put_nowait, None)

        thread = threading.Thread(target=run, name="pm-stream", daemon=True)
        try:
            thread.start()
        except BaseException:
            slots.release()
            raise
        try:
            while (item := await queue.get()) is not None:
                yield sse(*item)
        finally:
            stop.set()  # the client left or we finished: either way the worker stops

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
