"""Adapters that read other packages' tables for the web (read-only).

Each function runs on the database thread (``fn(session, ...)``) and returns
plain dicts.  When a package is not installed (its tables are unknown) the
function returns ``None`` so pages can say "not available" instead of failing.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from callcenter.phones import canonical
from callcenter.store import Base, load_all_models

QUEUE_CALL_COLUMNS = ("uniqueid", "queue", "caller_number", "caller_name", "entered_at", "answered_at",
                      "ended_at", "wait_seconds", "agent", "agent_name", "talk_seconds", "outcome",
                      "within_target")


def _table(name: str):
    load_all_models()
    return Base.metadata.tables.get(name)


def _utc(d: dt.datetime | None) -> dt.datetime | None:
    if d is None:
        return None
    return d.replace(tzinfo=dt.timezone.utc) if d.tzinfo is None else d.astimezone(dt.timezone.utc)


def queue_calls(s, start: dt.datetime, end: dt.datetime, queue: str | None = None,
                direction: str = "inbound") -> list[dict] | None:
    """Queue calls that entered in [start, end); inbound only unless ``direction`` says
    otherwise (dialer calls have their own figures: :mod:`dialer.outbound`)."""
    t = _table("queue_calls")
    if t is None:
        return None
    cols = [t.c[c] for c in QUEUE_CALL_COLUMNS if c in t.c]
    q = select(*cols).where(t.c.entered_at >= start, t.c.entered_at < end, t.c.direction == direction)
    if queue:
        q = q.where(t.c.queue == queue)
    rows = []
    for r in s.execute(q.order_by(t.c.entered_at)):
        d = dict(r._mapping)
        for k in ("entered_at", "answered_at", "ended_at"):
            if k in d:
                d[k] = _utc(d[k])
        rows.append(d)
    return rows


def previous_calls(s, numbers: list[str], limit: int = 10) -> list[dict] | None:
    t = _table("queue_calls")
    if t is None:
        return None
    q = (select(t.c.uniqueid, t.c.queue, t.c.entered_at, t.c.outcome, t.c.agent_name, t.c.wait_seconds)
         .where(t.c.caller_number.in_(numbers)).order_by(t.c.entered_at.desc()).limit(limit))
    return [{**dict(r._mapping), "entered_at": _utc(r.entered_at)} for r in s.execute(q)]


def outcomes_for(s, numbers: list[str], limit: int = 10) -> list[dict]:
    from .models import CallOutcome

    q = (select(CallOutcome).where(CallOutcome.caller_number.in_(numbers))
         .order_by(CallOutcome.created_at.desc()).limit(limit))
    return [{"at": _utc(o.created_at), "agent": o.agent, "outcome": o.outcome, "note": o.note,
             "complaint_id": o.complaint_id} for o in s.scalars(q)]


def patient_record(s, number: str, caller_name: str = "", region: str = "CN",
                   now: dt.datetime | None = None, tz: dt.tzinfo | None = None) -> dict[str, Any]:
    """Everything the agent needs when this number calls: patient, treatments, complaints, calls.

    Times are in ``tz`` (the hospital's) when given, so the agent reads local times."""
    def at(d):
        d = _utc(d)
        return d.astimezone(tz) if d is not None and tz is not None else d

    stored = canonical(number, region)  # every table stores this one form (callcenter.phones)
    variants = [stored] if stored else []
    rec: dict[str, Any] = {"number": number, "name": caller_name, "patient_id": None,
                           "treatments": None, "appointments": None, "complaints": None,
                           "calls": None, "outcomes": []}
    if not variants:
        return rec
    if _table("patients") is not None:
        from dialer.models import Appointment, Patient, Treatment

        patient = s.scalars(select(Patient).where(Patient.phone.in_(variants))
                            .order_by(Patient.updated_at.desc())).first()
        rec["treatments"], rec["appointments"] = [], []
        if patient is not None:
            rec.update(patient_id=patient.id, name=patient.name, external_id=patient.external_id)
            rec["treatments"] = [
                {"type": tr.treatment_type, "at": at(tr.treated_at), "doctor": tr.doctor}
                for tr in s.scalars(select(Treatment).where(Treatment.patient_id == patient.id)
                                    .order_by(Treatment.treated_at.desc()).limit(5))]
            rec["appointments"] = [
                {"at": at(a.scheduled_at), "status": a.status, "department": a.department, "doctor": a.doctor,
                 # the patient's answer (reminder call / hotline), e.g. a reschedule request
                 "answer": a.answer, "answered_at": at(a.answered_at), "answered_via": a.answered_via}
                for a in s.scalars(select(Appointment).where(Appointment.patient_id == patient.id)
                                   .order_by(Appointment.scheduled_at.desc()).limit(5))]
    if _table("complaint_tickets") is not None:
        from callcenter.complaints.models import ComplaintTicket as T

        rec["complaints"] = [
            {"id": c.id, "number": c.number, "category": c.category, "status": c.status,
             "severity": c.severity, "received_at": at(c.received_at), "summary": c.summary[:200],
             "answer_due": at(c.answer_due)}
            for c in s.scalars(select(T).where(T.patient_phone.in_(variants),
                                               T.status.in_(("received", "acknowledged", "investigating", "answered")))
                               .order_by(T.received_at.desc()).limit(10))]
    rec["calls"] = previous_calls(s, variants)
    rec["outcomes"] = outcomes_for(s, variants)
    return rec


CAMPAIGN_COLUMNS = ("campaign", "kind", "mode", "state", "contacts", "due", "pending", "in_call", "dialled",
                    "reached", "completed", "rebooked", "declined", "opted_out", "unreachable", "expired",
                    "attempts", "answered", "attempts_per_contact", "abandon_rate", "survey_responses",
                    "survey_score_avg", "progress")


def campaign_statuses(s, now: float, abandon_days: float = 30.0) -> list[dict] | None:
    """``dialer.campaigns.status`` of every campaign (the numbers ``callcenter campaign status``
    prints), plus id, queue and settings; ``None`` without the dialer package."""
    if _table("campaigns") is None:
        return None
    from dialer.campaigns import list_campaigns

    return [campaign_view(s, c, now, abandon_days) for c in list_campaigns(s)]


def outbound_figures(s, now: float, day_start: float, window_days: float = 30.0,
                     limit: float = 2.0) -> list[dict] | None:
    """The dialer's outbound figures per campaign (:func:`dialer.outbound.campaign_figures`);
    ``None`` without the dialer tables."""
    if _table("dial_attempts") is None:
        return None
    from dialer.outbound import campaign_figures

    return campaign_figures(s, now=now, day_start=day_start, window_days=window_days, limit=limit)


def campaign_view(s, c, now: float, abandon_days: float = 30.0) -> dict:
    """One campaign: its row and its ``dialer.campaigns.status``."""
    from dialer.campaigns import status

    return {"id": c.id, **status(s, c, now=now, abandon_days=abandon_days), "queue": c.queue,
            "max_attempts": c.max_attempts, "settings": dict(c.settings or {}), "created_at": _utc(c.created_at)}


def campaign_progress(s, now: float, abandon_days: float = 30.0) -> list[dict] | None:
    """The campaigns report: the dialer's own status figures, one flat row per campaign.

    ``progress`` = share of contacts finished (neither pending nor in a call)."""
    rows = campaign_statuses(s, now, abandon_days)
    if rows is None:
        return None
    out = []
    for st in rows:
        total = st["contacts"]
        done = total - st["pending"] - st["in_call"]
        row = {k: st[k] for k in CAMPAIGN_COLUMNS if k != "progress"}
        row["progress"] = round(done / total, 3) if total else None
        out.append(row)
    return out


def complaint_deadlines(s, now: dt.datetime) -> list[dict] | None:
    """Open deadlines of open tickets, most urgent first, with time left (negative: overdue)."""
    if _table("complaint_deadlines") is None:
        return None
    from callcenter.complaints.models import ComplaintDeadline as D
    from callcenter.complaints.models import ComplaintTicket as T

    q = (select(D, T).join(T, T.id == D.ticket_id)
         .where(D.active.is_(True), D.met_at.is_(None)).order_by(D.due_at).limit(500))
    out = []
    for d, tk in s.execute(q):
        due = _utc(d.due_at)
        left = (due - now).total_seconds()
        out.append({"ticket": tk.number, "category": tk.category, "severity": tk.severity,
                    "status": tk.status, "deadline": d.kind, "due_at": due,
                    "hours_left": round(left / 3600, 1), "overdue": left < 0,
                    "level": "overdue" if left < 0 else d.level})
    return out


def agent_users(s) -> list[dict]:
    from callcenter.store.models import User

    return [{"username": u.username, "name": u.display_name or u.username, "interface": u.interface}
            for u in s.scalars(select(User).where(User.role == "agent", User.active.is_(True))
                               .order_by(User.username))]


def users_with_interface(s, interface: str) -> list[str]:
    from callcenter.store.models import User

    return list(s.scalars(select(User.username).where(User.interface == interface,
                                                      User.active.is_(True))))
