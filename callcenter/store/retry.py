"""Retrying a database write while the database is unreachable.

A PostgreSQL failover, a restart or a locked SQLite file looks the same to code on
the event loop: ``db.run`` raises ``OperationalError``/``InterfaceError`` for a while
and then works again.  Facts that must not be lost (queue calls, dial outcomes, IVR
sessions and what callers asked for) are kept and written again with a capped
exponential backoff instead of being logged and dropped.  Each caller awaits its own
writes one after the other, so retrying keeps them in order.

The backoff waits on the injected clock (``clock.callLater``), so tests decide how
long an outage lasts.
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError

from callcenter.clock import sleep

T = TypeVar("T")

#: what "the database is unavailable for now" raises (everything else is a bug or bad data)
TRANSIENT: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT)


async def retrying(db: Any, fn: Callable[..., T], *args: Any, clock: Any,
                   base_delay: float = 0.1, max_delay: float = 5.0,
                   retry_on: tuple[type[BaseException], ...] | type[BaseException] = TRANSIENT,
                   give_up: Callable[[], bool] | None = None,
                   on_failure: Callable[[BaseException, float], Any] | None = None) -> T:
    """``await db.run(fn, *args)`` until it succeeds.

    An exception in ``retry_on`` is retried after ``base_delay``, doubling up to
    ``max_delay``; ``on_failure(exc, delay)`` is told first (count, log).  Any other
    exception propagates at once, and so does a retried one when ``give_up()`` says so
    (shutting down).  ``fn`` may run more than once: a write whose commit was in doubt
    must be idempotent, or check whether it already happened.
    """
    delay = base_delay
    while True:
        try:
            return await db.run(fn, *args)
        except retry_on as exc:
            if give_up is not None and give_up():
                raise
            if on_failure is not None:
                on_failure(exc, delay)
            await sleep(clock, delay)
            delay = min(max_delay, delay * 2)
