"""The booking system's side of appointment answers over real HTTP: the JSON API (with
`since`), the CSV download, cancelled slots for re-use, and a notification campaign's
patient list; supervisors (or their API token) only, every read audited."""
from __future__ import annotations

import csv
import datetime as dt
import io

from dialer import appointments
from dialer.campaigns import Settings, create_campaign
from dialer.compliance import Rules
from dialer.importer import import_rows
from dialer.models import Appointment, Contact

from tests.support.web import Client, FakeQueueCalls, add_users, running_web
from tests.web.test_campaigns import NOW, audit_rows, new_token, utc_clock


def _seed(db):
    def work(s):
        for kind, rows in (("patients", [{"patient_id": f"1000001{i}", "name": f"P{i}", "phone": f"1380013800{i}"}
                                         for i in range(1, 4)]),
                           ("appointments", [{"appointment_id": f"A{i}", "patient_id": f"1000001{i}",
                                              "scheduled_at": f"2026-11-2{6 + i} 10:00", "status": "booked",
                                              "department": "dental", "doctor": "Dr Wang"} for i in range(1, 4)])):
            assert import_rows(s, kind, rows, "t", region="CN", settings=Settings(), rules=Rules(),
                               now=NOW.timestamp()).applied
        ids = {a.external_id: a.id for a in s.query(Appointment)}
        appointments.record_answer(s, appointment_id=ids["A1"], answer="confirm", via="reminder",
                                   at=NOW - dt.timedelta(hours=2))
        appointments.record_answer(s, appointment_id=ids["A2"], answer="cancel", via="hotline",
                                   at=NOW - dt.timedelta(hours=1))
        create_campaign(s, name="flu", kind="notification", mode="survey", state="running",
                        settings={"message": "flu_vaccine"})
    db.call(work)


async def test_answers_api_csv_and_cancelled_slots(config, db, capsys):
    add_users(db)
    _seed(db)
    token = new_token("his", "supervisor", capsys)
    h = {"Authorization": f"Bearer {token}"}
    async with running_web(config, db, clock=utc_clock(), queuecalls=FakeQueueCalls()) as web:
        c = Client(web.port)
        r = await c.get("/api/appointments/answers", headers=h)
        assert r.status == 200, r.text
        got = [(a["appointment_id"], a["patient_id"], a["answer"], a["answered_via"]) for a in r.json()["answers"]]
        assert got == [("A1", "10000011", "confirm", "reminder"), ("A2", "10000012", "cancel", "hotline")]
        assert r.json()["answers"][0]["doctor"] == "Dr Wang"
        since = (NOW - dt.timedelta(minutes=90)).isoformat()
        r = await c.get("/api/appointments/answers?since=" + since.replace("+", "%2B"), headers=h)
        assert [a["appointment_id"] for a in r.json()["answers"]] == ["A2"]
        assert (await c.get("/api/appointments/answers?since=yesterday", headers=h)).status == 400
        r = await c.get("/api/appointments/answers.csv", headers=h)
        assert r.status == 200 and "text/csv" in r.headers.get("content-type", "")
        rows = list(csv.DictReader(io.StringIO(r.body.decode("utf-8-sig"))))
        assert [(x["appointment_id"], x["answer"]) for x in rows] == [("A1", "confirm"), ("A2", "cancel")]
        r = await c.get("/api/appointments/cancelled-slots", headers=h)
        assert [(x["appointment_id"], x["scheduled_at"], x["department"]) for x in r.json()["slots"]] == [
            ("A2", "2026-11-28T02:00:00+00:00", "dental")]
        # a notification campaign's list: all or nothing, re-sending adds nothing
        r = await c.post("/api/notifications/flu/patients", json_body=["10000011", "10000099"], headers=h)
        assert r.status == 422 and "10000099" in r.json()["error"]
        r = await c.post("/api/notifications/flu/patients", json_body=["10000011", "10000013"], headers=h)
        assert r.status == 201 and r.json()["created"] == 2
        r = await c.post("/api/notifications/flu/patients", json_body={"patient_ids": ["10000011"]}, headers=h)
        assert r.status == 200 and r.json()["already"] == 1
        agent = Client(web.port)
        await agent.login("agent1")
        assert (await agent.get("/api/appointments/answers")).status == 403
        assert (await Client(web.port).get("/api/appointments/answers.csv")).status in (401, 303)
    with db.session() as s:
        assert s.query(Contact).filter(Contact.ref_type == "patient").count() == 2
    assert [a[2] for a in audit_rows(db, "view") if a[2] in ("api", "csv", "cancelled_slots")][:4] == [
        "api", "api", "csv", "cancelled_slots"]


def test_the_agents_record_shows_the_patients_answer(db):
    """A caller who asked to reschedule reaches an agent: the screen pop's record (the same
    ``patient_record``) shows the appointment with the answer, the channel and the time."""
    from zoneinfo import ZoneInfo

    from callcenter.web import data

    _seed(db)
    rec = db.call(data.patient_record, "13800138002", "", "CN", None, ZoneInfo("Asia/Shanghai"))
    (appt,) = rec["appointments"]
    assert (appt["answer"], appt["answered_via"], appt["doctor"]) == ("cancel", "hotline", "Dr Wang")
    assert appt["answered_at"].isoformat() == "2026-11-25T10:00:00+08:00"


def test_a_reminder_call_on_the_agents_screen_says_which_appointment(db):
    """A patient who pressed 2 (reschedule) on a reminder call reaches an agent: the dialer box
    says it is that appointment's reminder and what the patient answered."""
    from dialer.campaigns import materialize
    from dialer.models import Attempt

    from callcenter.web import dialer_calls

    _seed(db)

    def work(s):
        c = create_campaign(s, name="rem", kind="reminder", mode="survey", state="running")
        materialize(s, c, now=(NOW + dt.timedelta(days=1)).timestamp(), settings=Settings(), rules=Rules())
        contact = s.query(Contact).filter(Contact.campaign_id == c.id).order_by(Contact.id).first()
        a = Attempt(contact_id=contact.id, campaign_id=c.id, phone=contact.phone, started_at=NOW, state="answered")
        s.add(a)
        s.flush()
        return dialer_calls.call_context(s, a.id)
    ctx = db.call(work)
    assert ctx["kind"] == "reminder"
    assert ctx["why"]["appointment"]["external_id"] == "A3" and ctx["why"]["appointment"]["answer"] == ""
