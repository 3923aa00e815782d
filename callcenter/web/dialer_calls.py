"""The agent's side of an outbound dialer call: why the patient is being called, and the result.

The dialer originates with channel variables ``ATTEMPT_ID``/``CAMPAIGN_ID``; Asterisk reports
them as ``VarSet`` events (same ``Linkedid`` as the call the agent then gets in
``AgentConnect``).  :class:`dialer.tracker.LinkedAttempts` (the dialer's one correlation)
remembers Linkedid -> attempt from those events; the screen pop then loads the attempt's contact, campaign and the row
it is about (treatment, missed appointment, complaint ticket) with :func:`call_context`.
The outcome form goes to ``DialerApi.record_outcome`` and, when the patient asks never to
be called again, ``DialerApi.add_do_not_call(..., source="agent")``.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from callcenter.errors import Conflict, Forbidden, NotFound
from callcenter.store.models import audit

from .call_outcomes import AlreadyRecorded, stored
from .http import BadRequest

OUTCOMES = {  # campaign kind -> what the agent may record (DialerApi.record_outcome)
    "revisit": ("completed", "rebooked", "declined"),
    "no_show": ("rebooked", "declined"),
    "complaint_followup": ("completed", "declined"),
    "callback": ("completed", "rebooked", "declined"),
}
ALL_OUTCOMES = ("completed", "rebooked", "declined")
_TRUE = ("1", "on", "true", "yes")
_FALSE = ("0", "off", "false", "no")


def _utc(d):
    from .data import _utc as utc

    return utc(d)


# --- database thread ---------------------------------------------------------------------------

def call_context(s, attempt_id: int) -> dict | None:
    """Why this patient is being called: campaign, contact, and the treatment / missed
    appointment / complaint ticket the contact is about."""
    from .data import _table

    if _table("dial_attempts") is None:
        return None
    from dialer.models import Appointment, Attempt, Campaign, Contact, Treatment

    a = s.get(Attempt, int(attempt_id))
    if a is None:
        return None
    c = s.get(Contact, a.contact_id)
    camp = s.get(Campaign, a.campaign_id)
    why: dict = {"kind": camp.kind, "reason": c.reason, "ref_type": c.ref_type, "ref_id": c.ref_id}
    ref = c.ref_id.split("#", 1)[0]
    if c.ref_type == "treatment" and ref.isdigit():
        tr = s.get(Treatment, int(ref))
        if tr is not None:
            step = c.reason.split(":")[2] if c.reason.count(":") >= 2 else ""
            why["treatment"] = {"type": tr.treatment_type, "at": _utc(tr.treated_at), "doctor": tr.doctor,
                                "step": step, "external_id": tr.external_id}
    elif c.ref_type in ("appointment", "appointment_reminder") and ref.isdigit():  # no-show, reminder
        ap = s.get(Appointment, int(ref))
        if ap is not None:
            why["appointment"] = {"at": _utc(ap.scheduled_at), "department": ap.department, "status": ap.status,
                                  "external_id": ap.external_id, "answer": ap.answer}
    elif c.ref_type == "complaint" and ref.isdigit() and _table("complaint_tickets") is not None:
        from callcenter.complaints.models import ComplaintTicket

        tk = s.get(ComplaintTicket, int(ref))
        if tk is not None:
            why["complaint"] = {"id": tk.id, "number": tk.number, "category": tk.category, "status": tk.status,
                                "summary": tk.summary[:200], "resolved_at": _utc(tk.resolved_at),
                                "department": tk.department}
    return {"attempt_id": a.id, "contact_id": c.id, "campaign_id": camp.id, "campaign": camp.name,
            "kind": camp.kind, "mode": camp.mode, "phone": c.phone, "name": c.name, "attempts": c.attempts,
            "outcome": c.outcome, "why": why, "outcomes": list(OUTCOMES.get(camp.kind, ALL_OUTCOMES)),
            "asks_satisfaction": camp.kind == "complaint_followup"}


def parse_outcome(form: dict) -> dict:
    raw_id = str(form.get("attempt_id") or "").strip()
    if not raw_id.isdigit() or len(raw_id) > 18:
        raise BadRequest("attempt_id: required, the dialer call's attempt number")
    outcome = (form.get("outcome") or "").strip()
    dnc = str(form.get("do_not_call") or "").lower() in _TRUE
    if outcome and outcome not in ALL_OUTCOMES:
        raise BadRequest(f"outcome: must be one of {', '.join(ALL_OUTCOMES)}")
    if not outcome and not dnc:
        raise BadRequest("outcome: required (or do_not_call)")
    sat_raw = str(form.get("satisfied") or "").strip().lower()
    if sat_raw and sat_raw not in _TRUE + _FALSE:
        raise BadRequest("satisfied: yes or no")
    satisfied = None if not sat_raw else sat_raw in _TRUE
    return {"attempt_id": int(raw_id), "outcome": outcome, "do_not_call": dnc, "satisfied": satisfied,
            "note": str(form.get("note") or "").strip()[:2000]}


class NotYours(Forbidden):
    """The dial attempt is another agent's call."""


class Closed(Conflict):
    """The contact already has its result (recorded, or given up): nothing more to record."""

    def __init__(self, contact_id: int, outcome: str):
        super().__init__(f"contact {contact_id} is closed (outcome {outcome})")
        self.outcome = outcome


OPEN_OUTCOMES = ("", "reached")  # a contact with any other outcome is closed


def save_outcome(s, api, fields: dict, *, user, popped_attempt: int | None, now: dt.datetime) -> dict:
    """Record the agent's result for the contact behind ``attempt_id``: a call this agent took
    (the one on screen, or any earlier one whose queue member interface is the user's), until
    the contact is closed.  The member *name* is display text and never identifies a user.
    ``api`` is the app's :class:`dialer.api.DialerApi`."""
    from dialer.models import Attempt, Campaign, Contact

    from .models import CallOutcome

    a = s.get(Attempt, fields["attempt_id"])
    if a is None:
        raise NotFound(f"no dial attempt {fields['attempt_id']}")
    if popped_attempt != a.id and not (user.interface and a.agent_interface == user.interface):
        raise NotYours(f"dial attempt {a.id} is not your call")
    c = s.get(Contact, a.contact_id)
    if c.outcome not in OPEN_OUTCOMES:
        raise Closed(c.id, c.outcome)
    kind = s.get(Campaign, a.campaign_id).kind
    outcome = fields["outcome"]
    if outcome and outcome not in OUTCOMES.get(kind, ALL_OUTCOMES):
        raise BadRequest(f"outcome: for a {kind} call one of {', '.join(OUTCOMES.get(kind, ALL_OUTCOMES))}")
    satisfied = fields["satisfied"]
    if kind == "complaint_followup" and outcome == "completed" and satisfied is None:
        raise BadRequest("satisfied: required for a completed complaint follow-up (yes or no)")
    uniqueid = (a.uniqueid or f"attempt:{a.id}")[:64]
    if stored(s, uniqueid) is not None:
        raise AlreadyRecorded(f"call {uniqueid} (dial attempt {a.id}) already has its outcome")
    final = outcome or "opted_out"
    s.add(CallOutcome(uniqueid=uniqueid, queue="", caller_number=c.phone,
                      agent=user.username, outcome=f"dialer_{final}", note=fields["note"], created_at=now))
    s.flush()  # one outcome per call (unique uniqueid): a concurrent save stops here, before any change
    closed = 0
    if fields["do_not_call"]:
        closed = api.add_do_not_call(s, c.phone, source="agent", reason=f"agent {user.username} attempt {a.id}",
                                     at=now)
    api.record_outcome(s, contact_id=c.id, outcome=final, by=user.username,
                       satisfied=satisfied if kind == "complaint_followup" else None, note=fields["note"], at=now)
    audit(s, user.username, "dialer_outcome", "dial_attempt", a.id, contact=c.id, kind=kind, outcome=final,
          do_not_call=fields["do_not_call"], satisfied=satisfied)
    return {"attempt_id": a.id, "contact_id": c.id, "outcome": final, "do_not_call": fields["do_not_call"],
            "other_contacts_closed": closed, "contact_state": c.state}
