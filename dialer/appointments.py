"""Appointment reminders and the patient's answer: the one home of both.

* **Planning** (:func:`reminder_window`, pure): a booked appointment is due for its reminder
  ``lead_hours`` before it (the next opening of the calling window from then, or now if
  later) and may be called until ``stop_minutes`` before it — never after the appointment.
* **Contacts** (:func:`materialize_reminders`): one per appointment *slot* (id and time) across
  every reminder campaign (a dedupe key without the campaign), so no patient is reminded twice
  of one visit; a moved or cancelled appointment's pending reminder is closed (``superseded``)
  by the import, and a moved one gets a new reminder for its new time.
* **Answers** (:func:`record_answer`): confirm | cancel | reschedule | stop_reminders, from a
  reminder call or the hotline IVR, stored on the appointment with the time, the channel and
  the slot it was given for; the hospital's booking system reads them back (CSV / API), and
  cancelled slots are listed for re-use (:func:`cancelled_slots`).
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from sqlalchemy import String, and_, cast, or_, select, update
from sqlalchemy.orm import Session

from callcenter.store.locks import get_for_update

from . import compliance
from .models import Appointment, Attempt, Campaign, Contact, DoNotCall, Patient
from .timeutil import to_dt, to_ts

REF_TYPE = "appointment_reminder"  # contacts of reminder campaigns (no-show work is "appointment")
ANSWERS = ("confirm", "cancel", "reschedule", "stop_reminders")
VIA = ("reminder", "hotline")


def reminder_window(scheduled: float, now: float, rules: compliance.Rules, *, lead_hours: float,
                    stop_minutes: float) -> tuple[float, float] | None:
    """``(due_after, due_before)`` of an appointment's reminder, or ``None`` when no call fits
    before the appointment any more (past, or too close to it within the calling windows)."""
    deadline = scheduled - stop_minutes * 60.0
    if deadline <= now:
        return None
    start = compliance.next_window_open(rules, max(now, scheduled - lead_hours * 3600.0))
    return (start, deadline) if start < deadline else None


def slot_key(appointment_id: int, scheduled_at: dt.datetime) -> str:
    """The reminder's dedupe key: one reminder per appointment and time, whichever campaign."""
    return f"reminder:{appointment_id}:{int(to_ts(scheduled_at))}"


def materialize_reminders(session: Session, campaign: Campaign, *, now: float, settings, rules,
                          appointment_ids: list[int] | None = None) -> int:
    """Give ``campaign`` the reminders owed: booked appointments ahead, of patients who did not
    stop reminders, not already answered for their current time, number not on do-not-call."""
    from .campaigns import contact_row, insert_contacts

    now_dt = to_dt(now)
    q = (select(Appointment.id, Appointment.patient_id, Appointment.scheduled_at, Patient.phone, Patient.name)
         .join(Patient, Patient.id == Appointment.patient_id)
         .where(Appointment.status == "booked", Appointment.scheduled_at > now_dt,
                Patient.reminders_stopped_at.is_(None),
                or_(Appointment.answer == "", Appointment.answered_for.is_(None),
                    Appointment.answered_for != Appointment.scheduled_at))
         .order_by(Appointment.scheduled_at))
    if appointment_ids is not None:
        if not appointment_ids:
            return 0
        q = q.where(Appointment.id.in_(appointment_ids))
    rows = session.execute(q).all()
    phones = sorted({r.phone for r in rows})
    dnc: set[str] = set()
    for i in range(0, len(phones), 500):
        dnc.update(session.scalars(select(DoNotCall.phone).where(DoNotCall.phone.in_(phones[i:i + 500]))))
    batch = []
    for r in rows:
        if r.phone in dnc:
            continue
        window = reminder_window(to_ts(r.scheduled_at), now, rules, lead_hours=settings.reminder_lead_hours,
                                 stop_minutes=settings.reminder_stop_minutes)
        if window is None:
            continue
        row = contact_row(campaign.id, "", phone=r.phone, name=r.name, reason="reminder", ref_type=REF_TYPE,
                          ref_id=r.id, due_after=to_dt(window[0]), due_before=to_dt(window[1]),
                          patient_id=r.patient_id, now=now_dt)
        row["dedupe_key"] = slot_key(r.id, r.scheduled_at)
        batch.append(row)
    return insert_contacts(session, batch)


def close_reminders(session: Session, appointment_ids: Iterable, when: dt.datetime, *,
                    outcome: str = "superseded") -> int:
    """Pending reminders of these appointments end (moved, cancelled, answered elsewhere)."""
    refs = [str(i) for i in appointment_ids]
    total = 0
    for i in range(0, len(refs), 500):
        res = session.execute(update(Contact).where(Contact.ref_type == REF_TYPE, Contact.ref_id.in_(refs[i:i + 500]),
                                                    Contact.state == "pending")
                              .values(state="done", outcome=outcome, completed_at=when)
                              .execution_options(synchronize_session=False))
        total += res.rowcount or 0
    return total


def _view(appt: Appointment, patient: Patient) -> dict:
    return {"appointment_id": appt.id, "at": to_ts(appt.scheduled_at), "department": appt.department,
            "doctor": appt.doctor, "language": patient.language, "patient_id": patient.id}


def _upcoming(session: Session, patient_ids: list[int], at: dt.datetime) -> dict | None:
    """The earliest booked appointment ahead of these patients that is not cancelled by them."""
    if not patient_ids:
        return None
    row = session.execute(
        select(Appointment, Patient).join(Patient, Patient.id == Appointment.patient_id)
        .where(Appointment.patient_id.in_(patient_ids), Appointment.status == "booked",
               Appointment.scheduled_at > at,
               or_(Appointment.answer != "cancel", Appointment.answered_for != Appointment.scheduled_at))
        .order_by(Appointment.scheduled_at).limit(1)).first()
    return _view(*row) if row else None


def for_attempt(session: Session, attempt_id: int, at: dt.datetime) -> dict | None:
    """The appointment a reminder call is about, while it is still booked and ahead."""
    row = session.execute(
        select(Appointment, Patient).join(Patient, Patient.id == Appointment.patient_id)
        .join(Contact, and_(Contact.ref_type == REF_TYPE, Contact.ref_id == cast(Appointment.id, String)))
        .join(Attempt, Attempt.contact_id == Contact.id)
        .where(Attempt.id == attempt_id)).first()
    if row is None or row[0].status != "booked" or to_ts(row[0].scheduled_at) <= to_ts(at):
        return None
    return _view(*row)


def for_phone(session: Session, phone: str, at: dt.datetime) -> dict | None:
    ids = list(session.scalars(select(Patient.id).where(Patient.phone == phone)))
    return _upcoming(session, ids, at)


def for_patient_number(session: Session, number: str, at: dt.datetime) -> dict | None:
    ids = list(session.scalars(select(Patient.id).where(Patient.external_id == number)))
    return _upcoming(session, ids, at)


def record_answer(session: Session, *, appointment_id: int, answer: str, via: str, at: dt.datetime,
                  attempt_id: int | None = None) -> Appointment:
    """Store the patient's answer on the appointment.  Any answer ends the appointment's other
    pending reminders; ``stop_reminders`` stops the patient's reminders altogether (not other
    calls: the do-not-call list is untouched).  On a reminder call the attempt and its contact
    are finished here (``completed``; ``opted_out`` for stop_reminders), so a patient who
    answered is not called again about it, whatever happens next on the line."""
    if answer not in ANSWERS:
        raise ValueError(f"unknown appointment answer {answer!r} (known: {', '.join(ANSWERS)})")
    if via not in VIA:
        raise ValueError(f"unknown answer channel {via!r} (known: {', '.join(VIA)})")
    appt = get_for_update(session, Appointment, int(appointment_id))
    if appt is None:
        raise LookupError(f"no appointment {appointment_id}")
    appt.answer, appt.answered_at, appt.answered_via, appt.answered_for = answer, at, via, appt.scheduled_at
    close_reminders(session, [appt.id], at)
    if answer == "stop_reminders":
        patient = session.get(Patient, appt.patient_id)
        patient.reminders_stopped_at = at
        session.execute(update(Contact).where(Contact.patient_id == patient.id, Contact.ref_type == REF_TYPE,
                                              Contact.state == "pending")
                        .values(state="done", outcome="opted_out", completed_at=at)
                        .execution_options(synchronize_session=False))
    if attempt_id is not None:
        a = get_for_update(session, Attempt, int(attempt_id))
        if a is None:
            raise LookupError(f"no dial attempt {attempt_id}")
        outcome = "opted_out" if answer == "stop_reminders" else "completed"
        a.survey, a.disposition = {"answer": answer}, outcome
        c = session.get(Contact, a.contact_id)
        c.state, c.outcome, c.completed_at, c.last_disposition = "done", outcome, at, outcome
    session.flush()
    return appt


EXPORT_COLUMNS = ("appointment_id", "patient_id", "scheduled_at", "department", "doctor", "status", "answer",
                  "answered_at", "answered_via", "answered_for")


def answers(session: Session, *, since: dt.datetime | None = None, limit: int = 10000) -> list[dict]:
    """Answered appointments (oldest answer first), with the hospital's ids, for its booking system."""
    q = (select(Appointment, Patient.external_id).join(Patient, Patient.id == Appointment.patient_id)
         .where(Appointment.answer != "").order_by(Appointment.answered_at, Appointment.id).limit(limit))
    if since is not None:
        q = q.where(Appointment.answered_at > since)
    return [_export(a, pid) for a, pid in session.execute(q)]


def cancelled_slots(session: Session, *, now: dt.datetime) -> list[dict]:
    """Slots ahead that patients cancelled with us, for booking to give to someone else."""
    q = (select(Appointment, Patient.external_id).join(Patient, Patient.id == Appointment.patient_id)
         .where(Appointment.answer == "cancel", Appointment.answered_for == Appointment.scheduled_at,
                Appointment.scheduled_at > now)
         .order_by(Appointment.scheduled_at, Appointment.id))
    return [_export(a, pid) for a, pid in session.execute(q)]


def _iso(value: dt.datetime | None) -> str:
    return to_dt(to_ts(value)).isoformat() if value is not None else ""


def _export(a: Appointment, patient_ext: str) -> dict:
    return {"appointment_id": a.external_id, "patient_id": patient_ext, "scheduled_at": _iso(a.scheduled_at),
            "department": a.department, "doctor": a.doctor, "status": a.status, "answer": a.answer,
            "answered_at": _iso(a.answered_at), "answered_via": a.answered_via,
            "answered_for": _iso(a.answered_for)}


def reminder_counts(session: Session, campaign_id: int) -> dict[str, int]:
    """Answers given on this reminder campaign's calls (``campaign status``)."""
    rows = session.execute(select(Attempt.survey).where(Attempt.campaign_id == campaign_id,
                                                        Attempt.survey.is_not(None))).scalars()
    out = {a: 0 for a in ANSWERS}
    for survey in rows:
        ans = (survey or {}).get("answer")
        if ans in out:
            out[ans] += 1
    return out
