"""The agent's screen for outbound dialer calls: why the patient is called, and the result.

One test end to end (dialer -> AMI over TCP -> simulated PBX [dialer-agent] context ->
queue -> agent -> AgentConnect -> screen pop over SSE -> outcome over HTTP -> dialer rows),
time-scaled; the others drive the screen pop with AMI messages (VarSet + AgentConnect)."""
from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from twisted.internet import reactor
from twisted.internet.task import Clock

from callcenter.ami.codec import Message
from callcenter.clock import ScaledClock
from callcenter.store.models import AuditEntry, User
from callcenter.web.models import CallOutcome
from callcenter.web.passwords import hash_password
from dialer.campaigns import contact_row, create_campaign, insert_contacts
from dialer.models import Appointment, Attempt, Contact, DoNotCall, Patient, Treatment
from dialer.timeutil import to_dt

from tests.support.web import PASSWORD, Client, FakeGateway, FakeQueueCalls, SSEClient, add_users, running_web
from tests.support.waiting import until

OPEN = dt.datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
AGENT_IFACE = "Local/1001@sim-agent/n"   # agent1's interface in helpers.USERS


def seed_no_show(s, now: float):
    """Patient Zhang San missed a dental appointment: a no-show contact (progressive), and a
    revisit contact for the same number due later in another campaign."""
    p = Patient(external_id="H001", name="Zhang San", phone="+8613800138001", language="zh")
    s.add(p)
    s.flush()
    ap = Appointment(external_id="A1", patient_id=p.id, scheduled_at=to_dt(now - 3 * 3600), status="missed",
                     department="dental")
    tr = Treatment(external_id="T1", patient_id=p.id, treatment_type="implant", treated_at=to_dt(now - 86400 * 6),
                   doctor="Dr Wu")
    s.add_all([ap, tr])
    s.flush()
    ns = create_campaign(s, name="no-shows", kind="no_show", mode="progressive", queue="consultation",
                         state="running")
    rv = create_campaign(s, name="revisits", kind="revisit", mode="survey", state="running")
    insert_contacts(s, [
        contact_row(ns.id, f"appointment:{ap.id}", phone=p.phone, name=p.name, reason="no_show",
                    ref_type="appointment", ref_id=ap.id, due_after=to_dt(now - 60), due_before=None,
                    patient_id=p.id, now=to_dt(now - 60)),
        contact_row(rv.id, f"treatment:{tr.id}:day7", phone=p.phone, name=p.name, reason="revisit:implant:day7",
                    ref_type="treatment", ref_id=tr.id, due_after=to_dt(now + 86400), due_before=None,
                    patient_id=p.id, now=to_dt(now - 60))])


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_dialer_call_pops_why_and_agent_records_outcome_through_simulator(config, db, tmp_path):
    from callcenter.ami.gateway import AmiGateway
    from callcenter.queuecalls.tracker import QueueCallsTracker
    from callcenter.simulator import SimConfig, SimulatedPBX
    from dialer.compliance import Rules
    from dialer.engine import Dialer, DialSettings
    from dialer.pacing import QueueCallsAgents

    add_users(db)
    clock = ScaledClock(reactor, 20, start=OPEN)
    db.call(seed_no_show, OPEN)
    pbx = SimulatedPBX(clock, seed=1, spool_dir=tmp_path,
                       config=SimConfig(queues={"consultation": [("1001", "Agent 1001")]}))
    await pbx.start()
    pbx.set_agent("1001", answer_delay=1, talk_time=40)
    pbx.set_patient("13800138001", "answer", ring=2, hold=120, delay=1)
    gw = AmiGateway("127.0.0.1", pbx.ami_port, "bridge", "bridge-secret", clock=clock)
    tracker = QueueCallsTracker(db, clock, gateway=gw)

    dialer = Dialer(db=db, clock=clock, gateway=gw, rules=Rules(), instance="web", agents=QueueCallsAgents(tracker),
                    dial=DialSettings(channel_template="Local/{number}@sim-patient", max_rate=10))

    def attempts():
        with db.session() as s:
            return [(a.id, a.state, a.disposition) for a in s.scalars(select(Attempt).order_by(Attempt.id))]
    sse = None
    try:
        await tracker.start()
        await gw.start()
        await gw.wait_connected(10)
        async with running_web(config, db, clock=clock, queuecalls=tracker, gateway=gw) as web:
            c = Client(web.port)
            await c.login("agent1")
            sse = await SSEClient.open(web.port, "/events/agent", c.cookies)
            await sse.next_event("status")
            await until(lambda: len(QueueCallsAgents(tracker).free_agents("consultation").free) == 1)
            await dialer.start()
            _, pop = await sse.next_event("pop", timeout=20)
            d = pop["dialer"]
            # found through the VarSet ATTEMPT_ID the PBX reported for the call (same Linkedid)
            assert web.app.screenpop.dialer.by_linked.get(pop["uniqueid"]) == d["attempt_id"]
            aid = attempts()[0][0]
            assert (d["attempt_id"], d["campaign"], d["kind"], d["outcomes"]) == (
                aid, "no-shows", "no_show", ["rebooked", "declined"])
            assert d["why"]["appointment"]["department"] == "dental" and d["why"]["appointment"]["status"] == "missed"
            # the patient's record, not the hospital's caller ID the call carries
            assert pop["record"]["name"] == "Zhang San" and pop["record"]["number"] == "+8613800138001"
            assert [t["type"] for t in pop["record"]["treatments"]] == ["implant"]
            page = (await c.get("/agent")).text
            assert "Missed appointment on" in page and f'id="d-attempt" value="{aid}"' in page
            # the agent rebooks; the patient also asks never to be called again
            r = await c.post("/api/agent/dialer-outcome", json_body={
                "attempt_id": aid, "outcome": "rebooked", "do_not_call": True, "note": "Thursday 9:00"},
                headers={"X-CSRF-Token": await c.csrf()})
            assert r.status == 201, r.text
            assert (r.json()["outcome"], r.json()["do_not_call"], r.json()["other_contacts_closed"]) == (
                "rebooked", True, 1)
            await until(lambda: attempts()[0][1] == "ended", limit=30)
            await dialer.idle()
    finally:
        if sse is not None:
            sse.close()
        await dialer.stop()
        await gw.stop()
        await tracker.stop()
        await pbx.stop()
    assert [a[2] for a in attempts()] == ["reached"]
    with db.session() as s:
        contacts = {c.reason: (c.state, c.outcome) for c in s.scalars(select(Contact))}
        dnc = s.scalar(select(DoNotCall))
        audited = [(a.actor, a.action, a.object_id) for a in s.scalars(select(AuditEntry))
                   if a.action == "dialer_outcome"]
    assert contacts == {"no_show": ("done", "rebooked"), "revisit:implant:day7": ("done", "opted_out")}
    assert (dnc.phone, dnc.source) == ("+8613800138001", "agent")
    assert audited == [("agent1", "dialer_outcome", str(aid))]


def seed_followup(s, now: float) -> tuple[int, int, str]:
    """A resolved complaint ticket and its follow-up call, placed (attempt) and answered."""
    from tests import support

    d = support.domain()
    api, complaints = d.dialer, d.complaints
    t = complaints.open_ticket(s, actor="sup1", category="attitude", severity="normal", channel="phone",
                               summary="rude at the front desk", received_at=to_dt(now - 86400 * 3),
                               patient_phone="+8613800138002", patient_name="Li Si", language="zh")
    steps = ["acknowledged", "investigating", "answered", "resolved"]
    for step in steps[steps.index(t.status) + 1 if t.status in steps else 0:]:
        complaints.transition(s, t.id, step, actor="sup1", at=to_dt(now - 3600), note="done")
    s.flush()
    cid = s.scalar(select(Contact.id).where(Contact.ref_type == "complaint"))
    if cid is None:  # complaints hands follow-ups to the dialer itself when it can
        cid = api.schedule_followup(s, phone="+8613800138002", name="Li Si", ref_type="complaint", ref_id=t.id)
    c = s.get(Contact, cid)
    c.state, c.attempts = "dialing", 1
    a = Attempt(contact_id=c.id, campaign_id=c.campaign_id, phone=c.phone, state="answered", disposition="",
                started_at=to_dt(now - 30), answered_at=to_dt(now - 20), uniqueid="1764036000.42",
                channel="Local/13800138002@trunk-00000001;1")
    s.add(a)
    s.flush()
    return a.id, t.id, t.number


def agent_connect(linkedid, iface=AGENT_IFACE, cid="02100000000"):
    return Message([("Event", "AgentConnect"), ("Channel", "Local/13800138002@trunk-00000001;1"),
                    ("CallerIDNum", cid), ("CallerIDName", "City Hospital"), ("Uniqueid", linkedid),
                    ("Linkedid", linkedid), ("Queue", "consultation"), ("Interface", iface),
                    ("MemberName", "Agent 1001"), ("HoldTime", "3")])


def varset(linkedid, aid):
    return Message([("Event", "VarSet"), ("Channel", "Local/13800138002@trunk-00000001;2"),
                    ("Uniqueid", linkedid[:-2] + "43"), ("Linkedid", linkedid), ("Variable", "ATTEMPT_ID"),
                    ("Value", str(aid))])


@pytest.mark.postgres
async def test_complaint_followup_pop_and_outcome_rules(config, db):
    from callcenter.complaints.models import ComplaintTicket

    add_users(db)
    with db.session() as s:
        s.add(User(username="agent2", display_name="Agent2", role="agent", interface="Local/1002@sim-agent/n",
                   language="zh", password_hash=hash_password(PASSWORD, n=2**10), active=True))
    clock = Clock()
    clock.advance(OPEN)
    aid, ticket_id, number = db.call(seed_followup, OPEN)
    gw = FakeGateway()
    async with running_web(config, db, clock=clock, queuecalls=FakeQueueCalls(), gateway=gw) as web:
        c = Client(web.port)
        await c.login("agent1")
        sse = await SSEClient.open(web.port, "/events/agent", c.cookies)
        await sse.next_event("status")
        gw.emit(varset("1764036000.42", aid))
        gw.emit(agent_connect("1764036000.42"))
        _, pop = await sse.next_event("pop", timeout=5)
        sse.close()
        d = pop["dialer"]
        assert (d["kind"], d["outcomes"], d["asks_satisfaction"]) == ("complaint_followup", ["completed", "declined"],
                                                                     True)
        assert d["why"]["complaint"]["number"] == number and d["why"]["complaint"]["status"] == "resolved"
        assert pop["record"]["name"] == "Li Si"
        page = (await c.get("/agent")).text
        assert f"Follow-up of complaint {number}: rude at the front desk" in page
        # headed as outbound, with only the dialer's result form
        assert pop["direction"] == "outbound" and "Outbound call" in page
        assert 'id="outcome-form" class="outcome" hidden' in page
        h = {"X-CSRF-Token": await c.csrf()}
        for body, field in (({"attempt_id": aid, "outcome": "completed"}, "satisfied"),
                            ({"attempt_id": aid, "outcome": "rebooked"}, "outcome"),
                            ({"attempt_id": aid}, "outcome"), ({"attempt_id": "x", "outcome": "declined"}, "attempt_id"),
                            ({"attempt_id": aid, "outcome": "completed", "satisfied": "maybe"}, "satisfied")):
            r = await c.post("/api/agent/dialer-outcome", json_body=body, headers=h)
            assert r.status == 400 and f": {field}:" in r.json()["error"], (body, r.text)
        r = await c.post("/api/agent/dialer-outcome", json_body={"attempt_id": 999, "outcome": "declined"}, headers=h)
        assert r.status == 404
        # another agent cannot record this agent's call
        other = Client(web.port)
        await other.login("agent2")
        r = await other.post("/api/agent/dialer-outcome", json_body={"attempt_id": aid, "outcome": "declined"},
                             headers={"X-CSRF-Token": await other.csrf()})
        assert r.status == 403
        # the form: satisfied -> the ticket is revisited through dialer.api.record_outcome; saved
        # twice at once (a double click): one result, the other refused (409), one outcome row
        form = {"csrf_token": h["X-CSRF-Token"], "attempt_id": str(aid), "outcome": "completed", "satisfied": "yes",
                "note": "happy now"}
        got = await asyncio.gather(*(c.post("/agent/dialer-outcome", form) for _ in range(2)))
        assert sorted(r.status for r in got) == [303, 409], [r.text for r in got]
        assert next(r for r in got if r.status == 303).location == "/agent"
        assert "Result saved" in (await c.get("/agent")).text
        assert db.call(lambda s: len(list(s.scalars(select(CallOutcome))))) == 1
    with db.session() as s:
        contact = s.get(Contact, s.get(Attempt, aid).contact_id)
        ticket = s.get(ComplaintTicket, ticket_id)
        assert contact.outcome == "completed"
        assert ticket.satisfied is True and ticket.status in ("revisited", "closed")
        assert s.scalar(select(DoNotCall)) is None


async def test_pop_after_web_restart_finds_the_call_by_its_channel(config, db):
    """No VarSet seen (the web started mid-call): a call from the dialer's caller ID is looked up
    by the Uniqueid the dialer recorded; an inbound call is not a dialer call."""
    add_users(db)
    clock = Clock()
    clock.advance(OPEN)
    aid, _, _ = db.call(seed_followup, OPEN)
    gw = FakeGateway()
    async with running_web(config, db, clock=clock, queuecalls=FakeQueueCalls(), gateway=gw) as web:
        c = Client(web.port)
        await c.login("agent1")
        sse = await SSEClient.open(web.port, "/events/agent", c.cookies)
        await sse.next_event("status")
        gw.emit(agent_connect("1764036000.42"))
        _, pop = await sse.next_event("pop", timeout=5)
        assert pop["dialer"]["attempt_id"] == aid and pop["record"]["number"] == "+8613800138002"
        gw.emit(agent_connect("1764036000.42", cid="13900000000"))   # an inbound caller
        _, pop = await sse.next_event("pop", timeout=5)
        assert pop["dialer"] is None and pop["record"]["number"] == "13900000000"
        sse.close()
        assert "pop-dialer" in (await c.get("/agent")).text
