"""Journal appends from the event loop: every fact durable before its caller goes on,
many facts per fsync.

Capture appends up to three facts per call (``start``, ``ended``, ``settled``) and each
must be on disk before it acts on it (MixMonitor only after its ``start`` is durable:
a crash then leaves a fact the next start catalogues).  One fsync per fact on one file
thread (~4 ms on a virtual disk) capped capture at ~80 calls/s and queued a burst's
MixMonitors behind each other's disk flushes.  Here the facts appended while a flush is
under way are written together in the next one (:meth:`Journal.append_many`): each
caller still waits until *its* fact is on disk, and a burst costs a few fsyncs.

A failed write (``OSError``) fails every fact of that batch with it, as a failed single
append did: each caller handles it as before (a ``start`` that is not durable is not
recorded).
"""
from __future__ import annotations

import asyncio
import math
from typing import Any, Awaitable, Callable

from .journal import Journal


class JournalWrites:
    """``await writes.append(fact)``: the fact is in the journal, fsync'd."""

    def __init__(self, journal: Journal, run_io: Callable[..., Awaitable[Any]], *, gap: float = 0.0):
        self.journal = journal
        self._run_io = run_io  # runs a blocking call on capture's file thread
        # real seconds from the start of one flush to the next: under a burst, more facts a
        # flush and fewer wake-ups of the file thread (each a few thread switches that leave
        # the loop's caches cold); a fact appended after a quiet spell is flushed at once
        self.gap = gap
        self._flushed_at = -math.inf
        self._queue: list[tuple[dict, asyncio.Future]] = []
        self._task: asyncio.Task | None = None
        self.flushes = 0  # fsyncs done (tests and benches)
        self.facts = 0

    def append(self, fact: dict) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self._queue.append((fact, fut))
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._drain())
        return fut

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # what this turn of the loop appends goes in the same flush
        loop = asyncio.get_running_loop()
        while self._queue:
            wait = self._flushed_at + self.gap - loop.time()
            if wait > 0:  # a flush began a moment ago: let more facts join the next
                await asyncio.sleep(wait)
            self._flushed_at = loop.time()
            batch, self._queue = self._queue, []
            try:
                await self._run_io(self.journal.append_many, [f for f, _ in batch])
            except asyncio.CancelledError:
                for _, fut in batch:
                    fut.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - OSError & co: each caller gets its fact's outcome
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self.flushes += 1
            self.facts += len(batch)
            for _, fut in batch:
                if not fut.done():
                    fut.set_result(None)

    async def drained(self) -> None:
        """Until everything appended so far is written (before a compaction or a close)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
