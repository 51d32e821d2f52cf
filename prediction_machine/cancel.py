"""Stopping a long computation when nobody is waiting for its answer any more.

Whoever asks for a computation may say when it stops being wanted: `stop_when(should_stop)`
sets that test for the current context (a thread, a task, and the worker threads they hand
their context to). The library's long loops call `check()` between steps (generation.generate
before every forward pass), which raises `Cancelled` once the test is true. The web server uses
it for a client that hung up and for shutdown; the CLI and notebooks set nothing, so for them
`check()` costs one context lookup and never raises.

`Cancelled` is a BaseException, as asyncio's CancelledError is: an `except Exception` meant for
a bad input or a numeric failure never swallows it by accident.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token

_STOP: ContextVar[Callable[[], bool] | None] = ContextVar("pm_should_stop", default=None)


class Cancelled(BaseException):
    """The computation was stopped between two steps: nobody is waiting for its answer."""


def stop_when(should_stop: Callable[[], bool]) -> Token:
    """From now on, in this context, `check()` raises once `should_stop()` is true. Undo with `reset`."""
    return _STOP.set(should_stop)


def reset(token: Token) -> None:
    _STOP.reset(token)


def check() -> None:
    """Raise Cancelled if whoever asked no longer wants the answer; otherwise return at once."""
    should_stop = _STOP.get()
    if should_stop is not None and should_stop():
        raise Cancelled("stopped between two steps: nobody is waiting for the answer")
