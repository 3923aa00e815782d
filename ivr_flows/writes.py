"""The IVR's database writes: kept in order per session, retried through an outage.

Each session has a *lane*: its row insert, the callback request, voice message and
survey answers it produced, and the row's completion, written one after the other
(the later ones need the row's id).  A write that meets an unavailable database is
retried with a capped exponential backoff (as :func:`callcenter.store.retry.retrying`)
until the database is back; lanes of different sessions run side by side, and their
writes that are due together are committed in one transaction
(:class:`callcenter.store.group_commit.GroupCommit`: a burst of callers costs a few
transactions, not one per caller).

The caller never waits on an outage: :meth:`SessionWrites.wait` returns the write's
result while the database answers, and a default at once when it does not (the
write stays queued), so the flow carries on.  At shutdown :meth:`SessionWrites.close`
tries once more what is queued, in order, and logs (masked) what it could not store.
"""
from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any, Callable

from sqlalchemy.exc import IntegrityError

from callcenter.store.group_commit import GroupCommit
from callcenter.store.retry import TRANSIENT

log = logging.getLogger(__name__)
MAX_CONFLICTS = 2  # IntegrityError retries of one write (a race with another session's write)


class _Write:
    """One queued write and, once done, its outcome (``exc`` None: ``result``)."""

    __slots__ = ("fn", "what", "connection", "finished", "result", "exc", "waiting", "gates")

    def __init__(self, fn: Callable, what: object, connection: bool = False):
        self.fn, self.what = fn, what
        self.connection = connection  # fn(connection), Core statements only (GroupCommit.run)
        self.finished, self.result, self.exc = False, None, None
        self.waiting = False  # a caller is waiting (it will see a failure: not logged here)
        self.gates: list[asyncio.Future] = []  # what the waiting callers await


class Lane:
    """One session's writes, in order (``fn(session)`` each, in one transaction).

    Driven by callbacks, not a task: the head write goes to the group commit, and its
    outcome (a done-callback on that future) sends the next one or, for an unavailable
    database, sends it again after a backoff on the injected clock.  Per write that is
    one future and one callback on the loop (was a task, a ``retrying`` coroutine, a
    shield and a waiter's callback, for two writes a session)."""

    __slots__ = ("owner", "items", "inflight", "timer", "delay", "conflicts")

    def __init__(self, owner: "SessionWrites"):
        self.owner = owner
        self.items: collections.deque[_Write] = collections.deque()
        self.inflight: asyncio.Future | None = None  # the head write's group-commit future
        self.timer: Any = None  # the head write's retry (clock.callLater), while one is due
        self.delay = owner.base_delay
        self.conflicts = 0

    def submit(self, fn: Callable, what: object, *, connection: bool = False) -> _Write:
        """Queue ``fn(session)`` (``connection=True``: ``fn(connection)``, Core statements
        only, cheaper on the database thread); ``str(what)`` (masked) names it in the log,
        formatted only then.  Await the result with :meth:`SessionWrites.wait`."""
        w = _Write(fn, what, connection)
        self.items.append(w)
        own = self.owner
        own.pending += 1
        if own.pending > own.peak_pending:
            own.peak_pending = own.pending
        own.lanes.add(self)
        if len(self.items) == 1:  # else the head's outcome sends this one
            self._send()
        return w

    def _send(self) -> None:
        self.timer = None
        if self.owner.closing:  # close() tries what is queued itself
            return
        w = self.items[0]
        fut = self.inflight = self.owner.group.run(w.fn, connection=w.connection)
        fut.add_done_callback(self._landed)

    def _landed(self, fut: asyncio.Future) -> None:
        own = self.owner
        if own.closing or fut is not self.inflight or fut.cancelled():
            return  # close() takes over: it reads the in-flight write's outcome itself
        exc = fut.exception()
        if exc is None:
            own._up()
            self.done(self.items[0], fut.result())
        elif isinstance(exc, TRANSIENT):  # kept; sent again after a capped exponential backoff
            delay = self.delay
            own._failed(exc, delay, self.items[0])
            self.delay = min(own.max_delay, delay * 2)
            self.timer = own.clock.callLater(delay, self._send)
            return
        elif isinstance(exc, IntegrityError) and self.conflicts < MAX_CONFLICTS:
            # Lanes flushing together after an outage can race on a get-or-create
            # (e.g. the dialer's "callback" campaign): the loser sees the winner's row
            # when it tries again.  A real constraint violation fails again: reported.
            self.conflicts += 1
            self.timer = own.clock.callLater(own.base_delay, self._send)
            return
        else:  # bad data or a bug: report, go on with the next
            self.done(self.items[0], exc=exc)
        if self.items:
            self._send()
        else:
            own.lanes.discard(self)

    def done(self, w: _Write, result: Any = None, exc: BaseException | None = None) -> None:
        self.items.popleft()
        self.inflight = None
        self.delay, self.conflicts = self.owner.base_delay, 0  # the next write starts its own backoff
        w.fn = None  # never run again; a hook's bound method would keep its session in a reference cycle
        self.owner.pending -= 1
        w.finished, w.result, w.exc = True, result, exc
        if exc is None:
            self.owner.written += 1
        elif not w.waiting:  # nobody will see it: say it here
            if isinstance(exc, LookupError):
                log.warning("IVR: %s refused: %s", w.what, exc)
            else:
                log.error("IVR: %s failed", w.what, exc_info=exc)
        for gate in w.gates:
            _open(gate)


def _on_session(w: _Write) -> Callable:
    """The write as ``fn(session)`` (``db.run``'s form; a Core write gets its connection)."""
    fn = w.fn
    return (lambda s: fn(s.connection())) if w.connection else fn


def _open(gate: asyncio.Future) -> None:
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
        while not w.finished:
            if self.down or self.closing:
                w.waiting = False
                return default
            w.waiting = True
            # One future, opened by whichever comes first: the write done or the database down.
            gate = asyncio.get_running_loop().create_future()
            w.gates.append(gate)
            self._down_waiters.add(gate)
            try:
                await gate
            except asyncio.CancelledError:
                w.waiting = False
                raise
            finally:
                w.gates.remove(gate)
                self._down_waiters.discard(gate)
        if w.exc is not None:
            raise w.exc
        return w.result

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
        for lane in self.lanes:  # no retry after this: what is queued is tried once below
            if lane.timer is not None and lane.timer.active():
                lane.timer.cancel()
            lane.timer = None
        lost: list[str] = []
        for lane in list(self.lanes):
            while lane.items:
                w = lane.items[0]
                left = deadline - loop.time()
                try:
                    if lane.inflight is None or (lane.inflight.done() and (
                            lane.inflight.cancelled() or lane.inflight.exception() is not None)):
                        lane.inflight = asyncio.ensure_future(self.db.run(_on_session(w)))
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
                w.finished, w.exc, w.fn = True, asyncio.CancelledError(), None  # a waiter: not stored
                for gate in w.gates:
                    _open(gate)
            self.pending -= len(lane.items)
            lane.items.clear()
            if lane.inflight is not None and not lane.inflight.done():
                lane.inflight.add_done_callback(_retrieved)
        self.lanes.clear()
        if lost:
            log.error("IVR: %d database write(s) not stored at shutdown: %s", len(lost), "; ".join(lost))
        return lost
