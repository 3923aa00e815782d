"""The "agent-sessions" component: the tracker's member facts → stored login/pause stretches.

It listens to the queue-call tracker (``MemberChanged``/``MemberRemoved``, subscribed
when built, so nothing a first resync reports is missed), turns them into edges with
the pure :class:`~.agent_log.AgentLog` and writes them in batches on a worker thread,
retrying while the database is away (nothing dropped; the writes are idempotent).

Only what was heard is counted: at start the stretches a previous run left open are
closed at the tracker's checkpoint (when it last heard Asterisk); when the AMI link is
lost everything open is closed then, and the resync that follows opens what is still
true; at stop everything open is closed.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..store.retry import retrying
from . import agent_sessions, store
from .agent_log import AgentLog, Edge
from .reducer import MemberChanged, MemberRemoved

log = logging.getLogger(__name__)


class AgentSessionRecorder:
    name = "agent-sessions"

    def __init__(self, db: Any, clock: Any, *, tracker: Any, gateway: Any):
        self.db = db
        self.clock = clock
        self.server = tracker.server  # whose checkpoint bounds what the previous run left open
        self.log = AgentLog()
        self.buffer: list[Edge] = []
        self._stopping = False
        self.write_errors = 0
        self._wake = asyncio.Event()
        self._writer: asyncio.Task | None = None
        self._lock = asyncio.Lock()  # one writer at a time: the batch is the buffer's head
        tracker.subscribe(self.on_fact, MemberChanged, MemberRemoved)
        gateway.on_disconnect(self.on_disconnect)

    def on_fact(self, fact: MemberChanged | MemberRemoved) -> None:
        if self._stopping:
            return
        edges = self.log.apply(fact, self.clock.seconds())
        if edges:
            self.buffer.extend(edges)
            self._wake.set()

    def on_disconnect(self, t: float) -> None:
        self.buffer.extend(self.log.close_all(t))
        self._wake.set()

    async def start(self) -> None:
        self._stopping = False
        self._writer = asyncio.ensure_future(self._writer_loop())  # a slow database never holds up start

    async def stop(self) -> None:
        self._stopping = True
        self.buffer.extend(self.log.close_all(self.clock.seconds()))
        self._wake.set()
        if self._writer is not None:
            try:
                await self._writer
            except Exception as exc:  # noqa: BLE001 - the database is gone at stop: say what is lost
                log.error("agent sessions: %d login/pause changes not written at stop (%s); the next start "
                          "closes the open stretches at the last checkpoint", len(self.buffer),
                          exc.__class__.__name__)
            self._writer = None

    async def flush(self) -> None:
        """Write everything buffered now (the writer does it by itself; tests and stop)."""
        async with self._lock:
            while self.buffer:
                batch = self.buffer[:]
                await self._retrying(agent_sessions.write_edges, batch)
                del self.buffer[: len(batch)]

    async def _close_previous(self) -> None:
        """Before anything of this run is written: what the previous run left open ends
        at its last checkpoint (when it last heard Asterisk)."""
        now = self.clock.seconds()
        cp = await self._retrying(store.load_checkpoint, self.server)
        closed = await self._retrying(agent_sessions.close_open, min(cp or now, now))
        if closed:
            log.info("agent sessions: %d left open by the previous run closed at its last checkpoint", closed)

    async def _writer_loop(self) -> None:
        await self._close_previous()
        while True:
            if not self.buffer and not self._stopping:
                self._wake.clear()
                await self._wake.wait()
            await self.flush()
            if self._stopping and not self.buffer:
                return

    async def _retrying(self, fn, *args) -> Any:
        def failed(exc: BaseException, delay: float) -> None:
            self.write_errors += 1
            log.error("agent sessions: database write failed (%s); retrying in %.1f s",
                      exc.__class__.__name__, delay)

        return await retrying(self.db, fn, *args, clock=self.clock, base_delay=0.5, max_delay=30.0,
                              on_failure=failed,
                              give_up=lambda: self._stopping and self.write_errors >= 20)
