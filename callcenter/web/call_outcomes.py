"""The outcome an agent records for a call: one per call, and at most one complaint ticket.

``call_outcomes.uniqueid`` is unique (migration 0970), and the row is inserted and flushed
*before* a ticket is opened, in the same transaction: of two saves of one call — a double
click, two tabs, two concurrent requests — the second waits on the first's row and fails
(IntegrityError) before it has opened anything; its whole transaction rolls back and
:func:`save` is run again, which then finds the stored outcome.  A repeat with the same
content is answered with the stored result (not created again); a different one is a
:class:`AlreadyRecorded` conflict naming what is stored.  The call must be one this agent
took: on their screen (the screen pop), or a stored queue call answered by their
interface; anything else is :class:`~callcenter.errors.NotFound`.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import or_, select

from callcenter.errors import Conflict, InvalidInput, NotFound
from callcenter.phones import canonical
from callcenter.store.models import audit

from .http import BadRequest

OUTCOMES = ("consultation", "appointment", "query", "complaint", "suggestion", "callback", "other")
CATEGORIES = ("medical", "attitude", "environment", "fees", "communication")
SEVERITIES = ("urgent", "normal", "complex")
_TRUE = ("1", "on", "true", "yes", True)


class AlreadyRecorded(Conflict):
    """This call has its outcome; a different one cannot replace it."""


@dataclass(frozen=True)
class OutcomeForm:
    uniqueid: str
    outcome: str
    note: str
    queue: str
    caller_number: str
    caller_name: str
    open_complaint: bool
    category: str
    severity: str
    department: str


def parse(form: dict, region: str) -> OutcomeForm:
    """The form or JSON body; BadRequest naming the field."""
    outcome = str(form.get("outcome") or "")
    if outcome not in OUTCOMES:
        raise BadRequest(f"outcome must be one of {', '.join(OUTCOMES)}")
    uniqueid = str(form.get("uniqueid") or "").strip()
    if not uniqueid or len(uniqueid) > 64:
        raise BadRequest("uniqueid is required (the call this outcome belongs to, at most 64 characters)")
    open_complaint = form.get("open_complaint") in _TRUE
    category = str(form.get("category") or "")
    severity = "urgent" if form.get("urgent") in _TRUE else str(form.get("severity") or "normal")
    if open_complaint and category not in CATEGORIES:
        raise BadRequest(f"category must be one of {', '.join(CATEGORIES)}")
    if open_complaint and severity not in SEVERITIES:
        raise BadRequest(f"severity must be one of {', '.join(SEVERITIES)}")
    return OutcomeForm(
        uniqueid=uniqueid, outcome=outcome, note=str(form.get("note") or "").strip()[:4000],
        queue=str(form.get("queue") or "")[:64],
        caller_number=canonical(str(form.get("caller_number") or "").strip()[:32], region),
        caller_name=str(form.get("caller_name") or "").strip()[:64], open_complaint=open_complaint,
        category=category if open_complaint else "", severity=severity if open_complaint else "",
        department=str(form.get("department") or "")[:64] if open_complaint else "")


def took_call(s, uniqueid: str, interface: str) -> bool:
    """A stored queue call (by its uniqueid or linkedid) answered by ``interface``."""
    from callcenter.queuecalls.models import QueueCall

    if not interface:
        return False
    q = select(QueueCall.id).where(or_(QueueCall.uniqueid == uniqueid, QueueCall.linkedid == uniqueid),
                                   QueueCall.agent == interface).limit(1)
    return s.scalars(q).first() is not None


def stored(s, uniqueid: str):
    from .models import CallOutcome

    return s.scalars(select(CallOutcome).where(CallOutcome.uniqueid == uniqueid)).first()


def _result(s, row, *, created: bool) -> dict:
    from callcenter.complaints.models import ComplaintTicket

    ticket = s.get(ComplaintTicket, row.complaint_id) if row.complaint_id is not None else None
    return {"id": row.id, "uniqueid": row.uniqueid, "outcome": row.outcome, "created": created,
            "complaint": {"id": ticket.id, "number": ticket.number} if ticket is not None else None}


def save(s, complaints, *, user, form: OutcomeForm, now: dt.datetime, lang: str, on_screen: bool) -> dict:
    """Store the outcome of ``form.uniqueid`` once (see the module docstring).  ``on_screen``:
    the call was popped on this user's screen.  ``complaints``: the domain's service."""
    from .models import CallOutcome

    row = stored(s, form.uniqueid)
    if row is not None:
        same = (row.outcome == form.outcome and row.note == form.note
                and (row.complaint_id is not None) == form.open_complaint)
        if not same:
            res = _result(s, row, created=False)
            ticket = f", complaint ticket {res['complaint']['number']}" if res["complaint"] else ""
            raise AlreadyRecorded(f"call {form.uniqueid} already has its outcome ({row.outcome}{ticket}, "
                                  f"saved by {row.agent})")
        return _result(s, row, created=False)
    if not on_screen and not took_call(s, form.uniqueid, user.interface):
        raise NotFound(f"no call {form.uniqueid} taken by you")
    row = CallOutcome(uniqueid=form.uniqueid, queue=form.queue, caller_number=form.caller_number,
                      agent=user.username, outcome=form.outcome, note=form.note, created_at=now)
    s.add(row)
    s.flush()  # the unique uniqueid: a concurrent save of this call stops here, before any ticket
    ticket = None
    if form.open_complaint:
        try:
            ticket = complaints.open_ticket(
                s, actor=user.username, category=form.category, severity=form.severity,
                department=form.department, channel="phone", summary=form.note or form.outcome, received_at=now,
                patient_phone=form.caller_number, patient_name=form.caller_name, language=lang,
                call_uniqueid=form.uniqueid)
        except InvalidInput as exc:  # the complaint's own validation (ComplaintError)
            raise BadRequest(str(exc)) from None
        row.complaint_id = ticket.id
        s.flush()
    audit(s, user.username, "call_outcome", "call", form.uniqueid, outcome=form.outcome,
          complaint=ticket.number if ticket is not None else None)
    return _result(s, row, created=True)
