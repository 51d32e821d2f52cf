"""Who is let in: a bounded pool of places for long computations, and the shutdown switch.

Admission is decided once, under a lock, when the request arrives (`Slots.admit`), so 200
requests arriving together can never overfill the queue. In classroom mode each client may
hold one admitted stream at a time, and each IP address at most `per_ip` (fairness: nobody
can take every slot, not even by minting new client ids). The key is "<client>@<address>".

Three pools use it: generations (app.state.slots), playground streams, and heavy answers
(HEAVY_ROUTES, every route that costs more than one forward pass: `heavy_place` holds one
while the answer is computed; a page may ask for two at once, so only the address's share
bounds them). In classroom mode heavy requests also pass a rate per address (`Rate`, a token
bucket): places bound how many run at once, the rate bounds how often an address may start one,
so a flood of requests abandoned at once cannot keep the places churning. On SIGTERM
`begin_shutdown()` refuses new streams and ends every live one and every wait for a heavy place
(both register in `live_streams`).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable

from starlette.exceptions import HTTPException

# ----------------------------------------------------------------------------- shutdown

_shutting_down = threading.Event()
# One callback per live stream: "end now, with a terminal event".
live_streams: set[Callable[[], None]] = set()


def begin_shutdown() -> None:
    """Refuse new streams (503) and end the live ones with a terminal event. Call on the event loop."""
    _shutting_down.set()
    for end in list(live_streams):
        end()


def shutting_down() -> bool:
    return _shutting_down.is_set()


def reset_shutdown() -> None:
    """For tests that run several apps in one process."""
    _shutting_down.clear()


# ----------------------------------------------------------------------------- slots

# Answers that cost more than one forward pass take a heavy place (app.state.heavy_slots) while
# they are computed, and stop when their client hangs up or the server shuts down (cancel.py).
HEAVY_ROUTES = {
    ("POST", "/api/trace"),
    ("POST", "/api/attention"),
    ("POST", "/api/curriculum/compare"),
    ("POST", "/api/curriculum/align/sample"),
    ("POST", "/api/curriculum/align/compare"),
    ("POST", "/api/curriculum/align/safety"),
    ("POST", "/api/sequences/digits/draw"),
    ("POST", "/api/sequences/melody/compose"),
    ("POST", "/api/sequences/compare"),
    ("POST", "/api/experiments/branch"),
    ("POST", "/api/experiments/lens"),
    ("POST", "/api/experiments/steer"),
    ("POST", "/api/experiments/steer/safety"),
    ("POST", "/api/experiments/ablate"),
    ("POST", "/api/experiments/attribute"),
    ("POST", "/api/experiments/patch"),
    ("POST", "/api/makes-up/calibration"),
    ("POST", "/api/makes-up/answer"),
    ("POST", "/api/makes-up/samples"),
    ("POST", "/api/makes-up/dont-know"),
    ("POST", "/api/curriculum/inside"),
    ("POST", "/api/curriculum/diff-models"),
    ("POST", "/api/curriculum/source"),
}
SHUTTING_DOWN = (503, "the server is shutting down; try again in a moment",
                 [(b"retry-after", b"5"), (b"connection", b"close")])


def _ip(client: str) -> str:
    """'c:abc@10.0.0.9' -> '10.0.0.9' (the key without an address is its own address)."""
    return client.rpartition("@")[2]


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
                for table, key in ((self.slots.clients, self.client), (self.slots.ips, _ip(self.client))):
                    left = table.get(key, 0) - 1
                    if left > 0:
                        table[key] = left
                    else:
                        table.pop(key, None)

    def __del__(self):  # a response that was never iterated (client gone before the body began)
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass


class Slots:
    """At most `running` computations at once and `queued` waiting; the rest are refused."""

    def __init__(self, running: int, queued: int, per_ip: int | None = None, what: str = "generation",
                 one_per_client: bool = True):
        self.running_limit, self.queued_limit = max(1, running), max(0, queued)
        # A generation is one stream a person watches; heavy answers may come several at once from one
        # page (two figures loading), so they wait in line instead, bounded by the address's share.
        self.one_per_client = one_per_client
        self.what = what  # named in the refusals: "a generation", "a heavy request"
        self.per_ip = per_ip  # classroom mode: places one address may hold (None: no limit)
        self.lock = threading.Lock()  # admit() runs in worker threads, release() on the event loop
        self.admitted = 0  # requests holding a place, running or waiting
        self.clients: dict[str, int] = {}  # classroom mode: admitted streams per client
        self.ips: dict[str, int] = {}  # ... and per address
        self.running = 0
        self.waiters: list[asyncio.Future] = []

    def _busy(self) -> HTTPException:
        return HTTPException(
            429,
            f"the server is busy: {self.running} running and {len(self.waiters)} queued "
            f"(limits {self.running_limit} and {self.queued_limit}); try again shortly",
            headers={"Retry-After": "2"},
        )

    def ip_full(self, client: str) -> bool:
        return self.per_ip is not None and self.ips.get(_ip(client), 0) >= self.per_ip

    def ip_message(self) -> str:
        return (f"your network address already holds {self.per_ip} of the {self.what} places (the limit per "
                "address, so one machine cannot fill the queue); try again when one finishes")

    def check_capacity(self) -> None:
        if shutting_down():
            raise HTTPException(503, "the server is shutting down; try again in a moment",
                                headers={"Retry-After": "5"})
        if self.admitted >= self.running_limit + self.queued_limit:
            raise self._busy()

    def admit(self, client: str | None = None) -> Ticket:
        """Take a place or raise 429 (full, or this client already has one) / 503 (shutting down)."""
        with self.lock:
            self.check_capacity()
            if self.one_per_client and client is not None and self.clients.get(client):
                raise HTTPException(
                    429,
                    f"you already have a {self.what} running or waiting: one at a time per person, "
                    "so everyone in the room gets a turn. Stop it or wait for it to finish.",
                    headers={"Retry-After": "2"},
                )
            if client is not None and self.ip_full(client):
                raise HTTPException(429, self.ip_message(), headers={"Retry-After": "2"})
            self.admitted += 1
            if client is not None:
                self.clients[client] = self.clients.get(client, 0) + 1
                self.ips[_ip(client)] = self.ips.get(_ip(client), 0) + 1
        return Ticket(self, client)

    async def acquire(self, on_position: Callable[[int], None] | None = None,
                      holder: list | None = None) -> None:
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

    def give_up(self, await_slot: asyncio.Future) -> None:
        """Leave the line an `acquire()` future stands in, or hand on the slot it was given meanwhile."""
        if not await_slot.done():
            await_slot.cancel()  # acquire() removes its waiter (or passes a just-handed slot on)
        elif not await_slot.cancelled() and await_slot.exception() is None:
            self.release()

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


class Rate:
    """A token bucket per address: `burst` requests at once, then `per_minute` a minute.

    An address's bucket holds up to `burst` tokens and refills at per_minute / 60 tokens a second;
    each request takes one. An empty bucket answers 429 with the seconds until its next token.
    """

    def __init__(self, per_minute: float, burst: int, what: str = "heavy request"):
        self.per_second, self.burst, self.what = per_minute / 60, max(1, burst), what
        self.per_minute = per_minute
        self.lock = threading.Lock()
        self.buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, when counted)

    def _forget_full(self, now: float) -> None:
        """Addresses whose bucket has refilled are forgotten: the table stays as small as the busy set."""
        self.buckets = {k: (n, t) for k, (n, t) in self.buckets.items()
                        if n + (now - t) * self.per_second < self.burst}

    def take(self, address: str, now: float | None = None) -> None:
        """Take one token for `address`, or raise 429 naming the limit, with Retry-After."""
        now = time.monotonic() if now is None else now
        with self.lock:
            if len(self.buckets) > 4096:
                self._forget_full(now)
            tokens, then = self.buckets.get(address, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.per_second)
            if tokens < 1:
                self.buckets[address] = (tokens, now)
                wait = math.ceil((1 - tokens) / self.per_second) if self.per_second > 0 else 60
                raise HTTPException(
                    429,
                    f"your network address has started too many {self.what}s: the limit per address is "
                    f"{self.per_minute:g} a minute, {self.burst} at once; try again in {wait} s",
                    headers={"Retry-After": str(wait)},
                )
            self.buckets[address] = (tokens - 1, now)


# ----------------------------------------------------------------------------- at the door


def quick_refusal(app, client: str | None, at_door: int) -> tuple[int, str] | None:
    """Refuse a queued route at the door when it is sure to be refused later anyway.

    Under a burst this keeps refusals instant: no body parsing, no tokenizing, no wait for a
    worker thread. admission.Slots.admit() still makes the binding decision afterwards.
    """
    slots = getattr(getattr(app, "state", None), "slots", None)
    if slots is None:
        return None
    if max(slots.admitted, at_door) >= slots.running_limit + slots.queued_limit:
        return 429, (f"the server is busy: {slots.running} running and {len(slots.waiters)} queued "
                     f"(limits {slots.running_limit} and {slots.queued_limit}); try again shortly")
    if client is not None and slots.clients.get(client):
        return 429, "you already have a generation running or waiting: one at a time per person"
    if client is not None and slots.ip_full(client):
        return 429, slots.ip_message()
    return None


async def heavy_place(slots: Slots, link, rate: Rate | None = None) -> tuple[Ticket | None, tuple | None]:
    """A heavy place for this request: (ticket, None) once one is ours, else (None, the refusal to send)
    or (None, None) when the client left while waiting in line. `rate` (classroom mode) is checked first."""
    try:
        if rate is not None and link.client is not None:
            rate.take(_ip(link.client))  # 429: this address starts heavy requests too often
        ticket = slots.admit(link.client)  # 429: full, or this client (or address) already holds its share
    except HTTPException as e:
        retry = (e.headers or {}).get("Retry-After", "2").encode()
        return None, (e.status_code, e.detail, [(b"retry-after", retry)])
    stopped = asyncio.Event()
    forget = link.on_gone(stopped.set)
    live_streams.add(stopped.set)  # a shutdown ends the wait too
    await_slot = asyncio.ensure_future(slots.acquire())
    wake = asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait([await_slot, wake], return_when=asyncio.FIRST_COMPLETED)
        if await_slot.done() and not await_slot.cancelled() and not stopped.is_set():
            return ticket, None
    except BaseException:
        slots.give_up(await_slot)
        ticket.close()
        raise
    finally:
        wake.cancel()
        forget()
        live_streams.discard(stopped.set)
    slots.give_up(await_slot)
    ticket.close()
    return None, (SHUTTING_DOWN if shutting_down() else None)
