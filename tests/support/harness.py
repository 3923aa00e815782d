"""Fault-test harness: the simulated PBX, the real gateway and tracker, one stepped clock.

``Stepper`` advances a ``task.Clock`` timer by timer and, after each step, waits until
every byte the simulator wrote reached the gateway and no AMI action is in flight, so
arrival times are exact and runs are deterministic.  ``Outage`` drops the AMI link and
(optionally) refuses connections for a while, like a network cut or an Asterisk that is
down.  ``accounting`` compares the stored queue calls with the simulator's own record.
"""
from __future__ import annotations

import asyncio
import collections
import gzip
import random
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from twisted.internet import task

from callcenter.ami.gateway import AmiGateway
from callcenter.queuecalls.models import AmiOutage, QueueCall
from callcenter.queuecalls.queuelog import archives
from callcenter.queuecalls.tracker import QueueCallsTracker

EPOCH = 1_795_400_000.0  # 2026-11-20 09:46 Asia/Shanghai


class Stepper:
    def __init__(self, clock: task.Clock, pbxs: list, gw: AmiGateway, tracker: QueueCallsTracker):
        self.clock, self.pbxs, self.gw, self.tracker = clock, pbxs, gw, tracker
        self.base_gw = self.base_srv = 0
        self.steps = 0

    @property
    def pbx(self):
        return self.pbxs[-1]

    def _srv_bytes(self) -> int:
        ami = self.pbx.ami
        return ami.total_bytes if ami is not None else self.base_srv

    def rebase(self) -> None:
        self.base_gw, self.base_srv = self.gw.bytes_received, self._srv_bytes()

    async def sync(self) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + 2
        await asyncio.sleep(0)
        while loop.time() < end:
            behind = self.gw.bytes_received - self.base_gw < self._srv_bytes() - self.base_srv
            gw, proto = self.gw, self.gw._proto
            # logged in and FullyBooted seen, the on_connect hooks not yet sending (a few loop
            # turns): no timer may fire before the resync's snapshot is asked for
            hooks_due = (gw.connected and not gw._connected_event.is_set() and proto is not None
                         and proto.booted and not self.tracker._resync_backoff)
            # the link is down and the supervisor has not yet scheduled its retry (or the
            # retry is due and not yet started): no timer may fire before it is scheduled
            settling = (not gw.connected and not gw._stopping and gw._task is not None
                        and not gw._task.done()
                        and (gw.reconnect_at is None or gw.reconnect_at <= self.clock.seconds()))
            busy = (bool(gw._pending) or gw.connecting or self.tracker._resyncing or hooks_due
                    or settling)
            if not behind and not busy:
                break
            await asyncio.sleep(0.0005)
        await asyncio.sleep(0)

    async def run_for(self, seconds: float) -> None:
        until = self.clock.seconds() + seconds
        await self.sync()  # what the caller just did (a cut link…) settles before time moves
        while True:
            times = [c.getTime() for c in self.clock.getDelayedCalls() if c.active()]
            nxt = min(times, default=None)
            if nxt is None or nxt > until:
                self.clock.advance(max(0.0, until - self.clock.seconds()))
                await self.sync()
                return
            self.clock.advance(max(0.0, nxt - self.clock.seconds()))
            self.steps += 1
            await self.sync()

    async def until_connected(self, limit: float = 600.0) -> None:
        """Step simulated time (reconnect backoff) until the gateway is logged in again."""
        loop = asyncio.get_running_loop()
        end = loop.time() + 10
        t0 = self.clock.seconds()
        while not (self.gw.connected and self.gw._connected_event.is_set()):
            assert loop.time() < end and self.clock.seconds() - t0 < limit, "gateway did not reconnect"
            await self.run_for(0.5)
            await asyncio.sleep(0.001)

    async def wait_lost(self) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + 5
        while self.gw.connected:
            assert loop.time() < end, "gateway did not notice the drop"
            await asyncio.sleep(0.001)
        self.rebase()


async def drop_link(stepper: Stepper, refuse_for: float = 0.0) -> None:
    """Cut every AMI connection; with ``refuse_for`` the port refuses connections that long."""
    ami = stepper.pbx.ami
    port = ami.port
    if refuse_for:
        ami._server.close()
        await ami._server.wait_closed()
    for s in list(ami.sessions):
        s.transport.abort()
    await stepper.wait_lost()
    if refuse_for:
        await stepper.run_for(refuse_for)
        await ami.start("127.0.0.1", port)
        stepper.rebase()
    await stepper.until_connected()


def make_bridge(db, clock, port: int, queue_log: str = "", **tracker_kw):
    gw = AmiGateway("127.0.0.1", port, "bridge", "bridge-secret", clock=clock, ping_interval=3600,
                    action_timeout=600, reconnect_base_delay=1, reconnect_max_delay=8,
                    rng=random.Random(5))
    tracker = QueueCallsTracker(db, clock, gateway=gw, queue_log=queue_log, **tracker_kw)
    return gw, tracker


@dataclass
class Accounting:
    expected: int                 # queue calls in the simulator's own record (queue_log ENTERQUEUE)
    stored: int                   # rows in queue_calls
    missing: list = field(default_factory=list)
    extra: list = field(default_factory=list)
    duplicated: list = field(default_factory=list)
    wrong_outcome: list = field(default_factory=list)
    measured: int = 0             # rows measured from AMI (gap false)
    reconstructed: int = 0        # rows from resync or queue_log (gap true)
    outages: int = 0
    recovered_from_queue_log: int = 0

    @property
    def exact(self) -> bool:
        return not (self.missing or self.extra or self.duplicated or self.wrong_outcome)


QL_OUTCOME = {"ABANDON": "abandoned", "EXITWITHTIMEOUT": "timeout", "COMPLETEAGENT": "answered",
              "COMPLETECALLER": "answered", "TRANSFER": "transferred"}


def queue_log_lines(queue_log) -> list[str]:
    """Every line of the simulator's queue_log, rotated files included (oldest first)."""
    files = []
    for p in archives(queue_log):
        opener = gzip.open if p.name.endswith(".gz") else open
        with opener(p, "rt", encoding="utf-8") as fh:
            lines = fh.read().splitlines()
        if lines:
            files.append((int(lines[0].split("|")[0]), p != Path(queue_log), lines))
    return [line for _, _, lines in sorted(files, key=lambda f: (f[0], not f[1])) for line in lines]


def simulator_record(queue_log) -> dict[str, str | None]:
    """Each queue call the simulator handled (its queue_log files: the simulator's own
    record, kept in full) -> its final outcome (None: cut off by a crash)."""
    out: dict[str, str | None] = {}
    for line in queue_log_lines(queue_log):
        parts = line.split("|")
        callid, event = parts[1], parts[4]
        if event == "ENTERQUEUE":
            out.setdefault(callid, None)
        elif event in QL_OUTCOME and callid in out:
            out[callid] = QL_OUTCOME[event]
    return out


def accounting(db, queue_log, server: str | None = None) -> Accounting:
    """Stored rows against one simulator's queue_log; ``server``: only that Asterisk
    server's rows and outages (several simulators may reuse a Uniqueid)."""
    record = simulator_record(queue_log)
    calls, outs = select(QueueCall), select(AmiOutage)
    if server is not None:
        calls, outs = calls.where(QueueCall.server == server), outs.where(AmiOutage.server == server)
    with db.session() as s:
        rows = list(s.scalars(calls))
        outages = list(s.scalars(outs))
    per_uid = collections.Counter(r.uniqueid for r in rows)
    acc = Accounting(expected=len(record), stored=len(rows))
    acc.missing = sorted(set(record) - set(per_uid))
    acc.extra = sorted(set(per_uid) - set(record))
    acc.duplicated = sorted(u for u, n in per_uid.items() if n > 1)
    for r in rows:
        want = record.get(r.uniqueid)
        if r.uniqueid in record and want is None:  # cut off by a crash: must be flagged a gap
            if not r.gap:
                acc.wrong_outcome.append((r.uniqueid, want, r.outcome, r.source, r.gap))
        elif r.uniqueid in record and r.outcome != want:
            acc.wrong_outcome.append((r.uniqueid, want, r.outcome, r.source, r.gap))
    acc.measured = sum(1 for r in rows if not r.gap)
    acc.reconstructed = sum(1 for r in rows if r.gap)
    acc.outages = len(outages)
    acc.recovered_from_queue_log = sum(o.recovered_calls for o in outages)
    return acc
