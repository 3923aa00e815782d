"""Read side of complaint tickets for the web and the API: lists with filters, one ticket
with its deadlines, history, links, calls and recordings.  Plain dicts, nothing written.

Each function takes the caller's session (run through ``Database.run``) and ``now`` (from
the injected clock) where a deadline's state depends on it:

* ``met`` (``on_time`` or ``late``) once the step that meets it was taken;
* ``overdue`` when ``now`` is past the due time; ``approaching`` past the warn instant;
  ``due`` otherwise; ``replaced`` when a newer date (expected resolution) superseded it.

Lists mask the patient's name and number (like the CLI); the single-ticket view shows
them to the supervisors who handle the complaint.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

from sqlalchemy import and_, exists, func, select

from callcenter.logs import mask_name, mask_number

from . import lifecycle
from .models import CATEGORIES, ComplaintDeadline, ComplaintEvent, ComplaintLink, ComplaintTicket
from .workdays import to_datetime

MAX_LIMIT = 500


def _iso(v: dt.datetime | None) -> str | None:
    return to_datetime(v).astimezone(dt.timezone.utc).isoformat() if v is not None else None


def deadline_state(d: ComplaintDeadline, now: dt.datetime) -> str:
    if d.met_at is not None:
        return "met"
    if not d.active:
        return "replaced"
    if to_datetime(d.due_at) <= now:
        return "overdue"
    if to_datetime(d.warn_at) <= now:
        return "approaching"
    return "due"


def _deadline(d: ComplaintDeadline, now: dt.datetime) -> dict[str, Any]:
    state = deadline_state(d, now)
    out = {"id": d.id, "kind": d.kind, "round": d.round, "due_at": _iso(d.due_at),
           "warn_at": _iso(d.warn_at), "working_time": d.working, "active": d.active,
           "met_at": _iso(d.met_at), "state": state, "alert": d.level,
           "seconds_left": round((to_datetime(d.due_at) - now).total_seconds())}
    if state == "met":
        out["on_time"] = to_datetime(d.met_at) <= to_datetime(d.due_at)
    return out


def _open_deadline_filter(now: dt.datetime, *, overdue: bool):
    D = ComplaintDeadline
    cond = and_(D.ticket_id == ComplaintTicket.id, D.active.is_(True), D.met_at.is_(None))
    if overdue:
        cond = and_(cond, D.due_at <= now)
    return exists().where(cond)


def list_tickets(session, *, now: dt.datetime | float, status: Iterable[str] = (), category: str | None = None,
                 severity: str | None = None, overdue: bool = False, created_by: str | None = None,
                 limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """Tickets, newest first.  ``status`` may include ``"open"`` (every open state);
    ``category="none"`` selects unclassified tickets (voice messages not yet listened to);
    ``overdue`` keeps tickets with an unmet deadline already past due."""
    now = to_datetime(now).astimezone(dt.timezone.utc)
    T = ComplaintTicket
    q = select(T)
    states = set(status)
    if "open" in states:
        states.discard("open")
        states.update(lifecycle.OPEN_STATES)
    if states:
        q = q.where(T.status.in_(sorted(states)))
    if category is not None:
        q = q.where(T.category == ("" if category == "none" else category))
    if severity:
        q = q.where(T.severity == severity)
    if created_by is not None:
        q = q.where(T.created_by == created_by)
    if overdue:
        q = q.where(T.status != "closed", _open_deadline_filter(now, overdue=True))
    total = session.scalar(select(func.count()).select_from(q.subquery()))
    limit = max(1, min(int(limit), MAX_LIMIT))
    tickets = list(session.scalars(q.order_by(T.received_at.desc(), T.id.desc()).limit(limit).offset(offset)))
    nxt = _next_deadlines(session, [t.id for t in tickets], now)
    rows = []
    for t in tickets:
        rows.append({
            "id": t.id, "number": t.number, "status": t.status, "category": t.category,
            "severity": t.severity, "channel": t.channel, "department": t.department,
            "tags": list(t.tags or []), "summary": t.summary[:200], "assigned_to": t.assigned_to,
            "created_by": t.created_by, "received_at": _iso(t.received_at), "updated_at": _iso(t.updated_at),
            "patient_phone": mask_number(t.patient_phone), "patient_name": mask_name(t.patient_name),
            "reopen_count": t.reopen_count, "next_deadline": nxt.get(t.id),
            "overdue": bool(nxt.get(t.id) and nxt[t.id]["state"] == "overdue"),
        })
    return {"total": total, "limit": limit, "offset": offset, "tickets": rows}


def _next_deadlines(session, ids: list[int], now: dt.datetime) -> dict[int, dict]:
    """The earliest unmet deadline of each ticket (one query for the page)."""
    if not ids:
        return {}
    D = ComplaintDeadline
    out: dict[int, dict] = {}
    for d in session.scalars(select(D).join(ComplaintTicket, ComplaintTicket.id == D.ticket_id).where(
            D.ticket_id.in_(ids), D.active.is_(True), D.met_at.is_(None),
            ComplaintTicket.status != "closed").order_by(D.due_at, D.id)):
        out.setdefault(d.ticket_id, {"kind": d.kind, "due_at": _iso(d.due_at),
                                     "state": deadline_state(d, now)})
    return out


def _table(name: str):
    from callcenter.store import Base, load_all_models

    load_all_models()
    return Base.metadata.tables.get(name)


def _calls(session, uniqueids: list[str]) -> list[dict]:
    t = _table("queue_calls")
    if t is None or not uniqueids:
        return []
    q = (select(t.c.uniqueid, t.c.queue, t.c.entered_at, t.c.outcome, t.c.agent_name, t.c.wait_seconds,
                t.c.talk_seconds).where(t.c.uniqueid.in_(uniqueids)).order_by(t.c.entered_at))
    return [{**dict(r._mapping), "entered_at": _iso(r.entered_at)} for r in session.execute(q)]


def _recordings(session, ticket_id: int, rec_ids: list[int], uniqueids: list[str]) -> list[dict] | None:
    """Recordings linked to the ticket (by id, by ticket, or of its linked calls)."""
    t = _table("recordings")
    if t is None:
        return None
    conds = [t.c.ticket_id == ticket_id] if "ticket_id" in t.c else []
    if rec_ids:
        conds.append(t.c.id.in_(rec_ids))
    if uniqueids:
        conds.append(t.c.uniqueid.in_(uniqueids))
    if not conds:
        return []
    from sqlalchemy import or_

    cols = [t.c[c] for c in ("id", "kind", "uniqueid", "started_at", "duration", "status", "error") if c in t.c]
    rows = session.execute(select(*cols).where(or_(*conds)).order_by(t.c.id)).all()
    return [{**dict(r._mapping), "started_at": _iso(r._mapping.get("started_at"))} for r in rows]


def ticket_view(session, ref: int | str, *, now: dt.datetime | float) -> dict[str, Any] | None:
    """Everything about one ticket, or None if there is no such ticket."""
    from .service import TicketNotFound, get_ticket

    now = to_datetime(now).astimezone(dt.timezone.utc)
    try:
        t = get_ticket(session, ref)
    except (TicketNotFound, ValueError):  # ValueError: not a number nor a ticket number
        return None
    deadlines = list(session.scalars(select(ComplaintDeadline).where(ComplaintDeadline.ticket_id == t.id)
                                     .order_by(ComplaintDeadline.round, ComplaintDeadline.id)))
    events = list(session.scalars(select(ComplaintEvent).where(ComplaintEvent.ticket_id == t.id)
                                  .order_by(ComplaintEvent.id)))
    links = list(session.scalars(select(ComplaintLink).where(ComplaintLink.ticket_id == t.id)
                                 .order_by(ComplaintLink.id)))
    uniqueids = [lk.ref for lk in links if lk.kind == "call"]
    rec_ids = [int(lk.ref) for lk in links if lk.kind == "recording" and lk.ref.isdigit()]
    from .models import ComplaintFollowup

    followups = list(session.scalars(select(ComplaintFollowup).where(ComplaintFollowup.ticket_id == t.id)
                                     .order_by(ComplaintFollowup.id)))
    stamps = ("received_at", "escalated_at", "acknowledged_at", "started_at", "progress_at", "answered_at",
              "resolved_at", "revisited_at", "closed_at", "updated_at")
    return {
        "id": t.id, "number": t.number, "status": t.status, "open": lifecycle.is_open(t.status),
        "category": t.category, "severity": t.severity, "channel": t.channel, "department": t.department,
        "tags": list(t.tags or []), "summary": t.summary, "demand": t.demand,
        "patient_phone": t.patient_phone, "patient_name": t.patient_name, "language": t.language,
        "assigned_to": t.assigned_to, "created_by": t.created_by,
        **{k: _iso(getattr(t, k)) for k in stamps},
        "expected_resolution": t.expected_resolution.isoformat() if t.expected_resolution else None,
        "satisfied": t.satisfied, "satisfaction": t.satisfaction, "reopen_count": t.reopen_count,
        "allowed": list(lifecycle.TRANSITIONS.get(t.status, ())),
        "deadlines": [_deadline(d, now) for d in deadlines],
        "events": [{"at": _iso(e.at), "actor": e.actor, "action": e.action, "field": e.field,
                    "from": e.from_value, "to": e.to_value, "note": e.note} for e in events],
        "links": [{"kind": lk.kind, "ref": lk.ref, "at": _iso(lk.at)} for lk in links],
        "calls": _calls(session, uniqueids),
        "recordings": _recordings(session, t.id, rec_ids, uniqueids),
        "followups": [{"round": f.round, "status": f.status, "due_before": _iso(f.due_before),
                       "contact_id": f.contact_id, "error": f.error} for f in followups],
    }


__all__ = ["CATEGORIES", "deadline_state", "list_tickets", "ticket_view"]
