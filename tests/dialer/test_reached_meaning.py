"""One word, one meaning (issue 22.6): "reached" is an agent connected, on the attempt, in
``campaign status`` and on the web.  Through the simulated PBX: one patient answers and
gives up in the queue before the agent picks up (abandoned), the next one is taken."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from twisted.internet import reactor

from callcenter.clock import ScaledClock
from dialer.campaigns import contact_row, create_campaign, insert_contacts, status
from dialer.compliance import Rules
from dialer.models import Attempt, Campaign
from dialer.timeutil import to_dt
from tests.support.waiting import until

OPEN = dt.datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_reached_counts_patients_an_agent_took_not_answers_through_simulator(config, db, tmp_path):
    from callcenter.ami.gateway import AmiGateway
    from callcenter.queuecalls.tracker import QueueCallsTracker
    from callcenter.simulator import SimConfig, SimulatedPBX
    from dialer.engine import Dialer, DialSettings
    from dialer.pacing import QueueCallsAgents

    from tests.support.web import Client, FakeQueueCalls, add_users, running_web

    clock = ScaledClock(reactor, 30, start=OPEN)
    nums = ["13800138001", "13800138002"]

    def seed(s):
        c = create_campaign(s, name="no-shows", kind="no_show", mode="progressive", queue="consultation",
                            state="running")
        insert_contacts(s, [contact_row(c.id, f"a{i}", phone=f"+86{n}", name="", reason="no_show",
                                        ref_type="appointment", ref_id=i, due_after=to_dt(OPEN - 60 + i),
                                        due_before=None, patient_id=None, now=to_dt(OPEN - 60))
                            for i, n in enumerate(nums)])
        return c.id
    cid = db.call(seed)
    pbx = SimulatedPBX(clock, seed=1, spool_dir=tmp_path,
                       config=SimConfig(queues={"consultation": [("1001", "Agent 1001")]}))
    await pbx.start()
    pbx.set_agent("1001", answer_delay=6, talk_time=10)
    pbx.globals["AGENT_AUTOANSWER_DELAY"] = "6"   # this agent's phone does not auto-answer dialer calls
    pbx.set_patient(nums[0], "answer", ring=2, hold=2, delay=1)    # gone before the agent answers
    pbx.set_patient(nums[1], "answer", ring=2, hold=60, delay=1)
    gw = AmiGateway("127.0.0.1", pbx.ami_port, "bridge", "bridge-secret", clock=clock)
    tracker = QueueCallsTracker(db, clock, gateway=gw)

    rules = Rules(retry_minutes={"busy": 60.0, "no_answer": 60.0, "congestion": 60.0, "failed": 60.0,
                                 "hungup": 60.0, "abandoned": 60.0})
    d = Dialer(db=db, clock=clock, gateway=gw, rules=rules, instance="reach", agents=QueueCallsAgents(tracker),
               dial=DialSettings(channel_template="Local/{number}@sim-patient", max_rate=10))

    def attempts():
        with db.session() as s:
            return [(a.phone[3:], a.state, a.disposition, a.answered_at is not None)
                    for a in s.scalars(select(Attempt).order_by(Attempt.id))]
    try:
        await tracker.start()
        await gw.start()
        await gw.wait_connected(10)
        await until(lambda: len(QueueCallsAgents(tracker).free_agents("consultation").free) == 1)
        await d.start()
        await until(lambda: len(attempts()) == 2 and all(a[1] == "ended" for a in attempts()))
        await d.idle()
    finally:
        await d.stop()
        await gw.stop()
        await tracker.stop()
        await pbx.stop()
    assert attempts() == [(nums[0], "ended", "abandoned", True), (nums[1], "ended", "reached", True)]
    with db.session() as s:
        st = status(s, s.get(Campaign, cid), now=clock.seconds())
    assert (st["answered"], st["reached"]) == (2, 1)
    # the web shows the same figure, under a label that says what it is
    add_users(db)
    async with running_web(config, db, clock=clock, queuecalls=FakeQueueCalls()) as web:
        c = Client(web.port)
        await c.login("sup1")
        r = await c.get(f"/api/campaigns/{cid}")
        assert r.status == 200 and (r.json()["answered"], r.json()["reached"]) == (2, 1), r.text
        assert "Reached an agent" in (await c.get(f"/campaigns/{cid}")).text
