"""The IVR's database writes: kept in order per session, retried through an outage.

Each session has a *lane*: its row insert, the callback request, voice message and
survey answers it produced, and the row's completion, written one after the other
(the later ones need the row's id).  A write that meets an unavailable database is
retried (:func:`callcenter.store.retry.retrying`) until the database is back; lanes
of different sessions run side by side, and their writes that are due together are
committed in one transaction (:class:`callcenter.store.group_commit.GroupCommit`: a
burst of callers costs a few transactions, not one per caller).

The caller never waits on an outage: :meth:`SessionWrites.wait` returns the write's
result while the database answers, and a default at once when it does not (the
write stays queued), so the flow carries on.  At shutdown :meth:`SessionWrites.close`
tries once more what is queued, in order, and logs (masked) what it could not store.
"""
from __future__ import annotations

import asyncio
import collections
import functools
import logging
from typing import Any, Callable

from sqlalchemy.exc import IntegrityError

from callcenter.store.group_commit import GroupCommit
from callcenter.store.retry import TRANSIENT, retrying, sleep

log = logging.getLogger(__name__)
MAX_CONFLICTS = 2  # IntegrityError retries of one write (a race with another session's write)


class _Write:
    __slots__ = ("fn", "what", "future", "waiting")

    def __init__(self, fn: Callable, what: object, future: asyncio.Future):
        self.fn, self.what, self.future, self.waiting = fn, what, future, False


class Lane:
    """One session's writes, in order (``fn(session)`` each, in one transaction)."""

    def __init__(self, owner: "SessionWrites"):
        self.owner = owner
        self.items: collections.deque[_Write] = collections.deque()
        self.task: asyncio.Task | None = None
        self.inflight: asyncio.Future | None = None

    def submit(self, fn: Callable, what: object) -> _Write:
        """Queue ``fn(session)``; ``str(what)`` (masked) names it in the log, formatted only
        then.  Await the result with :meth:`SessionWrites.wait`."""
        fut = asyncio.get_running_loop().create_future()
        w = _Write(fn, what, fut)
        self.items.append(w)
        self.owner.pending += 1
        self.owner.peak_pending = max(self.owner.peak_pending, self.owner.pending)
        self.owner.lanes.add(self)
        if not self.owner.closing and (self.task is None or self.task.done()):
            self.task = asyncio.ensure_future(self._drain())
        return w

    async def run(self, fn: Callable) -> Any:
        """``retrying`` calls this as its database: the write itself is shielded, so a
        shutdown that cancels the lane can still learn whether it committed."""
        self.inflight = self.owner.group.run(fn)
        return await asyncio.shield(self.inflight)

    async def _drain(self) -> None:
        own = self.owner
        conflicts = 0
        while self.items:
            w = self.items[0]
            try:
                result = await retrying(self, w.fn, clock=own.clock, base_delay=own.base_delay,
                                        max_delay=own.max_delay, give_up=lambda: own.closing,
                                        on_failure=lambda exc, delay, w=w: own._failed(exc, delay, w))
            except TRANSIENT:
                return  # shutting down: close() tries the rest once more
            except IntegrityError as exc:
                # Lanes flushing together after an outage can race on a get-or-create
                # (e.g. the dialer's "callback" campaign): the loser sees the winner's row
                # when it tries again.  A real constraint violation fails again: reported.
                if conflicts < MAX_CONFLICTS:
                    conflicts += 1
                    await sleep(own.clock, own.base_delay)
                    continue
                conflicts = 0
                self.done(w, exc=exc)
            except Exception as exc:  # noqa: BLE001 - bad data or a bug: report, go on with the next
                conflicts = 0
                self.done(w, exc=exc)
            else:
                conflicts = 0
                own._up()
                self.done(w, result)
        own.lanes.discard(self)

    def done(self, w: _Write, result: Any = None, exc: BaseException | None = None) -> None:
        self.items.popleft()
        self.inflight = None
        w.fn = None  # never run again; a hook's bound method would keep its session in a reference cycle
        self.owner.pending -= 1
        if exc is None:
            self.owner.written += 1
            if not w.future.done():
                w.future.set_result(result)
            return
        if not w.waiting:  # nobody will see it: say it here
            if isinstance(exc, LookupError):
                log.warning("IVR: %s refused: %s", w.what, exc)
            else:
                log.error("IVR: %s failed", w.what, exc_info=exc)
        if not w.future.done():
            w.future.set_exception(exc)
            _retrieved(w.future)  # reported where it matters; a waiter still gets it


def _open(gate: asyncio.Future, _: asyncio.Future | None = None) -> None:
    if not gate.done():
        gate.set_result(None)


def _retrieved(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()  # reported where it matters; never "exception was never retrieved"


class SessionWrites:
    """All IVR sessions' lanes; ``down`` while the last write met an unavailable database."""

    def __init__(self, db: Any, clock: Any = None, *, base_delay: float = 0.1, max_delay: float = 5.0):
        self.db, self.clock = db, clock
        self.group = GroupCommit(db)
        self.base_delay, self.max_delay = base_delay, max_delay
        self.lanes: set[Lane] = set()
        self.down = False
        self.closing = False
        self.pending = 0
        self.written = 0
        self.failures = 0
        self.peak_pending = 0
        self._down_waiters: set[asyncio.Future] = set()

    def lane(self) -> Lane:
        return Lane(self)

    def _failed(self, exc: BaseException, delay: float, w: _Write) -> None:
        self.failures += 1
        self.peak_pending = max(self.peak_pending, self.pending)
        if not self.down:
            log.warning("IVR: database unavailable (%s); writes kept in order, retrying",
                        exc.__class__.__name__)
        self.down = True
        waiters, self._down_waiters = self._down_waiters, set()
        for f in waiters:
            _open(f)

    def _up(self) -> None:
        if self.down:
            log.info("IVR: database back; %d write(s) still queued", self.pending - 1)
        self.down = False

    async def wait(self, w: _Write, default: Any = None) -> Any:
        """The write's result (its exception raised here), or ``default`` as soon as the
        database is known to be unavailable: the write stays queued and is reported in
        the log if it fails later."""
        fut = w.future
        while not fut.done():
            if self.down or self.closing:
                w.waiting = False
                return default
            w.waiting = True
            # One future, opened by whichever comes first: the write done or the database
            # down (asyncio.wait({fut, down}) did the same with a set and two more callbacks).
            gate = asyncio.get_running_loop().create_future()
            wake = functools.partial(_open, gate)
            fut.add_done_callback(wake)
            self._down_waiters.add(gate)
            try:
                await gate
            except asyncio.CancelledError:
                w.waiting = False
                raise
            finally:
                fut.remove_done_callback(wake)
                self._down_waiters.discard(gate)
        return fut.result()

    async def drained(self) -> None:
        """Until every queued write is stored or given up (tests; uses the event loop only)."""
        while self.pending:
            await asyncio.sleep(0.005)

    async def close(self, timeout: float = 10.0) -> list[str]:
        """Stop retrying; try what is queued once more, in order, within ``timeout`` real
        seconds; log and return (masked descriptions) what could not be stored."""
        self.closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        tasks = [lane.task for lane in self.lanes if lane.task is not None and not lane.task.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        lost: list[str] = []
        for lane in list(self.lanes):
            while lane.items:
                w = lane.items[0]
                left = deadline - loop.time()
                try:
                    if lane.inflight is None or (lane.inflight.done() and (
                            lane.inflight.cancelled() or lane.inflight.exception() is not None)):
                        lane.inflight = asyncio.ensure_future(self.db.run(w.fn))
                    if left <= 0:
                        raise asyncio.TimeoutError
                    result = await asyncio.wait_for(asyncio.shield(lane.inflight), left)
                except (asyncio.TimeoutError, *TRANSIENT):
                    break
                except Exception as exc:  # noqa: BLE001
                    lane.done(w, exc=exc)
                else:
                    lane.done(w, result)
            for w in lane.items:
                lost.append(str(w.what))
                if not w.future.done():
                    w.future.cancel()
            self.pending -= len(lane.items)
            lane.items.clear()
            if lane.inflight is not None and not lane.inflight.done():
                lane.inflight.add_done_callback(_retrieved)
        self.lanes.clear()
        if lost:
            log.error("IVR: %d database write(s) not stored at shutdown: %s", len(lost), "; ".join(lost))
        return lost
