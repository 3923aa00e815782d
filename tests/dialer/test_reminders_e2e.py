"""Appointment reminders end to end: imported appointments -> a `reminder` campaign -> the
dialer over real AMI TCP to the simulated PBX -> context survey -> AGI(appointment_reminder)
over real FastAGI TCP (SURVEY_FLOW) -> the answer stored on the appointment; and the hotline
caller who confirms an appointment in the IVR with the same storage."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from twisted.internet import reactor

from callcenter.clock import ScaledClock
from dialer import appointments
from dialer.campaigns import Settings, create_campaign, materialize
from dialer.compliance import Rules
from dialer.engine import Dialer, DialSettings
from dialer.importer import import_rows
from dialer.models import Appointment, Attempt, Contact, Patient
from dialer.pacing import StaticAgents
from dialer.timeutil import to_ts
from ivr_flows.models import IvrSession
from tests import support
from tests.support.waiting import until

pytestmark = pytest.mark.slow

SH = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=SH).timestamp()   # Tuesday, in the calling window
SETTINGS = Settings(reminder_lead_hours=24, reminder_stop_minutes=60)
RULES = Rules(retry_minutes={k: 60.0 for k in ("busy", "no_answer", "congestion", "failed", "hungup",
                                               "abandoned")})
PATIENTS = [  # patient id (8 digits, Luhn), national number, language, digits pressed
    ("10000016", "13800138001", "zh", "1"),   # confirm
    ("10000024", "13800138002", "en", "3"),   # cancel
    ("10000032", "13800138003", "zh", "2"),   # reschedule: to an agent
    ("10000040", "13800138004", "zh", "9"),   # no more reminders
    ("10000057", "13800138005", "zh", "1"),   # appointment cancelled at the hospital: no call
    ("10000065", "13800138006", "zh", "1"),   # appointment already past: no call
]


def _import(db, kind, rows, now=NOW):
    def work(s):
        r = import_rows(s, kind, rows, "test", region="CN", settings=SETTINGS, rules=RULES, now=now)
        assert r.applied, r.errors
        return r
    return db.call(work)


def _appointments(day_offset=1):
    tomorrow = dt.datetime.fromtimestamp(NOW, SH).date() + dt.timedelta(days=day_offset)
    at = f"{tomorrow.isoformat()} 09:30"
    rows = [{"appointment_id": f"A{i}", "patient_id": pid, "scheduled_at": at, "status": "booked",
             "department": "dental", "doctor": "Dr Wang"} for i, (pid, *_rest) in enumerate(PATIENTS[:4], 1)]
    rows.append({"appointment_id": "A5", "patient_id": PATIENTS[4][0], "scheduled_at": at, "status": "cancelled",
                 "department": "dental"})
    rows.append({"appointment_id": "A6", "patient_id": PATIENTS[5][0], "scheduled_at": "2026-11-23 09:30",
                 "status": "booked", "department": "dental"})
    return rows


@pytest.mark.postgres
@pytest.mark.timeout(90)
async def test_reminder_campaign_answers_land_on_the_appointments(db, tmp_path):
    from callcenter.ami.gateway import AmiGateway
    from callcenter.simulator import SimulatedPBX

    _import(db, "patients", [{"patient_id": pid, "name": f"P{pid}", "phone": num, "language": lang}
                             for pid, num, lang, _ in PATIENTS])
    db.call(lambda s: create_campaign(s, name="reminders", kind="reminder", mode="survey", state="running",
                                      max_attempts=2).id)
    result = _import(db, "appointments", _appointments())
    assert result.contacts_created == 4              # cancelled and past appointments get none
    # materialising again (or a second reminder campaign) adds nothing: one reminder per slot
    again = db.call(lambda s: materialize(s, create_campaign(s, name="reminders-2", kind="reminder",
                                                             mode="survey"), now=NOW, settings=SETTINGS,
                                          rules=RULES))
    assert again == 0
    with db.session() as s:
        due = {c.phone[3:]: c for c in s.scalars(select(Contact))}
    appt_at = dt.datetime.combine(dt.datetime.fromtimestamp(NOW, SH).date() + dt.timedelta(days=1),
                                  dt.time(9, 30), SH).timestamp()
    assert all(to_ts(c.due_before) == appt_at - 3600 for c in due.values())   # never after the visit

    clock = ScaledClock(reactor, 60, start=NOW)
    server = support.agi_server(clock=clock, db=db)
    await server.start()
    pbx = SimulatedPBX(clock, seed=1, spool_dir=tmp_path, agi_port=server.port)
    await pbx.start()
    for _pid, num, _lang, digits in PATIENTS:  # the keys come once the date and time were said
        pbx.set_patient(num, "answer", ring=2, survey_digits=digits, hold=900, delay=14)
    gw = AmiGateway("127.0.0.1", pbx.ami_port, "bridge", "bridge-secret", clock=clock)
    dialer = Dialer(agents=StaticAgents(), db=db, clock=clock, gateway=gw, rules=RULES, instance="e2e",
                    settings=SETTINGS, dial=DialSettings(channel_template="Local/{number}@sim-patient",
                                                         originate_timeout=20, max_rate=20))

    def attempts():
        with db.session() as s:
            return list(s.scalars(select(Attempt).order_by(Attempt.id)))
    try:
        await gw.start()
        await gw.wait_connected(10)
        await dialer.start()
        await until(lambda: len(attempts()) == 4 and all(a.state == "ended" for a in attempts()))
        await dialer.idle()
    finally:
        await dialer.stop()
        await gw.stop()
        await pbx.stop()
        await server.stop()

    with db.session() as s:
        appts = {a.external_id: a for a in s.scalars(select(Appointment))}
        contacts = {c.ref_id: c for c in s.scalars(select(Contact))}
        stopped = s.scalar(select(Patient).where(Patient.external_id == "10000040")).reminders_stopped_at
        sessions = {r.caller_number: r for r in s.scalars(select(IvrSession))}
        exported = appointments.answers(s)
        slots = appointments.cancelled_slots(s, now=dt.datetime.fromtimestamp(NOW, dt.timezone.utc))
    answers = {k: (a.answer, a.answered_via) for k, a in appts.items()}
    assert answers == {"A1": ("confirm", "reminder"), "A2": ("cancel", "reminder"),
                       "A3": ("reschedule", "reminder"), "A4": ("stop_reminders", "reminder"),
                       "A5": ("", ""), "A6": ("", "")}
    for k in ("A1", "A2", "A3", "A4"):
        assert NOW < to_ts(appts[k].answered_at) < NOW + 3600 and appts[k].answered_for == appts[k].scheduled_at
    assert stopped is not None
    # each reminder call is finished by its answer: no retry; the rescheduling patient reached an agent
    by_appt = {str(appts[k].id): k for k in appts}
    outcomes = {by_appt[ref]: (c.state, c.outcome) for ref, c in contacts.items()}
    assert outcomes == {"A1": ("done", "completed"), "A2": ("done", "completed"), "A3": ("done", "completed"),
                        "A4": ("done", "opted_out")}
    disp = {a.phone[3:]: a for a in attempts()}
    assert disp["13800138003"].connected_at is not None and disp["13800138003"].agent
    assert sorted(a.survey["answer"] for a in attempts()) == ["cancel", "confirm", "reschedule", "stop_reminders"]
    # the call spoke the patient's language: the English patient's session ran in English
    assert sessions["+8613800138002"].language == "en" and sessions["+8613800138001"].language == "zh"
    assert sessions["+8613800138001"].result == "appointment_confirm"
    assert sessions["+8613800138001"].path[:3] == ["lookup", "say", "menu"]
    # the hospital's view: export in answer order, and the cancelled slot offered for re-use
    assert sorted(e["appointment_id"] for e in exported) == ["A1", "A2", "A3", "A4"]
    assert [e["answered_at"] for e in exported] == sorted(e["answered_at"] for e in exported)
    assert [(x["appointment_id"], x["department"], x["doctor"]) for x in slots] == [("A2", "dental", "Dr Wang")]


@pytest.mark.timeout(60)
async def test_voice_notification_plays_the_message_and_asks_for_a_confirmation(db, tmp_path):
    """A one-off notification: the patient who pressed 1 is done (in their language); one who
    did not is retried by the rules; a number on the do-not-call list is never dialled."""
    from callcenter.ami.gateway import AmiGateway
    from callcenter.simulator import SimulatedPBX
    from dialer.notifications import add_patients

    api = support.domain().dialer
    people = [("10000016", "13800138001", "zh", "1"), ("10000024", "13800138002", "en", "1"),
              ("10000032", "13800138003", "zh", ""), ("10000040", "13800138004", "zh", "1")]
    _import(db, "patients", [{"patient_id": p, "name": f"P{p}", "phone": n, "language": lang}
                             for p, n, lang, _ in people])

    def seed(s):
        api.add_do_not_call(s, "13800138004", source="admin")
        c = create_campaign(s, name="flu", kind="notification", mode="survey", state="running",
                            settings={"message": "flu_vaccine"})
        return add_patients(s, c, [p for p, *_ in people], now=NOW, rules=RULES).to_dict()
    assert db.call(seed) == {"created": 3, "already": 0, "do_not_call": 1, "unknown": []}

    clock = ScaledClock(reactor, 60, start=NOW)
    server = support.agi_server(clock=clock, db=db)
    await server.start()
    pbx = SimulatedPBX(clock, seed=2, spool_dir=tmp_path, agi_port=server.port)
    await pbx.start()
    for _p, num, _lang, digits in people:
        pbx.set_patient(num, "answer", ring=2, survey_digits=digits or "", hold=900, delay=3)
    gw = AmiGateway("127.0.0.1", pbx.ami_port, "bridge", "bridge-secret", clock=clock)
    dialer = Dialer(agents=StaticAgents(), db=db, clock=clock, gateway=gw, rules=RULES, instance="e2e",
                    settings=SETTINGS, dial=DialSettings(channel_template="Local/{number}@sim-patient",
                                                         originate_timeout=20, max_rate=20))

    def attempts():
        with db.session() as s:
            return list(s.scalars(select(Attempt).order_by(Attempt.id)))
    try:
        await gw.start()
        await gw.wait_connected(10)
        await dialer.start()
        await until(lambda: len(attempts()) == 3 and all(a.state == "ended" for a in attempts()))
        await dialer.idle()
    finally:
        await dialer.stop()
        await gw.stop()
        await pbx.stop()
        await server.stop()
    with db.session() as s:
        contacts = {c.phone[3:]: (c.state, c.outcome, c.attempts) for c in s.scalars(select(Contact))}
        sessions = {r.caller_number[3:]: r for r in s.scalars(select(IvrSession))}
    assert contacts["13800138001"] == ("done", "completed", 1)
    assert contacts["13800138002"] == ("done", "completed", 1)
    assert contacts["13800138003"][:2] == ("pending", "")          # not confirmed: tried again later
    assert "13800138004" not in contacts and "13800138004" not in sessions
    assert {a.phone[3:]: a.survey for a in attempts()}["13800138001"] == {"heard": "1"}
    assert sessions["13800138002"].language == "en" and sessions["13800138002"].detail["message"] == "flu_vaccine"
    assert sessions["13800138003"].result == "not_confirmed"
