"""Injected time.

Domain code never reads the wall clock: it takes an ``IReactorTime``-shaped
object (``seconds()``, ``callLater()``).  In production that is the reactor;
in unit tests ``twisted.internet.task.Clock``; for the time-scaled simulator
and soak runs a :class:`ScaledClock`, which runs N simulated seconds per real
second on the real event loop, so an 8-hour hospital day takes minutes or
seconds while real TCP traffic still flows.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any, Callable, Protocol
from zoneinfo import ZoneInfo


class IClock(Protocol):
    def seconds(self) -> float: ...

    def callLater(self, delay: float, fn: Callable[..., Any], *a: Any, **kw: Any) -> Any: ...


async def sleep(clock: IClock, seconds: float) -> None:
    """``asyncio.sleep`` on the injected clock: cancellable, and it leaves no pending
    ``DelayedCall`` behind (a cancelled wait cancels its timer)."""
    fut = asyncio.get_running_loop().create_future()
    call = clock.callLater(max(0.0, seconds), lambda: fut.done() or fut.set_result(None))
    try:
        await fut
    finally:
        if call.active():
            call.cancel()


class ScaledClock:
    """Simulated time = ``start + scale * (real elapsed)``; timers fire scaled.

    ``reactor`` is anything with ``seconds()`` and ``callLater`` measured in real
    seconds (the running reactor).  ``start`` is the simulated epoch at creation.
    """

    def __init__(self, reactor: Any, scale: float = 1.0, start: float | None = None):
        if scale <= 0:
            raise ValueError("scale must be > 0")
        self._reactor = reactor
        self.scale = float(scale)
        self._real0 = reactor.seconds()
        self._sim0 = self._real0 if start is None else float(start)

    def seconds(self) -> float:
        return self._sim0 + (self._reactor.seconds() - self._real0) * self.scale

    def callLater(self, delay: float, fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
        return self._reactor.callLater(max(0.0, delay) / self.scale, fn, *a, **kw)

    def getDelayedCalls(self) -> list:
        return []


def rate(clock: IClock) -> float:
    """Clock seconds per real second: a browser counting timers between pushes needs it
    (the demo's simulated day runs ``--scale`` times faster)."""
    return clock.scale if isinstance(clock, ScaledClock) else 1.0


class WallClock:
    """``IClock`` on the real time, for code that runs without a reactor (CLI)."""

    def seconds(self) -> float:
        return time.time()

    def callLater(self, delay, fn, *a, **kw):  # pragma: no cover - CLI never schedules
        raise RuntimeError("WallClock cannot schedule; use the reactor")


def local_datetime(clock: IClock, tz: str | ZoneInfo) -> dt.datetime:
    """The clock's now, as an aware datetime in the hospital's timezone."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    return dt.datetime.fromtimestamp(clock.seconds(), tz=zone)


def utc_datetime(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc)
