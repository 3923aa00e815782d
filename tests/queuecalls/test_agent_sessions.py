"""Agents' login and pause stretches: the pure log, its store, and the recorder end to end
(simulated PBX over real AMI -> gateway -> tracker -> recorder -> database)."""
from __future__ import annotations

import asyncio
import datetime as dt
import random

import pytest
from sqlalchemy import select
from twisted.internet import task

from callcenter.ami.gateway import AmiGateway
from callcenter.queuecalls import agent_queries, agent_sessions
from callcenter.queuecalls.agent_log import AgentLog, Closed, Opened
from callcenter.queuecalls.agent_recorder import AgentSessionRecorder
from callcenter.queuecalls.models import AgentSession
from callcenter.queuecalls.reducer import Member, MemberChanged, MemberRemoved
from callcenter.queuecalls.tracker import QueueCallsTracker
from callcenter.simulator import SimulatedPBX

from tests.support.harness import Stepper

A = "PJSIP/1001"
UTC = dt.timezone.utc


def _m(queue, paused=False, reason="", name="Wang"):
    return MemberChanged(queue, Member(A, name=name, paused=paused, reason=reason))


def test_login_pause_and_logout_edges():
    log = AgentLog()
    assert log.apply(_m("consultation"), 10) == [Opened(A, "login", 10, name="Wang")]
    assert log.apply(_m("complaint"), 11) == []                       # a second queue: still one login
    assert log.apply(_m("consultation", True, "meal"), 20) == []      # paused in one of two: not off
    assert log.apply(_m("complaint", True, "meal"), 21) == [Opened(A, "pause", 21, reason="meal", name="Wang")]
    assert log.apply(_m("complaint", True, "meal"), 22) == []         # a repeat changes nothing
    assert log.apply(_m("complaint", True, "training"), 30) == [  # the reason changes: next stretch
        Closed(A, "pause", 30), Opened(A, "pause", 30, reason="training", name="Wang")]
    assert log.apply(_m("consultation", False), 35) == [Closed(A, "pause", 35)]  # back in one queue
    assert log.apply(MemberRemoved("consultation", A), 40) == [      # left it: paused in the only one
        Opened(A, "pause", 40, reason="training", name="Wang")]
    assert log.apply(MemberRemoved("complaint", A), 50) == [Closed(A, "pause", 50), Closed(A, "login", 50)]
    assert log.status == {} and log.members == {}


def test_dialer_reservations_are_one_reason_and_close_all():
    log = AgentLog()
    log.apply(_m("consultation"), 1)
    assert log.apply(_m("consultation", True, "dialer:17"), 2)[0].reason == "dialer"
    assert log.apply(_m("consultation", True, "dialer:18"), 3) == []
    assert log.close_all(9) == [Closed(A, "pause", 9), Closed(A, "login", 9)]
    assert log.close_all(10) == []


@pytest.mark.postgres
def test_store_is_idempotent_and_clipped_sums(db):
    t0 = 1_795_400_000.0
    edges = [Opened(A, "login", t0, name="Wang"), Opened(A, "pause", t0 + 600, reason="meal"),
             Closed(A, "pause", t0 + 1800)]
    db.call(agent_sessions.write_edges, edges)
    db.call(agent_sessions.write_edges, edges)  # a retried batch stores nothing twice
    with db.session() as s:
        rows = s.scalars(select(AgentSession).order_by(AgentSession.id)).all()
        assert [(r.kind, r.reason, r.ended_at is None) for r in rows] == [("login", "", True), ("pause", "meal", False)]
    ts = lambda v: dt.datetime.fromtimestamp(v, UTC)  # noqa: E731
    # the period starts 15 min after login and "now" is one hour after it: clipped both sides
    got = db.call(agent_queries.session_seconds, ts(t0 + 900), ts(t0 + 86400), ts(t0 + 3600))
    assert got[A][("login", "")] == pytest.approx(2700, abs=0.01)
    assert got[A][("pause", "meal")] == pytest.approx(900, abs=0.01)
    # a restart closes what the previous run left open, at its last checkpoint
    assert db.call(agent_sessions.close_open, t0 + 3000) == 1
    got = db.call(agent_queries.session_seconds, ts(t0), ts(t0 + 86400), ts(t0 + 9000))
    assert got[A][("login", "")] == pytest.approx(3000, abs=0.01)


@pytest.mark.timeout(60)
async def test_recorder_through_the_simulated_pbx(db, tmp_path):
    clock = task.Clock()
    clock.advance(1_795_400_000)
    pbx = SimulatedPBX(clock, seed=3)
    await pbx.start()
    gw = AmiGateway("127.0.0.1", pbx.ami_port, "bridge", "bridge-secret", clock=clock, ping_interval=3600,
                    action_timeout=600, reconnect_base_delay=1, rng=random.Random(5))
    tracker = QueueCallsTracker(db, clock, gateway=gw)
    recorder = AgentSessionRecorder(db, clock, tracker=tracker, gateway=gw)
    drv = Stepper(clock, [pbx], gw, tracker)
    await tracker.start()
    await recorder.start()
    await gw.start()
    iface = "Local/1001@sim-agent/n"
    try:
        await gw.wait_connected(5)
        await drv.run_for(60)
        start = clock.seconds()
        await gw.action({"Action": "QueuePause", "Interface": iface, "Paused": "true", "Reason": "meal"})
        await drv.run_for(120)
        await gw.action({"Action": "QueuePause", "Interface": iface, "Paused": "false"})
        await drv.run_for(60)
        await gw.action({"Action": "QueueRemove", "Queue": "consultation", "Interface": iface})
        await drv.run_for(30)
        gone = clock.seconds()
        await recorder.flush()
        with db.session() as s:
            rows = s.scalars(select(AgentSession).where(AgentSession.interface == iface)
                             .order_by(AgentSession.id)).all()
            got = [(r.kind, r.reason, r.ended_at is not None) for r in rows]
        assert got == [("login", "", True), ("pause", "meal", True)], got
        ts = lambda v: dt.datetime.fromtimestamp(v, UTC)  # noqa: E731
        secs = db.call(agent_queries.session_seconds, ts(start - 3600), ts(gone + 3600), ts(gone + 10))
        assert secs[iface][("pause", "meal")] == pytest.approx(120, abs=1.0)
        assert secs[iface][("login", "")] == pytest.approx((gone - 30) - (start - 60), abs=2.0)  # connect .. QueueRemove
        others = db.call(agent_queries.session_seconds, ts(start - 3600), ts(gone + 3600), ts(gone + 10))
        assert any(k != iface and v[("login", "")] > 0 for k, v in others.items())  # still logged in
    finally:
        await recorder.stop()
        await tracker.stop()
        await gw.stop()
        await pbx.stop()
    with db.session() as s:  # stopping closes every open stretch
        assert s.scalars(select(AgentSession).where(AgentSession.ended_at.is_(None))).all() == []


@pytest.mark.timeout(30)
async def test_recorder_keeps_changes_through_a_database_outage_and_a_lost_link(db):
    from callcenter.ami.fake import FakeAmi

    from tests.support.flaky_db import FlakyDatabase
    from tests.support.waiting import until

    clock = task.Clock()
    clock.advance(1_795_400_000)
    t0 = clock.seconds()
    flaky = FlakyDatabase(db, clock, [(t0 + 5, t0 + 40)])
    ami = FakeAmi(clock)
    tracker = QueueCallsTracker(flaky, clock, gateway=ami)
    recorder = AgentSessionRecorder(flaky, clock, tracker=tracker, gateway=ami)
    await tracker.start()
    await recorder.start()
    try:
        member = dict(Queue="consultation", Interface=A, MemberName="Wang", Status="1")
        ami.event(Event="QueueMemberAdded", Paused="0", **member)
        clock.advance(10)                                   # the database is down from t0+5
        ami.event(Event="QueueMemberPause", Paused="1", PausedReason="meal", **member)
        for _ in range(12):                                 # retries with backoff, nothing dropped
            clock.advance(5)
            await asyncio.sleep(0.02)
        ami.disconnect(clock.seconds())                     # link lost: nothing open any more
        # the writer's backoff waits on this clock: step it while waiting
        await until(lambda: (clock.advance(1), not recorder.buffer)[1], "the changes written", 10)
        with db.session() as s:
            rows = s.scalars(select(AgentSession).order_by(AgentSession.id)).all()
            assert [(r.kind, r.reason, r.ended_at is not None) for r in rows] == [
                ("login", "", True), ("pause", "meal", True)]
        assert flaky.failures >= 1 and recorder.write_errors >= 1
    finally:
        await recorder.stop()
        await tracker.stop()
