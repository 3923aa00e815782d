"""The database unavailable for a while (injected time), with calls flowing.

Queue calls: a busy half hour through the simulated PBX over TCP while the database
refuses every write for 30 s and then for 5 minutes: finished calls stay buffered,
the writer retries, and after the outage every call is stored exactly once.
"""
from __future__ import annotations

import asyncio
import json

import pytest
from twisted.internet import task

from callcenter.simulator import DayProfile, SimConfig, SimulatedPBX, run_traffic

from tests.support.flaky_db import FlakyDatabase
from tests.support.harness import EPOCH, Stepper, accounting, make_bridge

pytestmark = pytest.mark.slow


@pytest.mark.timeout(90)
@pytest.mark.postgres
async def test_queue_calls_survive_database_outages(db, tmp_path):
    clock = task.Clock()
    clock.advance(EPOCH)
    qlog = tmp_path / "queue_log"
    windows = [(EPOCH + 600, EPOCH + 630), (EPOCH + 1200, EPOCH + 1500)]
    flaky = FlakyDatabase(db, clock, windows)
    pbx = SimulatedPBX(clock, seed=31, config=SimConfig(queues={"consultation": [("1001", "Agent 1001")]}),
                       queue_log=qlog)
    await pbx.start()
    gw, tracker = make_bridge(flaky, clock, pbx.ami_port, queue_log=str(qlog), retry_base_delay=0.005,
                              retry_max_delay=0.02, batch_size=50)
    st = Stepper(clock, [pbx], gw, tracker)
    traffic = run_traffic(pbx, DayProfile(calls=300, hourly_weights={10: 1.0}, agents={"consultation": 5},
                                          talk_mean=60, talk_sd=20, patience_mean=60), seed=31)
    await tracker.start()
    await gw.start()
    peak_buffer = 0
    try:
        await st.until_connected()
        while clock.seconds() < EPOCH + 1800:
            await st.run_for(10)
            if flaky.down():
                peak_buffer = max(peak_buffer, len(tracker.buffer))
        traffic.cancel()
        await st.run_for(900)  # the callers in queue finish; the database is back
        await tracker.flush()
    finally:
        traffic.cancel()
        await gw.stop()
        await tracker.stop()
        await pbx.stop()
    acc = accounting(db, qlog)
    print("\nFIGURES db_outage: " + json.dumps({
        "outage_seconds": [b - a for a, b in windows], "failed_writes": flaky.failures,
        "write_errors_logged": tracker.write_errors, "peak_buffered_calls": peak_buffer,
        "expected": acc.expected, "stored": acc.stored, "missing": len(acc.missing),
        "duplicated": len(acc.duplicated), "wrong_outcome": len(acc.wrong_outcome)}))
    assert flaky.failures > 0 and peak_buffer > 0  # the outage really held finished calls back
    assert acc.expected > 100
    assert acc.exact, (acc.missing[:5], acc.duplicated[:5], acc.wrong_outcome[:5])
    assert acc.measured == acc.stored  # nothing reconstructed: AMI never dropped, only the DB did


@pytest.mark.timeout(30)
async def test_dialer_outcomes_survive_a_database_outage(db):
    """Attempts are in flight when the database goes away for 30 s; their outcomes
    (answered+ended, busy) arrive meanwhile.  None may be lost: a lost 'completed'
    would leave the attempt open, and reconciliation would call the patient again."""
    from sqlalchemy import select
    from twisted.internet.task import Clock

    from dialer.engine import Dialer, DialSettings
    from dialer.compliance import Rules
    from dialer.models import Attempt, Contact
    from dialer.pacing import StaticAgents

    from tests.support.dialer import FakeGateway, until
    from tests.support.dialer import T0, seed

    seed(db, n=3)
    clock = Clock()
    clock.advance(T0)
    flaky = FlakyDatabase(db, clock, [(T0 + 10, T0 + 40)])
    gw = FakeGateway(clock)
    d = Dialer(db=flaky, clock=clock, gateway=gw, rules=Rules(), autotick=False, instance="a",
               dial=DialSettings(max_rate=1e6), agents=StaticAgents())
    await d.start()
    try:
        await d.run_once()
        assert len(gw.originates) == 3
        a1, a2, a3 = (o["action_id"] for o in gw.originates)
        clock.advance(15)                      # the database is down now
        gw.answer(a1, "1795.1")
        gw.fail(a2, 5, 17, "1795.2")            # busy
        gw.answer(a3, "1795.3")
        gw.hangup("1795.1")
        await asyncio.sleep(0.05)
        clock.advance(30)                      # ... and back
        gw.hangup("1795.3")
        for _ in range(200):
            clock.advance(1)
            await asyncio.sleep(0.005)
            with db.session() as s:
                if all(a.state == "ended" for a in s.scalars(select(Attempt))):
                    break
        await d.idle()
    finally:
        await d.stop()
    with db.session() as s:
        attempts = {a.id: (a.state, a.disposition) for a in s.scalars(select(Attempt))}
    print("\nFIGURES dialer_db_outage: " + json.dumps({"failed_writes": flaky.failures,
                                                       "attempts": {str(k): v for k, v in attempts.items()}}))
    assert flaky.failures > 0
    assert all(state == "ended" for state, _ in attempts.values()), attempts
    assert [attempts[int(a)][1] for a in (a1, a2, a3)] == ["hungup", "busy", "hungup"]
