"""Reminder planning (pure), the import's moved / cancelled appointments, answers and the
spoken segments a reminder needs."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from dialer import appointments
from dialer.appointments import reminder_window
from dialer.campaigns import CampaignError, Settings, create_campaign
from dialer.compliance import Rules
from dialer.importer import import_rows
from dialer.models import Appointment, Contact, Patient
from dialer.timeutil import to_dt, to_ts
from ivr_flows.segments import appointment_segments, load_departments, segment_texts

from tests.support.dialer import SH, ts

RULES = Rules()  # 09:00-20:00, CN holidays
SETTINGS = Settings(reminder_lead_hours=24, reminder_stop_minutes=60)


def test_reminder_is_due_the_day_before_inside_the_window_and_never_after_the_visit():
    visit = ts(2026, 11, 26, 9, 30)           # Thursday 09:30
    now = ts(2026, 11, 24, 12, 0)
    assert reminder_window(visit, now, RULES, lead_hours=24, stop_minutes=60) == (
        ts(2026, 11, 25, 9, 30), ts(2026, 11, 26, 8, 30))
    # an early visit: 24 h before is 07:00, outside the window -> the window's opening
    assert reminder_window(ts(2026, 11, 26, 7, 0), now, RULES, lead_hours=24, stop_minutes=60)[0] == \
        ts(2026, 11, 25, 9, 0)
    # booked late (visit in 3 h): due now, until an hour before
    assert reminder_window(ts(2026, 11, 24, 15, 0), now, RULES, lead_hours=24, stop_minutes=60) == (
        now, ts(2026, 11, 24, 14, 0))
    # no call fits any more: in 30 min; at 08:00 tomorrow (window shut until 09:00); past
    assert reminder_window(ts(2026, 11, 24, 12, 30), now, RULES, lead_hours=24, stop_minutes=60) is None
    assert reminder_window(ts(2026, 11, 25, 9, 30), ts(2026, 11, 24, 20, 30), RULES, lead_hours=24,
                           stop_minutes=60) is None
    assert reminder_window(ts(2026, 11, 23, 9, 30), now, RULES, lead_hours=24, stop_minutes=60) is None
    # over a public holiday (China, 2026-10-05..07) the reminder waits for the next calling day
    assert reminder_window(ts(2026, 10, 8, 11, 0), ts(2026, 9, 30, 12, 0), RULES, lead_hours=24,
                           stop_minutes=60) == (ts(2026, 10, 8, 9, 0), ts(2026, 10, 8, 10, 0))


def test_every_spoken_segment_has_a_text_in_both_languages():
    depts = load_departments()
    texts = segment_texts(depts)
    for lang in ("zh", "en"):
        start = dt.datetime(2026, 1, 1, 0, 0, tzinfo=SH)
        for minutes in range(0, 366 * 24 * 60, 7 * 60 + 13):   # every month, day, hour, many minutes
            local = start + dt.timedelta(minutes=minutes)
            for dept in [*depts, ""]:
                names = appointment_segments(lang, local, dept)
                assert all(texts[lang].get(n, "").strip() for n in names), (lang, local, dept, names)
    assert [texts["zh"][n] for n in appointment_segments("zh", dt.datetime(2026, 12, 3, 14, 5), "dental")] == [
        "12月", "3日", "星期四", "下午", "2点", "零5分", "口腔科"]
    assert [texts["en"][n] for n in appointment_segments("en", dt.datetime(2026, 12, 3, 9, 0), "dental")] == [
        "Thursday", "December", "the 3rd", "at", "9", "in the morning", "in", "the dental clinic"]


def _imp(s, kind, rows, now):
    r = import_rows(s, kind, rows, "test", region="CN", settings=SETTINGS, rules=RULES, now=now)
    return r


@pytest.mark.postgres
def test_import_plans_moves_and_cancels_reminders(db):
    now = ts(2026, 11, 24, 10, 0)

    def work(s):
        create_campaign(s, name="rem", kind="reminder", mode="survey", state="running")
        _imp(s, "patients", [{"patient_id": "10000016", "name": "李娜", "phone": "13800138001"},
                             {"patient_id": "10000024", "name": "Wang", "phone": "13800138002"}], now)
        rows = [{"appointment_id": "A1", "patient_id": "10000016", "scheduled_at": "2026-11-25 15:00",
                 "status": "booked", "department": "dental", "doctor": "Dr Li"},
                {"appointment_id": "A2", "patient_id": "10000024", "scheduled_at": "2026-11-25 16:00",
                 "status": "booked"}]
        first = _imp(s, "appointments", rows, now)
        again = _imp(s, "appointments", rows, now + 60)
        moved = _imp(s, "appointments", [{**rows[0], "scheduled_at": "2026-11-27 15:00"},
                                         {**rows[1], "status": "cancelled"}], now + 120)
        contacts = [(c.ref_id, c.state, c.outcome, to_ts(c.due_after)) for c in
                    s.scalars(select(Contact).order_by(Contact.id))]
        a1 = s.scalar(select(Appointment).where(Appointment.external_id == "A1"))
        return first, again, moved, contacts, a1.id, a1.doctor
    first, again, moved, contacts, a1, doctor = db.call(work)
    assert (first.contacts_created, again.contacts_created, again.unchanged) == (2, 0, 2)
    assert (moved.contacts_created, moved.contacts_closed) == (1, 2)
    assert doctor == "Dr Li"
    assert [c[:3] for c in contacts] == [(str(a1), "done", "superseded"), (contacts[1][0], "done", "superseded"),
                                         (str(a1), "pending", "")]
    assert contacts[2][3] == ts(2026, 11, 26, 15, 0)   # the new time's reminder, the day before


@pytest.mark.postgres
def test_unknown_department_is_a_row_error_and_nothing_is_written(db):
    def work(s):
        _imp(s, "patients", [{"patient_id": "10000016", "name": "李娜", "phone": "13800138001"}], 0)
        r = _imp(s, "appointments", [{"appointment_id": "A1", "patient_id": "10000016",
                                      "scheduled_at": "2026-11-25 15:00", "status": "booked",
                                      "department": "astrology"}], ts(2026, 11, 24, 10))
        return r, s.scalar(select(Appointment.id))
    r, stored = db.call(work)
    assert not r.applied and stored is None
    assert [(e.line, e.field) for e in r.errors] == [(1, "department")]
    assert "unknown department 'astrology'" in r.errors[0].reason and "dental" in r.errors[0].reason


@pytest.mark.postgres
def test_stop_reminders_and_answers_from_the_hotline(db):
    now = ts(2026, 11, 24, 10, 0)

    def work(s):
        c = create_campaign(s, name="rem", kind="reminder", mode="survey", state="running")
        _imp(s, "patients", [{"patient_id": "10000016", "name": "李娜", "phone": "13800138001"}], now)
        _imp(s, "appointments", [
            {"appointment_id": f"A{i}", "patient_id": "10000016", "scheduled_at": f"2026-11-2{5 + i} 15:00",
             "status": "booked", "department": "dental"} for i in range(3)], now)
        ids = [a.id for a in s.scalars(select(Appointment).order_by(Appointment.scheduled_at))]
        # confirmed in the hotline before its reminder: that reminder is not needed any more
        appointments.record_answer(s, appointment_id=ids[0], answer="confirm", via="hotline", at=to_dt(now))
        # 9 on another one: the patient's other reminders end, and none is planned again
        appointments.record_answer(s, appointment_id=ids[1], answer="stop_reminders", via="reminder",
                                   at=to_dt(now + 1))
        from dialer.campaigns import materialize
        again = materialize(s, c, now=now + 2, settings=SETTINGS, rules=RULES)
        states = [(c.state, c.outcome) for c in s.scalars(select(Contact).order_by(Contact.id))]
        p = s.scalar(select(Patient))
        with pytest.raises(ValueError, match="unknown appointment answer"):
            appointments.record_answer(s, appointment_id=ids[2], answer="maybe", via="hotline", at=to_dt(now))
        return states, again, p.reminders_stopped_at
    states, again, stopped = db.call(work)
    assert states == [("done", "superseded"), ("done", "superseded"), ("done", "opted_out")]
    assert again == 0 and stopped is not None


def test_reminder_and_notification_campaigns_are_ivr_calls(db):
    def work(s):
        with pytest.raises(CampaignError, match="mode must be survey"):
            create_campaign(s, name="r", kind="reminder", mode="progressive")
        with pytest.raises(CampaignError, match="needs a message: one of flu_vaccine"):
            create_campaign(s, name="n", kind="notification", mode="survey", settings={"message": "nope"})
        return create_campaign(s, name="n", kind="notification", mode="survey",
                               settings={"message": "flu_vaccine"}).settings
    assert db.call(work) == {"message": "flu_vaccine"}


@pytest.mark.postgres
def test_a_reminder_and_a_no_show_call_for_one_number_are_never_dialled_together(db):
    """The claim's rules hold for reminders like for any campaign: the number dialled for the
    no-show is not dialled for the reminder within the phone gap, nor while in a call."""
    from dialer import store
    from dialer.campaigns import materialize

    now = ts(2026, 11, 24, 10, 0)

    def work(s):
        rem = create_campaign(s, name="rem", kind="reminder", mode="survey", state="running")
        nos = create_campaign(s, name="nos", kind="no_show", mode="survey", state="running")
        _imp(s, "patients", [{"patient_id": "10000016", "name": "李娜", "phone": "13800138001"}], now)
        _imp(s, "appointments", [
            {"appointment_id": "A1", "patient_id": "10000016", "scheduled_at": "2026-11-24 08:00", "status": "missed"},
            {"appointment_id": "A2", "patient_id": "10000016", "scheduled_at": "2026-11-25 09:00",
             "status": "booked"}], now)
        assert materialize(s, nos, now=now, settings=SETTINGS, rules=RULES) == 0  # the import gave it already
        first = store.claim(s, campaign_id=nos.id, limit=5, now=now, instance="t", guard_seconds=3600,
                            phone_gap=3600)
        during = store.claim(s, campaign_id=rem.id, limit=5, now=now + 60, instance="t", guard_seconds=3600,
                             phone_gap=3600)
        return len(first), len(during), s.query(Contact).filter(Contact.campaign_id == rem.id).count()
    assert db.call(work) == (1, 0, 1)
