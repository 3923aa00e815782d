"""Appointments in the hotline IVR through the simulated PBX over real FastAGI TCP: a caller
known by caller ID hears the next appointment and confirms it; one with a withheld/unknown
number keys in the patient number (Luhn check digit) and cancels; one asks to reschedule and
reaches an agent with the reason and the appointment on the channel.  The answers land on
the appointments, the same storage as the reminder calls (dialer/appointments.py)."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from twisted.internet import reactor

from callcenter.clock import ScaledClock
from dialer.campaigns import Settings
from dialer.compliance import Rules
from dialer.importer import import_rows
from dialer.models import Appointment
from ivr_flows.models import IvrSession
from tests import support
from tests.support.ivr import OPEN, TZ
from tests.support.waiting import until

pytestmark = pytest.mark.slow

SAY = "w" * 24  # 12 s: the date, time and department are said before the menu listens


def _seed(db):
    day = (dt.datetime.fromtimestamp(OPEN, TZ).date() + dt.timedelta(days=2)).isoformat()
    settings, rules = Settings(), Rules()

    def work(s):
        for kind, rows in (
            ("patients", [{"patient_id": "10000016", "name": "李娜", "phone": "13800138001"},
                          {"patient_id": "10000024", "name": "Wang Fang", "phone": "13800138002", "language": "en"},
                          {"patient_id": "10000032", "name": "张敏", "phone": "13800138003"}]),
            ("appointments", [{"appointment_id": "A1", "patient_id": "10000016", "scheduled_at": f"{day} 14:05",
                               "status": "booked", "department": "orthodontics"},
                              {"appointment_id": "A2", "patient_id": "10000024", "scheduled_at": f"{day} 09:00",
                               "status": "booked", "department": "dental"},
                              {"appointment_id": "A3", "patient_id": "10000032", "scheduled_at": f"{day} 10:30",
                               "status": "booked", "department": "implant"}])):
            r = import_rows(s, kind, rows, "test", region="CN", settings=settings, rules=rules, now=OPEN)
            assert r.applied, r.errors
    db.call(work)


@pytest.mark.postgres
@pytest.mark.timeout(60)
async def test_callers_confirm_cancel_and_reschedule_appointments_in_the_hotline(db, tmp_path):
    from callcenter.simulator import SimulatedPBX

    _seed(db)
    clock = ScaledClock(reactor, 40, start=OPEN)
    server = support.agi_server(clock=clock, db=db)
    await server.start()
    pbx = SimulatedPBX(clock, seed=3, spool_dir=tmp_path, agi_port=server.port)
    await pbx.start()
    try:
        pbx.add_agent("consultation", "1001", "Agent A", answer_delay=1, talk_time=2)
        # 1 Mandarin, 2 appointments, 1 my appointment (caller ID known), then 1 confirm
        confirm = pbx.inbound_call("13800138001", "李娜", context="hotline", digits=f"1w2w1{SAY}1",
                                   digit_delay=0.5, patience=600)
        # number unknown: the patient number (8 digits, check digit), then 2 cancel, 1 yes
        cancel = pbx.inbound_call("13900139009", "", context="hotline", digits=f"2w2w1wwww10000024#{SAY}2ww1",
                                  digit_delay=0.5, patience=600)
        # 3: change it -> an agent, with the reason and the appointment on the channel
        resched = pbx.inbound_call("13800138003", "张敏", context="hotline", digits=f"1w2w1{SAY}3",
                                   digit_delay=0.5, patience=600)
        await until(lambda: confirm.done and cancel.done and resched.done)
    finally:
        await pbx.stop()
        await server.stop()
    with db.session() as s:
        appts = {a.external_id: a for a in s.scalars(select(Appointment))}
        rows = {r.uniqueid: r for r in s.scalars(select(IvrSession))}
    seen = {r.caller_number: (r.path, r.digits, r.result, (r.detail or {}).get("warnings")) for r in rows.values()}
    assert {k: (a.answer, a.answered_via) for k, a in appts.items()} == {
        "A1": ("confirm", "hotline"), "A2": ("cancel", "hotline"), "A3": ("reschedule", "hotline")}, \
        {k: v for k, v in seen.items() if k.endswith("9009")}
    assert all(a.answered_for == a.scheduled_at for a in appts.values())
    assert rows[confirm.uniqueid].result == "appointment_confirm"
    assert "say_my_appointment" in rows[confirm.uniqueid].path
    assert rows[cancel.uniqueid].language == "en" and rows[cancel.uniqueid].result == "appointment_cancel"
    assert "my_appointment_by_number" in rows[cancel.uniqueid].path
    assert confirm.queue is None and cancel.queue is None          # no agent needed
    assert resched.queue == "consultation" and resched.outcome == "answered"
    assert resched.channel.variables["IVR_REASON"] == "appointment_reschedule"
    assert resched.channel.variables["APPOINTMENT_ID"] == str(appts["A3"].id)
