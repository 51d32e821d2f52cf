"""Generations first: heavy work steps aside while a student's generation decodes.

A generation is watched token by token; a heavy answer (a safety table, a trace, a comparison:
web/admission.HEAVY_ROUTES) is waited for as a whole. On a CPU both want every core, and two
computations at once slow each other down. So:

- the batcher says, every turn of its loop, whether it has generations to decode (`Gate.generating`);
- heavy work, at each of its checkpoints (cancel.check(): between two layers, or two generated
  tokens), asks its `Turn` whether to step aside, and waits while generations decode.

It waits in proportion to how long it has just run, so it is slowed, never stopped: with a share
of 0.2, a heavy computation that ran 3 ms since its last checkpoint waits 12 ms (or less, if the
generations end first). While generations keep coming, heavy work gets at most a fifth of the
time; when none runs it goes at full speed. A wait is never longer than MAX_WAIT_S, and a caller
that stops wanting the answer (a client gone, a shutdown) ends it within POLL_S.

    gate = Gate(share=0.2)
    gate.pause_for(0.003)            # -> 0.0: no generation decodes, no wait
    gate.generating("batcher", True)
    gate.pause_for(0.003)            # -> 0.012: four times as long as it ran
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

HEAVY_SHARE = 0.2  # the most of the time heavy work takes while generations decode (a server's heavy_share)
MAX_WAIT_S = 1.0  # the longest one wait, so a long layer (a big prompt) is not held back for long
POLL_S = 0.05  # how often a waiting heavy computation rechecks whether it is still wanted


class Gate:
    """Which batchers have generations to decode right now, and how long heavy work waits for them."""

    def __init__(self, share: float = HEAVY_SHARE, max_wait_s: float = MAX_WAIT_S):
        self.share, self.max_wait_s = share, max_wait_s
        self._busy: set[int] = set()  # id() of each batcher with rows to decode or prompts to read
        self._changed = threading.Condition()
        self.waits = 0  # how many times heavy work stepped aside (for tests and benchmarks)

    def generating(self, who: object, busy: bool) -> None:
        """`who` (a batcher) has generations to decode (busy) or none; wakes heavy work when the last ends."""
        with self._changed:
            if busy:
                self._busy.add(id(who))
            else:
                self._busy.discard(id(who))
                if not self._busy:
                    self._changed.notify_all()

    def busy(self) -> bool:
        return bool(self._busy)

    def pause_for(self, ran_s: float) -> float:
        """Seconds heavy work waits after running `ran_s` seconds: 0 when no generation decodes."""
        if not self._busy:
            return 0.0
        return min(self.max_wait_s, ran_s * (1 - self.share) / self.share)

    def step_aside(self, ran_s: float, should_stop: Callable[[], bool]) -> float:
        """Wait pause_for(ran_s) seconds, less if the generations end or `should_stop()` turns true.
        Returns the seconds waited."""
        wait = self.pause_for(ran_s)
        if wait <= 0:
            return 0.0
        t0 = time.monotonic()
        with self._changed:
            self.waits += 1
            while self._busy and not should_stop():
                left = wait - (time.monotonic() - t0)
                if left <= 0:
                    break
                self._changed.wait(min(left, POLL_S))
        return time.monotonic() - t0


GATE = Gate()  # the process's one gate: every batcher reports to it, every heavy answer asks it


class Turn:
    """One heavy computation's side of the gate: `should_stop` is its cancel.stop_when test.

    At every checkpoint it first steps aside in proportion to the time it ran since the last one,
    then answers whether its caller still wants it. On an event loop's own thread it never
    waits (that would hold up every stream), it only answers.
    """

    def __init__(self, wanted_no_more: Callable[[], bool], gate: Gate | None = None):
        self.wanted_no_more, self.gate = wanted_no_more, gate or GATE
        self.resumed: float | None = None  # when it last started running (None: not yet at a checkpoint)

    def should_stop(self) -> bool:
        if not _on_event_loop():
            ran = 0.0 if self.resumed is None else time.monotonic() - self.resumed
            self.gate.step_aside(ran, self.wanted_no_more)
            self.resumed = time.monotonic()
        return self.wanted_no_more()


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
