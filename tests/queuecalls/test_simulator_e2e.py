"""End to end through the simulated PBX: real AMI over TCP -> gateway -> tracker -> database.

Everything runs on one ``task.Clock``, stepped timer by timer by the fault harness's
``Stepper`` (it waits until every byte the simulator wrote has reached the gateway), so
arrival times are exact.
"""
from __future__ import annotations

import asyncio
import random

import pytest
from sqlalchemy import select
from twisted.internet import task

from callcenter.ami.gateway import AmiGateway
from callcenter.queuecalls.models import AmiOutage, QueueCall
from callcenter.queuecalls.tracker import QueueCallsTracker
from callcenter.simulator import SimulatedPBX

from tests.support.harness import Stepper


@pytest.mark.timeout(60)
async def test_simulated_calls_and_a_dropped_link(db, tmp_path):
    clock = task.Clock()
    clock.advance(1_795_400_000)
    pbx = SimulatedPBX(clock, seed=2, queue_log=tmp_path / "queue_log")
    await pbx.start()
    gw = AmiGateway("127.0.0.1", pbx.ami_port, "bridge", "bridge-secret", clock=clock,
                    ping_interval=3600, action_timeout=600, reconnect_base_delay=1,
                    rng=random.Random(5))
    tracker = QueueCallsTracker(db, clock, gateway=gw, queue_log=str(tmp_path / "queue_log"))
    drv = Stepper(clock, [pbx], gw, tracker)
    await tracker.start()
    await gw.start()
    try:
        await gw.wait_connected(5)
        calls = {"fast": pbx.inbound_call("13800138001", "Li Na", context="hotline-plain", digits="1")}
        await drv.run_for(30)
        for agent in ("1001", "1002", "2001", "2002"):  # nobody answers for a while
            pbx.set_agent(agent, answer_delay=40)
        calls["gone"] = pbx.inbound_call("13900139003", "Zhang Min", context="hotline-plain",
                                         digits="2", patience=35)
        calls["slow"] = pbx.inbound_call("13300133008", "Zhou Qing", context="hotline-timeout",
                                         digits="1")
        await drv.run_for(90)
        # a caller waits; the link drops while she waits and comes back (resync)
        pbx.set_agent("1001", answer_delay=12)
        pbx.set_agent("1002", answer_delay=12)
        calls["drop"] = pbx.inbound_call("13800138002", "王小明", context="hotline-plain", digits="1",
                                         patience=120)
        await drv.run_for(8)
        assert [c.caller_name for c in tracker.state.calls.values()] == ["王小明"]
        for s in list(pbx.ami.sessions):
            s.transport.abort()
        while gw.connected:
            await asyncio.sleep(0.001)
        drv.rebase()
        await drv.run_for(120)
        assert gw.connected and gw.connects == 2
        await tracker.flush()
    finally:
        await gw.stop()
        await tracker.stop()
        await pbx.stop()

    with db.session() as s:
        rows = {r.uniqueid: r for r in s.scalars(select(QueueCall))}
        outages = list(s.scalars(select(AmiOutage)))
    assert len(rows) == 4
    want = {"fast": ("answered", True), "gone": ("abandoned", None), "slow": ("timeout", None),
            "drop": ("answered", True)}
    for key, call in calls.items():
        r = rows[call.uniqueid]
        assert call.outcome == r.outcome == want[key][0], key
        assert r.within_target is want[key][1], key
        assert not r.gap, key  # the drop did not lose the join: measured, not guessed
    assert rows[calls["fast"].uniqueid].wait_seconds < 10
    assert rows[calls["gone"].uniqueid].wait_seconds == pytest.approx(35, abs=1.5)
    assert rows[calls["slow"].uniqueid].wait_seconds == pytest.approx(10, abs=0.5)
    assert 11 <= rows[calls["drop"].uniqueid].wait_seconds <= 14
    assert rows[calls["drop"].uniqueid].caller_name == "王小明"
    (o,) = outages
    assert o.recovered_from_queue_log and o.recovered_calls == 0
