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
"""
from __future__ import annotations

import asyncio
import functools
from typing import Any, Callable

from .retry import TRANSIENT


class _WriteFailed(Exception):
    def __init__(self, index: int, exc: BaseException):
        super().__init__(index)
        self.index, self.exc = index, exc


def _all(session, fns: list[Callable]) -> list[Any]:
    out = []
    for i, fn in enumerate(fns):
        try:
            out.append(fn(session))
            session.flush()  # a constraint is this write's, not the commit's
        except TRANSIENT:
            raise
        except Exception as exc:  # noqa: BLE001 - this write's own failure, handed back to it
            raise _WriteFailed(i, exc) from None
    return out


class GroupCommit:
    """``await group.run(fn)`` like ``db.run(fn)``; concurrent calls share a transaction."""

    def __init__(self, db: Any, *, max_batch: int = 256):
        self.db = db
        self.max_batch = max_batch
        self.queue: list[tuple[Callable, asyncio.Future]] = []
        self.task: asyncio.Task | None = None
        self.transactions = 0  # committed (for tests and benches)

    def run(self, fn: Callable, *args: Any) -> asyncio.Future:
        """Queue ``fn(session, *args)``; the future gets its result once its transaction
        committed.  (The signature of ``db.run``: ``store.retry.retrying`` takes either.)"""
        fut = asyncio.get_running_loop().create_future()
        self.queue.append((functools.partial(fn, *args) if args else fn, fut))
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._drain())
        return fut

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # what this turn of the loop submits goes in the same transaction
        while self.queue:
            batch, self.queue = self.queue[:self.max_batch], self.queue[self.max_batch:]
            await self._commit(batch)

    async def _commit(self, batch: list[tuple[Callable, asyncio.Future]]) -> None:
        live = [(fn, fut) for fn, fut in batch if not fut.done()]
        while live:
            try:
                results = await self.db.run(_all, [fn for fn, _ in live])
            except _WriteFailed as failed:
                _, fut = live.pop(failed.index)
                if not fut.done():
                    fut.set_exception(failed.exc)
                continue
            except asyncio.CancelledError:
                for _, fut in live:
                    fut.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - unavailable database or failed commit: all of them
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(exc)
                return
            self.transactions += 1
            for (_, fut), result in zip(live, results):
                if not fut.done():
                    fut.set_result(result)
            return

    async def close(self) -> None:
        """Wait for what is queued (shutdown, after the callers stopped submitting)."""
        while self.task is not None and not self.task.done():
            await asyncio.shield(self.task)
