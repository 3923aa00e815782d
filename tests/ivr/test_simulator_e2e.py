"""Hotline calls through the full simulated PBX: AMI-originated caller -> AGI(hotline) over
real FastAGI TCP -> Queue(${QUEUE}) with ${QUEUE_PRIO}; the IVR session is stored."""
from __future__ import annotations


import pytest
from sqlalchemy import select
from twisted.internet import reactor

from callcenter.clock import ScaledClock
from ivr_flows.models import IvrSession
from tests import support

from tests.support.ivr import OPEN
from tests.support.waiting import until

pytestmark = pytest.mark.slow


@pytest.mark.timeout(60)
async def test_hotline_calls_through_simulator(db, tmp_path):
    from callcenter.simulator import SimulatedPBX

    clock = ScaledClock(reactor, 40, start=OPEN)
    server = support.agi_server(clock=clock, db=db)
    await server.start()
    pbx = SimulatedPBX(clock, seed=3, spool_dir=tmp_path, agi_port=server.port)
    await pbx.start()
    try:
        pbx.add_agent("consultation", "1001", "Agent A", answer_delay=1, talk_time=2)
        pbx.add_agent("complaint", "2001", "Agent B", answer_delay=1, talk_time=2)
        consult = pbx.inbound_call("13800138001", "Li Na", context="hotline", digits="2w1",
                                   digit_delay=0.5, patience=40)
        urgent = pbx.inbound_call("13900139003", "张敏", context="hotline", digits="1w3w9",
                                  digit_delay=0.5, patience=40)
        gone = pbx.inbound_call("13700137004", "Liu Yang", context="hotline", digits="",
                                digit_delay=0.5, patience=2)
        await until(lambda: consult.done and urgent.done and gone.done)
    finally:
        await pbx.stop()
        await server.stop()
    with db.session() as s:
        rows = {r.uniqueid: r for r in s.scalars(select(IvrSession))}
    assert consult.queue == "consultation" and consult.outcome == "answered"
    assert urgent.queue == "complaint" and urgent.outcome == "answered"
    assert consult.channel.variables["IVR_SESSION"] == str(rows[consult.uniqueid].id)
    assert urgent.channel.variables["QUEUE_PRIO"] == "10"
    assert rows[consult.uniqueid].result == "queued:consultation"
    assert rows[consult.uniqueid].language == "en"
    assert rows[urgent.uniqueid].digits == "1,3,9"
    assert rows[gone.uniqueid].result == "hangup" and rows[gone.uniqueid].ended_at is not None
    assert gone.queue is None


@pytest.mark.timeout(60)
async def test_session_stores_e164_number_and_every_key_pressed(db, tmp_path):
    """Issue 14.10: the IVR stored ``13800138001`` (queue calls store E.164) and dropped the
    rejected key: Asterisk returned 7, the row said ``2,1``."""
    from callcenter.simulator import SimulatedPBX

    clock = ScaledClock(reactor, 40, start=OPEN)
    server = support.agi_server(clock=clock, db=db)
    await server.start()
    pbx = SimulatedPBX(clock, seed=3, spool_dir=tmp_path, agi_port=server.port)
    await pbx.start()
    try:
        pbx.add_agent("consultation", "1001", "Agent A", answer_delay=1, talk_time=2)
        caller = pbx.inbound_call("13800138001", "Li Na", context="hotline", digits="7w2w1",
                                  digit_delay=0.5, patience=40)
        await until(lambda: caller.done)
    finally:
        await pbx.stop()
        await server.stop()
    with db.session() as s:
        row = s.scalars(select(IvrSession).where(IvrSession.uniqueid == caller.uniqueid)).one()
    assert caller.queue == "consultation"
    assert row.caller_number == "+8613800138001"
    assert row.digits == "7!,2,1"
    assert row.language == "en" and row.result == "queued:consultation"
