"""Campaigns end to end: dialer -> AmiGateway -> simulated PBX over real AMI TCP ->
context survey -> AGI(revisit_survey) over real FastAGI TCP -> dialer.api.record_survey_result.

Covers busy, no answer, congestion, an answered survey, an opt-out, 0 for an agent, a busy
retry after its delay, crash/restart, the window's closing edge and progressive dialling,
on time-scaled clocks (a minute of campaign in about a second)."""
from __future__ import annotations

from dialer.pacing import StaticAgents

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from twisted.internet import reactor

from callcenter.clock import ScaledClock
from dialer.campaigns import contact_row, create_campaign, insert_contacts, status
from dialer.compliance import Rules
from dialer.engine import Dialer, DialSettings
from dialer.models import Attempt, Campaign, Contact
from dialer.timeutil import to_dt, to_ts

from tests import support
from tests.support.waiting import until

api = support.domain().dialer  # the dialer API as serve wires it

pytestmark = pytest.mark.slow

OPEN = dt.datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
PATIENTS = {  # national number -> (simulated behaviour, survey digits)
    "13800138001": ("answer", "1w4w5"),
    "13800138002": ("busy", ""),
    "13800138003": ("noanswer", ""),
    "13800138004": ("congestion", ""),
    "13800138005": ("answer", "9"),
    "13800138006": ("answer", "0"),
}


@pytest.mark.postgres
@pytest.mark.timeout(90)
async def test_survey_campaign_through_simulator(db, tmp_path):
    from callcenter.ami.gateway import AmiGateway
    from callcenter.simulator import SimulatedPBX
    from tests import support

    clock = ScaledClock(reactor, 60, start=OPEN)

    def seed(s):
        c = create_campaign(s, name="revisit-survey", kind="revisit", mode="survey", state="running",
                            max_attempts=2)
        insert_contacts(s, [contact_row(c.id, f"t{i}", phone=f"+86{num}", name=f"P{i}", reason="revisit",
                                        ref_type="treatment", ref_id=i, due_after=to_dt(OPEN - 60),
                                        due_before=None, patient_id=None, now=to_dt(OPEN - 60))
                            for i, num in enumerate(PATIENTS)])
    db.call(seed)

    server = support.agi_server(clock=clock, db=db)
    await server.start()
    pbx = SimulatedPBX(clock, seed=1, spool_dir=tmp_path, agi_port=server.port)
    await pbx.start()
    for num, (outcome, digits) in PATIENTS.items():
        # The one who presses 0 stays on 120 s (2 s of wall time at x60) for the flow to reach an
        # agent: with 30 (0.5 s), a loaded machine's slower AGI round trips let it hang up first
        # ("hungup" instead of "reached": seen under load 10-15).
        pbx.set_patient(num, outcome, ring=2, survey_digits=digits or "4", hold=120 if digits == "0" else 30,
                        delay=1)
    gw = AmiGateway("127.0.0.1", pbx.ami_port, "bridge", "bridge-secret", clock=clock)
    rules = Rules(retry_minutes={"busy": 1.0, "no_answer": 60.0, "congestion": 60.0, "failed": 60.0,
                                 "hungup": 60.0, "abandoned": 60.0})
    dialer = Dialer(agents=StaticAgents(), db=db, clock=clock, gateway=gw, rules=rules, instance="e2e",
                    dial=DialSettings(channel_template="Local/{number}@sim-patient", originate_timeout=20,
                                      max_rate=20, caller_id='"City Hospital" <02100000000>'))
    try:
        await gw.start()
        await gw.wait_connected(10)
        await dialer.start()

        def attempts():
            with db.session() as s:
                return {a.id: a for a in s.scalars(select(Attempt).order_by(Attempt.id))}

        # first round: every contact dialled once and finished; then the busy one again
        await until(lambda: len(attempts()) >= 7 and all(a.state == "ended" for a in attempts().values()))
        await dialer.idle()
    finally:
        await dialer.stop()
        await gw.stop()
        await pbx.stop()
        await server.stop()

    by_phone: dict[str, list[Attempt]] = {}
    for a in attempts().values():
        by_phone.setdefault(a.phone[3:], []).append(a)
    first = {num: rows[0] for num, rows in by_phone.items()}
    assert (first["13800138001"].disposition, first["13800138001"].survey) == (
        "completed", {"recovery": "4", "satisfaction": "5"})
    assert first["13800138001"].uniqueid and first["13800138001"].reason_code == 4
    assert (first["13800138002"].disposition, first["13800138002"].reason_code,
            first["13800138002"].hangup_cause) == ("busy", 5, 17)
    assert (first["13800138003"].disposition, first["13800138003"].reason_code) == ("no_answer", 3)
    assert (first["13800138004"].disposition, first["13800138004"].reason_code) == ("congestion", 8)
    assert first["13800138005"].disposition == "opted_out"
    assert first["13800138006"].disposition == "reached" and first["13800138006"].agent  # pressed 0
    # busy retried once after its 1-minute delay, and only that contact; then it gave up (max 2)
    assert [len(by_phone[n]) for n in PATIENTS] == [1, 2, 1, 1, 1, 1]
    b1, b2 = by_phone["13800138002"]
    assert to_ts(b2.started_at) - to_ts(b1.started_at) >= 60
    with db.session() as s:
        assert api.is_do_not_call(s, "+8613800138005")
        outcomes = {c.phone[3:]: (c.state, c.outcome) for c in s.scalars(select(Contact))}
        st = status(s, s.scalar(select(Campaign)), now=clock.seconds())
    assert outcomes["13800138001"] == ("done", "completed")
    assert outcomes["13800138002"] == ("done", "unreachable")
    assert outcomes["13800138005"] == ("done", "opted_out")
    assert outcomes["13800138003"][0] == "pending"
    assert outcomes["13800138006"] == ("done", "reached")
    assert st["completed"] == 2 and st["opted_out"] == 1 and st["survey_score_avg"] == 4.5  # survey + agent
    # The survey sessions name the patient who was dialled (E.164, like every stored number),
    # not the hospital's own CallerID that Asterisk hands the AGI as agi_callerid.
    from ivr_flows.models import IvrSession
    with db.session() as s:
        sessions = {r.caller_number: r for r in s.scalars(select(IvrSession))}
    assert set(sessions) == {"+8613800138001", "+8613800138005", "+8613800138006"}
    assert sessions["+8613800138001"].digits == "1,4,5"


@pytest.mark.postgres
@pytest.mark.timeout(90)
async def test_crash_and_restart_never_dials_twice_through_simulator(db, tmp_path):
    """The dialer dies with two calls in flight (one ringing, one in the survey); a new process
    with the same instance name must not redial either within the retry delay: the ringing one
    is redialled only after it, the answered one never (its survey result still arrives)."""
    from callcenter.ami.gateway import AmiGateway
    from callcenter.simulator import SimulatedPBX

    clock = ScaledClock(reactor, 60, start=OPEN)

    def seed(s):
        c = create_campaign(s, name="revisit-survey", kind="revisit", mode="survey", state="running")
        insert_contacts(s, [contact_row(c.id, f"t{i}", phone=f"+86{num}", name=f"P{i}", reason="revisit",
                                        ref_type="treatment", ref_id=i, due_after=to_dt(OPEN - 60),
                                        due_before=None, patient_id=None, now=to_dt(OPEN - 60))
                            for i, num in enumerate(["13800138001", "13800138003"])])
    db.call(seed)
    server = support.agi_server(clock=clock, db=db)
    await server.start()
    pbx = SimulatedPBX(clock, seed=1, spool_dir=tmp_path, agi_port=server.port)
    await pbx.start()
    pbx.set_patient("13800138001", "answer", ring=2, survey_digits="1w4w5", hold=30, delay=3)
    pbx.set_patient("13800138003", "noanswer")
    rules = Rules(retry_minutes={k: 2.0 for k in ("busy", "no_answer", "congestion", "failed", "hungup",
                                                   "abandoned")})
    dial = DialSettings(channel_template="Local/{number}@sim-patient", originate_timeout=20, max_rate=20)

    def attempts():
        with db.session() as s:
            return [(a.phone[3:], a.state, a.disposition, to_ts(a.started_at))
                    for a in s.scalars(select(Attempt).order_by(Attempt.id))]

    gw1 = AmiGateway("127.0.0.1", pbx.ami_port, "bridge", "bridge-secret", clock=clock)
    gw2 = AmiGateway("127.0.0.1", pbx.ami_port, "bridge", "bridge-secret", clock=clock)
    d1 = Dialer(agents=StaticAgents(), db=db, clock=clock, gateway=gw1, rules=rules, instance="box", dial=dial)
    d2 = Dialer(agents=StaticAgents(), db=db, clock=clock, gateway=gw2, rules=rules, instance="box", dial=dial)
    try:
        await gw1.start()
        await gw1.wait_connected(10)
        await d1.start()
        await until(lambda: d1.originated == 2 and pbx.processed_calls == 2)
        await until(lambda: pbx.processed_calls == 2)
        # crash: the process and its AMI session vanish while both calls are up
        await d1.stop()
        await gw1.stop()
        restart = clock.seconds()
        await gw2.start()
        await gw2.wait_connected(10)
        await d2.start()
        assert [a[1] for a in attempts()] == ["unknown", "unknown"]
        # the survey of the answered call completes on its own and is recorded
        await until(lambda: attempts()[0][2] == "completed")
        await until(lambda: len(attempts()) == 3 and d2.originated == 1 and pbx.processed_calls == 3)
        await d2.idle()
    finally:
        await d2.stop()
        await gw2.stop()
        await pbx.stop()
        await server.stop()
    rows = attempts()
    assert [r[0] for r in rows] == ["13800138001", "13800138003", "13800138003"]
    assert rows[2][3] >= restart + 120           # not before the longest retry delay
    assert pbx.processed_calls == 3
    with db.session() as s:
        assert s.scalar(select(Contact).where(Contact.phone == "+8613800138001")).outcome == "completed"


@pytest.mark.timeout(60)
async def test_no_call_starts_after_the_window_closes(db, tmp_path):
    """Claimed at 19:59:52 but paced at one call per 2 s: the calls whose turn comes after
    20:00:00 are handed back (not counted) and wait for the next morning."""
    from callcenter.ami.gateway import AmiGateway
    from callcenter.simulator import SimulatedPBX

    start = dt.datetime(2026, 11, 25, 19, 59, 52, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
    clock = ScaledClock(reactor, 4, start=start)
    nums = [f"1380013810{i}" for i in range(8)]

    def seed(s):
        c = create_campaign(s, name="late", kind="revisit", mode="survey", state="running")
        insert_contacts(s, [contact_row(c.id, f"t{i}", phone=f"+86{n}", name="", reason="revisit",
                                        ref_type="t", ref_id=i, due_after=to_dt(start - 60), due_before=None,
                                        patient_id=None, now=to_dt(start - 60)) for i, n in enumerate(nums)])
    db.call(seed)
    pbx = SimulatedPBX(clock, seed=1, spool_dir=tmp_path)
    await pbx.start()
    for n in nums:
        pbx.set_patient(n, "busy")
    gw = AmiGateway("127.0.0.1", pbx.ami_port, "bridge", "bridge-secret", clock=clock)
    d = Dialer(agents=StaticAgents(), db=db, clock=clock, gateway=gw, rules=Rules(), instance="late",
               dial=DialSettings(channel_template="Local/{number}@sim-patient", max_rate=0.5))
    try:
        await gw.start()
        await gw.wait_connected(10)
        await d.start()
        await until(lambda: clock.seconds() > start + 10)
        await d.idle()
    finally:
        await d.stop()
        await gw.stop()
        await pbx.stop()
    with db.session() as s:
        sent = [a for a in s.scalars(select(Attempt)) if a.disposition != "not_sent"]
        cs = list(s.scalars(select(Contact).order_by(Contact.id)))
    close = dt.datetime(2026, 11, 25, 20, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
    assert 2 <= len(sent) <= 4
    assert all(t < close for t in d.send_times) and len(d.send_times) == len(sent)
    assert pbx.processed_calls == len(sent)
    waiting = [c for c in cs if c.attempts == 0]
    assert len(waiting) == 8 - len(sent) and all(c.state == "pending" for c in waiting)


@pytest.mark.timeout(90)
async def test_progressive_dials_only_for_free_agents_through_simulator(db, tmp_path):
    """Progressive no-show campaign with the real queuecalls tracker as the source of free
    agents: one agent -> one call at a time; the patient is queued to the agent, the call is
    'reached', and the next patient is dialled only after the agent is free again."""
    from callcenter.ami.gateway import AmiGateway
    from callcenter.queuecalls.tracker import QueueCallsTracker
    from callcenter.simulator import SimulatedPBX, SimConfig
    from dialer.pacing import QueueCallsAgents

    clock = ScaledClock(reactor, 30, start=OPEN)
    nums = ["13800138001", "13800138002", "13800138003"]

    def seed(s):
        c = create_campaign(s, name="no-shows", kind="no_show", mode="progressive", queue="consultation",
                            state="running")
        insert_contacts(s, [contact_row(c.id, f"a{i}", phone=f"+86{n}", name="", reason="no_show",
                                        ref_type="appointment", ref_id=i, due_after=to_dt(OPEN - 60),
                                        due_before=None, patient_id=None, now=to_dt(OPEN - 60))
                            for i, n in enumerate(nums)])
    db.call(seed)
    pbx = SimulatedPBX(clock, seed=1, spool_dir=tmp_path,
                       config=SimConfig(queues={"consultation": [("1001", "Agent 1001")]}))
    await pbx.start()
    pbx.set_agent("1001", answer_delay=1, talk_time=20)
    for n in nums:
        pbx.set_patient(n, "answer", ring=2, hold=60, delay=1)
    gw = AmiGateway("127.0.0.1", pbx.ami_port, "bridge", "bridge-secret", clock=clock)
    tracker = QueueCallsTracker(db, clock, gateway=gw)

    d = Dialer(db=db, clock=clock, gateway=gw, rules=Rules(), instance="prog", agents=QueueCallsAgents(tracker),
               dial=DialSettings(channel_template="Local/{number}@sim-patient", max_rate=10))

    def attempts():
        with db.session() as s:
            return [(a.phone[3:], a.state, a.disposition, a.agent, to_ts(a.started_at), to_ts(a.ended_at))
                    for a in s.scalars(select(Attempt).order_by(Attempt.id))]
    peak = [0]
    try:
        await tracker.start()
        await gw.start()
        await gw.wait_connected(10)
        await until(lambda: len(QueueCallsAgents(tracker).free_agents("consultation").free) == 1)
        await d.start()

        def done():
            rows = attempts()
            # calls out and not yet with the agent: one that the agent took and finished may
            # still read "answered" a moment (its Hangup processed after AgentComplete freed
            # the agent, seen under the full suite's load); its talk is checked below
            peak[0] = max(peak[0], sum(1 for r in rows if r[1] != "ended" and not r[3]))
            return len(rows) == 3 and all(r[1] == "ended" for r in rows)
        await until(done, limit=60)
        await d.idle()
    finally:
        await d.stop()
        await gw.stop()
        await tracker.stop()
        await pbx.stop()
    rows = attempts()
    assert [r[2] for r in rows] == ["reached"] * 3
    assert all(r[3] for r in rows)                        # an agent took every call
    assert peak[0] == 1                                   # never more calls out than free agents
    # the next patient is dialled only once the agent has finished the previous 20 s talk
    # (compared with the talk, not the attempt's end: the patient's Hangup may be
    # processed a moment after AgentComplete frees the agent)
    assert rows[1][4] >= rows[0][4] + 20 and rows[2][4] >= rows[1][4] + 20
    with db.session() as s:
        st = status(s, s.scalar(select(Campaign)), now=clock.seconds())
    assert st["reached"] == 3 and st["abandon_rate"] == 0.0
