"""Group commit: many small writes from the event loop in one transaction.

A burst of callers (500 FastAGI sessions within 0.2 s) each inserting its own row
through ``db.run`` queues 500 transactions behind a small thread pool and, on SQLite,
one file lock: the last caller waited a third of a second for its row id.  Here the
writes submitted while a transaction is in flight are committed together in the next
one, so a burst costs a few transactions, not hundreds.

Each write keeps its own outcome.  A write that raises (bad data, a constraint) is
taken out and the others run again without it, in a new transaction: one caller's bad
input never loses another caller's row.  A write is therefore a function that can run
again after a rollback (``fn(session)``, as for ``db.run``).  An unavailable database
(:data:`~callcenter.store.retry.TRANSIENT`) or a failed commit fails every write of
the transaction with that exception: the callers retry as they would a ``db.run``.

Writes of one kind can also share a statement (:meth:`GroupCommit.run_many`): the items
queued for the same ``fn_many`` go to one ``fn_many(session, items)`` call (one
``INSERT`` of many rows instead of a statement, a flush and a read-back per row; most of a
small write's cost is SQLAlchemy's Python per statement, on a thread that shares the GIL
with the event loop).  When that call raises, its items are run again one by one, so the
bad item fails alone as a write of :meth:`run` would.

A write queued with ``connection=True`` is Core statements only (``fn(connection)``): a
batch of nothing else runs on a bare Connection (``Database.submit(connection=True)``),
without an ORM ``Session``, whose set-up and commit bookkeeping were most of the database
thread's time for the IVR's one-row writes (and that thread holds the GIL meanwhile: the
loop's replies wait).  In a batch with ORM writes it gets the session's connection.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import math
from typing import Any, Callable

from .retry import TRANSIENT


class _WriteFailed(Exception):
    def __init__(self, index: int, exc: BaseException):
        super().__init__(index)
        self.index, self.exc = index, exc


class _Core:
    """A write of Core statements only: ``fn(connection)`` (:meth:`GroupCommit.run` with
    ``connection=True``)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable):
        self.fn = fn


class _Item:
    """One item of a :meth:`GroupCommit.run_many` write; ``alone``: run in a call of its own
    (its batch failed once, so it is run alone to find which item it was)."""

    __slots__ = ("fn_many", "item", "alone")

    def __init__(self, fn_many: Callable, item: Any, alone: bool = False):
        self.fn_many, self.item, self.alone = fn_many, item, alone


class _Many:
    """The call of one ``fn_many`` on the items of a transaction: one result per item."""

    __slots__ = ("fn_many", "items")

    def __init__(self, fn_many: Callable, items: list):
        self.fn_many, self.items = fn_many, items

    def __call__(self, session) -> list:
        out = list(self.fn_many(session, self.items))
        if len(out) != len(self.items):
            raise ValueError(f"{self.fn_many.__qualname__} returned {len(out)} results for {len(self.items)} items")
        return out


def _units(live: list[tuple[Any, asyncio.Future]]) -> list[tuple[Callable, list[int]]]:
    """What a transaction runs: each plain write, and one :class:`_Many` per ``fn_many``
    (at the place of its first item), with the positions in ``live`` each answers for."""
    units: list[tuple[Callable, list[int]]] = []
    many: dict[Callable, int] = {}
    for pos, (fn, _fut) in enumerate(live):
        if not isinstance(fn, _Item):
            units.append((fn, [pos]))
        elif fn.alone or fn.fn_many not in many:
            if not fn.alone:
                many[fn.fn_many] = len(units)
            units.append((_Many(fn.fn_many, [fn.item]), [pos]))
        else:
            call, positions = units[many[fn.fn_many]]
            call.items.append(fn.item)
            positions.append(pos)
    return units


def _all(session, fns: list[Callable]) -> list[Any]:
    """Every write in the session's transaction (a Core one on its connection)."""
    out = []
    for i, fn in enumerate(fns):
        try:
            if isinstance(fn, _Core):
                out.append(fn.fn(session.connection()))
            else:
                out.append(fn(session))
                session.flush()  # a constraint is this write's, not the commit's
        except TRANSIENT:
            raise
        except Exception as exc:  # noqa: BLE001 - this write's own failure, handed back to it
            raise _WriteFailed(i, exc) from None
    return out


def _all_on_connection(conn, fns: list[_Core]) -> list[Any]:
    """Core writes only, in the connection's transaction (a statement fails at once: no flush)."""
    out = []
    for i, fn in enumerate(fns):
        try:
            out.append(fn.fn(conn))
        except TRANSIENT:
            raise
        except Exception as exc:  # noqa: BLE001 - as in _all
            raise _WriteFailed(i, exc) from None
    return out


class GroupCommit:
    """``await group.run(fn)`` like ``db.run(fn)``; concurrent calls share a transaction.

    Driven by callbacks: a batch goes to the database's pool with :meth:`Database.submit`
    and its outcome comes back with one ``call_soon_threadsafe`` a batch, which sends the
    next batch.  No task, coroutine or asyncio future per batch on the loop (they were
    most of the loop's share of a write, one or two writes a batch in steady traffic)."""

    def __init__(self, db: Any, *, max_batch: int = 256, gap: float = 0.0):
        self.db = db
        self.max_batch = max_batch
        # real seconds from the start of one transaction to the next (0: the next goes as the
        # last lands).  For writes nobody waits on at once (the recordings catalogue): each
        # transaction wakes a database thread, and its every statement hands the interpreter
        # lock back and forth with the loop (on the AMI ingest bench's one core, ~10 thread
        # switches a transaction, each leaving the loop's caches cold: its parse took 1.4x
        # the CPU).  Real time, not the injected clock: it paces the machine's work, not the
        # hospital's day.
        self.gap = gap
        self._sent_at = -math.inf
        self.queue: list[tuple[Callable, asyncio.Future]] = []
        self.busy = False  # a batch is due or in flight: what is queued now goes in the next
        self.transactions = 0  # committed (for tests and benches)
        self._idle: asyncio.Future | None = None  # close() waits on it

    def run(self, fn: Callable, *args: Any, connection: bool = False) -> asyncio.Future:
        """Queue ``fn(session, *args)`` (``connection=True``: ``fn(connection, *args)``, Core
        statements only); the future gets its result once its transaction committed.
        (The signature of ``db.run``: ``store.retry.retrying`` takes either.)"""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        write = functools.partial(fn, *args) if args else fn
        self.queue.append((_Core(write) if connection else write, fut))
        if not self.busy:
            self.busy = True
            loop.call_soon(self._next, loop)  # what this turn of the loop submits goes in the same batch
        return fut

    def run_many(self, fn_many: Callable[[Any, list], list], item: Any) -> asyncio.Future:
        """Queue ``item`` for ``fn_many(session, items)``, which returns one result per item,
        in order: the items of a transaction queued for the same ``fn_many`` go in one call.
        ``fn_many`` may run again after a rollback, with the same items or fewer."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.queue.append((_Item(fn_many, item), fut))
        if not self.busy:
            self.busy = True
            loop.call_soon(self._next, loop)
        return fut

    def many(self) -> "Many":
        """:meth:`run_many` as a port's ``run(fn_many, item)`` (what ``store.retry.retrying``
        calls: ``retrying(group.many(), fn_many, item, ...)``)."""
        return Many(self)

    def _next(self, loop: asyncio.AbstractEventLoop) -> None:
        """Send the next batch of live writes (``gap`` after the last one began), or go idle."""
        if self.queue and self.gap:
            wait = self._sent_at + self.gap - loop.time()
            if wait > 0:  # still busy: what is queued meanwhile joins this batch
                loop.call_later(wait, self._next, loop)
                return
        while self.queue:
            batch, self.queue = self.queue[:self.max_batch], self.queue[self.max_batch:]
            live = [(fn, fut) for fn, fut in batch if not fut.done()]
            if live:
                self._send(loop, live)
                return
        self.busy = False
        if self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    def _send(self, loop: asyncio.AbstractEventLoop, live: list[tuple[Any, asyncio.Future]]) -> None:
        self._sent_at = loop.time()
        units = _units(live)

        def back(cf: concurrent.futures.Future) -> None:  # on the worker thread (or here, if done)
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._landed, loop, live, units, cf)
        calls = [call for call, _ in units]
        if all(isinstance(c, _Core) for c in calls):
            done = self.db.submit(_all_on_connection, calls, connection=True)
        else:
            done = self.db.submit(_all, calls)
        done.add_done_callback(back)

    def _landed(self, loop: asyncio.AbstractEventLoop, live: list[tuple[Any, asyncio.Future]],
                units: list[tuple[Callable, list[int]]], cf: concurrent.futures.Future) -> None:
        if cf.cancelled():  # the pool shut down under it
            for _, fut in live:
                fut.cancel()
            self._next(loop)
            return
        exc = cf.exception()
        if exc is None:
            self.transactions += 1
            for (call, positions), result in zip(units, cf.result()):
                for pos, r in zip(positions, result) if isinstance(call, _Many) else ((positions[0], result),):
                    fut = live[pos][1]
                    if not fut.done():
                        fut.set_result(r)
        elif isinstance(exc, _WriteFailed):  # that write out; the others again, in a new transaction
            call, positions = units[exc.index]
            if isinstance(call, _Many) and len(positions) > 1:  # which item? each alone, next time
                for pos in positions:
                    fn, fut = live[pos]
                    live[pos] = (_Item(fn.fn_many, fn.item, alone=True), fut)
            else:
                fut = live[positions[0]][1]
                if not fut.done():
                    fut.set_exception(exc.exc)
            live = [(fn, f) for fn, f in live if not f.done()]
            if live:
                self._send(loop, live)
                return
        else:  # unavailable database or failed commit: all of them
            for _, fut in live:
                if not fut.done():
                    fut.set_exception(exc)
        self._next(loop)

    async def close(self) -> None:
        """Wait for what is queued (shutdown, after the callers stopped submitting)."""
        while self.busy:
            if self._idle is None or self._idle.done():
                self._idle = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._idle)


class Many:
    """A :class:`GroupCommit` whose ``run(fn_many, item)`` is :meth:`GroupCommit.run_many`."""

    def __init__(self, group: GroupCommit):
        self.run = group.run_many
