"""Dialplan processes as generators, driven by the injected clock.

A process is a generator that yields what it waits for: a number (seconds on
the clock), a :class:`Waiter` (woken by another party, optionally with a
timeout) or an awaitable (e.g. the FastAGI client).  Everything else runs
synchronously inside clock callbacks, so with ``twisted.internet.task.Clock``
one ``advance()`` produces every event due by then, in a deterministic order.
A channel hang-up is delivered by throwing :class:`ChannelHangup` into the
generator, which lets the dialplan code emit its clean-up events (queue
abandon, ``DialEnd CANCEL`` …) exactly where Asterisk does.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any, Callable, Generator

log = logging.getLogger(__name__)


class ChannelHangup(Exception):
    def __init__(self, cause: int = 16, by: str = "hangup"):
        super().__init__(cause, by)
        self.cause = cause
        self.by = by  # "hangup" (far end / person), "ami" (Hangup action), "redirect"


class Timers:
    """callLater wrapper that remembers pending calls so ``cancel_all`` leaves none behind,
    and the tasks the dialplan started (FastAGI sessions) so ``aclose`` can end them."""

    def __init__(self, clock: Any):
        self.clock = clock
        self._pending: set = set()
        self._tasks: set = set()

    def spawn(self, awaitable: Any) -> "asyncio.Future":
        """Run ``awaitable`` as a task owned by the PBX (cancelled by ``cancel_all``)."""
        fut = asyncio.ensure_future(awaitable)
        if not fut.done():
            self._tasks.add(fut)
            fut.add_done_callback(self._tasks.discard)
        return fut

    def call_later(self, delay: float, fn: Callable, *a: Any) -> Any:
        holder: list = []

        def fire() -> None:
            self._pending.discard(holder[0])
            fn(*a)

        dc = self.clock.callLater(max(0.0, delay), fire)
        holder.append(dc)
        self._pending.add(dc)
        return dc

    def cancel(self, dc: Any) -> None:
        if dc is not None and dc in self._pending:
            self._pending.discard(dc)
            try:
                dc.cancel()
            except Exception:  # already called/cancelled
                pass

    def cancel_all(self) -> None:
        for fut in list(self._tasks):
            fut.cancel()
        for dc in list(self._pending):
            self.cancel(dc)

    async def aclose(self) -> None:
        """Cancel every task and timer and wait until the tasks have finished (their clean-up
        cancels the timers they made on the clock themselves); repeat while clean-up code
        started more."""
        for _ in range(10):
            tasks = list(self._tasks)
            self.cancel_all()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            if not self._tasks and not self._pending:
                return
        self.cancel_all()


class Waiter:
    """Something a process waits on; ``fire(value)`` resumes it (once)."""

    def __init__(self, timeout: float | None = None, timeout_value: Any = "timeout"):
        self.timeout = timeout
        self.timeout_value = timeout_value
        self._proc: "Proc | None" = None
        self._early: tuple | None = None
        self.done = False

    def fire(self, value: Any = None, sync: bool = False) -> None:
        """Resume the waiting process with ``value``: at once (``sync``, for event order) or
        from a zero-delay timer."""
        if self.done:
            return
        if self._proc is None:
            self._early = (value,)
            return
        self.done = True
        proc = self._proc
        if sync and not proc.gen.gi_running:
            proc._wake(self, value)
        else:
            proc.timers.call_later(0, proc._wake, self, value)


class Proc:
    def __init__(self, timers: Timers, gen: Generator, name: str = "", on_exit: Callable | None = None):
        self.timers = timers
        self.gen = gen
        self.name = name
        self.on_exit = on_exit
        self.finished = False
        self._timer = None
        self._waiter: Waiter | None = None
        self._future = None

    def start(self) -> "Proc":
        self._step(None, None)
        return self

    def throw(self, exc: BaseException) -> None:
        """Deliver an exception (hang-up) now, whatever the process waits for."""
        if self.finished:
            return
        self._clear()
        self._step(None, exc)

    def _clear(self) -> None:
        self.timers.cancel(self._timer)
        self._timer = None
        if self._waiter is not None:
            self._waiter._proc = None
            self._waiter.done = True
            self._waiter = None
        # a running awaitable (the FastAGI session) is left to finish on its own: it has been
        # told about the hang-up through the channel and must still talk to the AGI server
        self._future = None

    def _wake(self, waiter: Waiter, value: Any) -> None:
        if waiter is not self._waiter or self.finished:
            return
        self._waiter = None
        waiter._proc = None
        self.timers.cancel(self._timer)
        self._timer = None
        self._step(value, None)

    def _step(self, value: Any, exc: BaseException | None) -> None:
        try:
            if exc is not None:
                y = self.gen.throw(exc)
            else:
                y = self.gen.send(value)
        except StopIteration:
            self._finish()
            return
        except ChannelHangup:
            self._finish()
            return
        except Exception:
            log.exception("simulated dialplan process %s failed", self.name)
            self._finish()
            return
        self._wait_on(y)

    def _finish(self) -> None:
        self.finished = True
        if self.on_exit:
            cb, self.on_exit = self.on_exit, None
            cb()

    def _wait_on(self, y: Any) -> None:
        if isinstance(y, (int, float)):
            self._timer = self.timers.call_later(float(y), self._timer_fired)
        elif isinstance(y, Waiter):
            self._waiter = y
            y._proc = self
            if y._early is not None:
                (value,) = y._early
                y._early = None
                y.done = True
                self._waiter = None
                self._timer = self.timers.call_later(0, self._step, value, None)
                return
            if y.timeout is not None:
                self._timer = self.timers.call_later(y.timeout, self._waiter_timeout, y)
        elif inspect.isawaitable(y):
            fut = self.timers.spawn(y)
            self._future = fut
            fut.add_done_callback(self._future_done)
        else:
            raise TypeError(f"process {self.name} yielded {y!r}")

    def _timer_fired(self) -> None:
        self._timer = None
        self._step(None, None)

    def _waiter_timeout(self, waiter: Waiter) -> None:
        self._timer = None
        if waiter is self._waiter:
            self._waiter = None
            waiter._proc = None
            waiter.done = True
            self._step(waiter.timeout_value, None)

    def _future_done(self, fut) -> None:
        if fut is not self._future:
            return
        self._future = None
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            log.warning("awaitable in %s failed: %r", self.name, exc)
            self._step(None, None) if not isinstance(exc, ChannelHangup) else self._step(None, exc)
            return
        self._step(fut.result(), None)
