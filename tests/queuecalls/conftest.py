"""Harness: a recorded trace replayed over real TCP into the real gateway + tracker + database."""
from __future__ import annotations

import asyncio
import random

import pytest
from sqlalchemy import select
from twisted.internet import task

from callcenter.ami.gateway import AmiGateway
from callcenter.ami.replay import ReplayServer
from callcenter.ami.tracefile import read_ami, traces_dir
from callcenter.queuecalls.models import AmiOutage, QueueCall
from callcenter.queuecalls.tracker import QueueCallsTracker


class Bridge:
    """Replay server + gateway + tracker sharing one fake clock (lockstep, exact arrival times)."""

    def __init__(self, db, trace, *, server_kw=None, gw_kw=None, tracker_kw=None, start_at=None):
        self.db = db
        path = trace if str(trace).startswith("/") else traces_dir() / trace
        trace = read_ami(path)
        # the clock runs at the recording's epoch: arrival times = Asterisk's real times,
        # so queue_log lines of the same calls line up
        self.clock = task.Clock()
        self.clock.advance(trace.epoch or 1_795_346_000)
        self.server = ReplayServer(trace, clock=self.clock, epoch=self.clock.seconds(),
                                   **{"hold_until": "CoreShowChannels", **(server_kw or {})})
        self.gw_kw = {"ping_interval": 3600, "ping_timeout": 5, "reconnect_base_delay": 1,
                      "rng": random.Random(1), **(gw_kw or {})}
        self.tracker_kw = tracker_kw or {}
        if start_at is not None:  # the bridge comes up in the middle of the recording
            self.server.cursor = start_at
            self.clock.advance(self.server.script[start_at][1] - 0.001)

    async def __aenter__(self) -> "Bridge":
        await self.server.start()
        self.gw = AmiGateway("127.0.0.1", self.server.port, "bridge", "bridge-secret",
                             clock=self.clock, **self.gw_kw)
        self.server.lockstep(self.gw)
        self.tracker = QueueCallsTracker(self.db, self.clock, gateway=self.gw, **self.tracker_kw)
        await self.tracker.start()
        await self.gw.start()
        return self

    async def until(self, cond, timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not cond():
            if loop.time() > end:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.001)

    async def replayed(self) -> None:
        await asyncio.wait_for(self.server.finished.wait(), 20)
        await self.server.sync()

    async def settle(self) -> list[QueueCall]:
        await self.tracker.flush()
        return self.rows()

    def index(self, pred, start: int = 0) -> int:
        """Index in the server's script of the first message matching ``pred(Message)``."""
        from callcenter.ami.codec import Parser

        for i in range(start, len(self.server.script)):
            kind, _, raw = self.server.script[i]
            if kind == "msg" and pred(Parser().feed(raw)[0]):
                return i
        raise LookupError("no such message")

    def rows(self) -> list[QueueCall]:
        with self.db.session() as s:
            return list(s.scalars(select(QueueCall).order_by(QueueCall.entered_at)))

    def outages(self) -> list[AmiOutage]:
        with self.db.session() as s:
            return list(s.scalars(select(AmiOutage)))

    async def __aexit__(self, *exc) -> None:
        await self.gw.stop()
        await self.tracker.stop()
        await self.server.stop()


@pytest.fixture
def bridge(db):
    def make(trace, **kw) -> Bridge:
        return Bridge(db, trace, **kw)
    return make
