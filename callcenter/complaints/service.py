"""Complaint tickets: opening, moving through the life cycle, revisits (store side).

Every function takes a SQLAlchemy ``session`` (the caller's transaction: run it
through ``Database.run`` from the event loop), an ``actor`` (username, or
``"ivr"``/``"dialer"``/``"system"``) and the instant ``at`` (datetime or POSIX
seconds from the injected clock; never the wall clock).  Every change is written
to ``complaint_events`` (who, when, what, from -> to) and to the shared audit log.

Deadlines come from :mod:`.deadlines` with the :class:`Policy` a
:class:`Complaints` service is built with (from ``[complaints]``/``[hospital]``).
Read-only look-ups are plain functions; what depends on the policy or tells
another feature (the dialer's revisit call, the recordings' retention) is a
method of :class:`Complaints`.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Iterable

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from callcenter.errors import Conflict, InvalidInput, NotFound
from callcenter.logs import mask_text
from callcenter.ports import Followups, RecordingLinks, require_all
from callcenter.store.models import audit

from . import deadlines as dl
from . import lifecycle
from .models import (CATEGORIES, LINK_KINDS, ComplaintCounter, ComplaintDeadline, ComplaintEvent,
                     ComplaintFollowup, ComplaintLink, ComplaintTicket)
from .workdays import to_datetime

log = logging.getLogger("callcenter.complaints")
alert_log = logging.getLogger("callcenter.complaints.alerts")


class ComplaintError(InvalidInput):
    """Bad input for a complaint (``field`` names it)."""


class TicketNotFound(NotFound):
    """No ticket (or follow-up) by that reference."""


IllegalTransition = lifecycle.IllegalTransition
UNSATISFIED_TAG = "unsatisfied-call"  # an open ticket whose call the caller rated unsatisfied


def _utc(at: dt.datetime | float) -> dt.datetime:
    return to_datetime(at).astimezone(dt.timezone.utc)


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, dt.datetime):
        return _utc(v).isoformat()
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    return str(v)


# -- look-ups -----------------------------------------------------------------

def get_ticket(session, ref: int | str) -> ComplaintTicket:
    """By id, by number (``TS-2026-000123``) or by a follow-up reference (``"<id>#<round>"``,
    what the dialer holds for the revisit of a reopened ticket); ComplaintError if there is none."""
    if isinstance(ref, str) and "#" in ref:
        ref = ref.split("#", 1)[0]
    if isinstance(ref, str) and not ref.isdigit():
        t = session.scalars(select(ComplaintTicket).where(ComplaintTicket.number == ref.upper())).first()
    else:
        t = session.get(ComplaintTicket, int(ref))
    if t is None:
        raise TicketNotFound(f"no complaint ticket {ref}")
    return t


def events(session, ticket_id: int) -> list[ComplaintEvent]:
    return list(session.scalars(select(ComplaintEvent).where(ComplaintEvent.ticket_id == ticket_id)
                                .order_by(ComplaintEvent.id)))


def links(session, ticket_id: int) -> list[ComplaintLink]:
    return list(session.scalars(select(ComplaintLink).where(ComplaintLink.ticket_id == ticket_id)
                                .order_by(ComplaintLink.id)))


def ticket_deadlines(session, ticket_id: int) -> list[ComplaintDeadline]:
    return list(session.scalars(select(ComplaintDeadline).where(ComplaintDeadline.ticket_id == ticket_id)
                                .order_by(ComplaintDeadline.id)))


# -- internals ----------------------------------------------------------------

def _event(session, ticket: ComplaintTicket, actor: str, at: dt.datetime, action: str, *,
           field: str = "", from_value: Any = None, to_value: Any = None, note: str = "") -> None:
    session.add(ComplaintEvent(ticket_id=ticket.id, at=at, actor=actor, action=action, field=field,
                               from_value=_text(from_value), to_value=_text(to_value), note=note))
    detail = {"field": field} if field else {}
    if field in ("status", "severity", "category", "department"):
        detail.update({"from": _text(from_value), "to": _text(to_value)})
    audit(session, actor, f"complaint.{action}", "complaint", ticket.number, **detail)
    ticket.updated_at = at


def _next_number(session, year: int) -> str:
    """``TS-<year>-<serial>``: a per-year serial (row lock on PostgreSQL, DB lock on SQLite)."""
    for _ in range(5):
        last = session.execute(
            update(ComplaintCounter).where(ComplaintCounter.year == year)
            .values(last=ComplaintCounter.last + 1).returning(ComplaintCounter.last)
        ).scalar()
        if last is not None:
            return f"TS-{year}-{last:06d}"
        try:
            with session.begin_nested():
                session.add(ComplaintCounter(year=year, last=1))
            return f"TS-{year}-{1:06d}"
        except IntegrityError:  # another transaction created the year's row: go again
            continue
    raise RuntimeError("could not allocate a complaint number")


def _add_deadlines(session, ticket: ComplaintTicket, items: Iterable[dl.Deadline]) -> None:
    for d in items:
        if d.kind == "answer":  # a new answer date replaces the previous one
            session.execute(update(ComplaintDeadline).where(
                ComplaintDeadline.ticket_id == ticket.id, ComplaintDeadline.kind == "answer",
                ComplaintDeadline.round == ticket.reopen_count, ComplaintDeadline.met_at.is_(None),
                ComplaintDeadline.active.is_(True)).values(active=False))
        session.add(ComplaintDeadline(ticket_id=ticket.id, kind=d.kind, round=ticket.reopen_count,
                                      due_at=d.due, warn_at=d.warn, working=d.working, active=True,
                                      level="ok"))
        setattr(ticket, f"{d.kind}_due", d.due)


def _meet(session, ticket: ComplaintTicket, kinds: Iterable[str], at: dt.datetime) -> None:
    session.execute(update(ComplaintDeadline).where(
        ComplaintDeadline.ticket_id == ticket.id, ComplaintDeadline.kind.in_(list(kinds)),
        ComplaintDeadline.met_at.is_(None), ComplaintDeadline.active.is_(True)).values(met_at=at))


def _validate(category: str, severity: str, channel: str, tags: Iterable[str]) -> list[str]:
    if category and category not in CATEGORIES:
        raise ComplaintError(f"unknown {category!r} (known: {', '.join(CATEGORIES)})", field="category")
    if severity not in dl.SEVERITIES:
        raise ComplaintError(f"unknown {severity!r} (known: {', '.join(dl.SEVERITIES)})", field="severity")
    if channel not in dl.CHANNELS:
        raise ComplaintError(f"unknown {channel!r} (known: {', '.join(dl.CHANNELS)})", field="channel")
    clean = []
    for tag in tags or ():
        tag = str(tag).strip()
        if not tag or len(tag) > 32:
            raise ComplaintError(f"each tag must be 1-32 characters, got {tag!r}", field="tags")
        if tag not in clean:
            clean.append(tag)
    return clean


# -- opening ------------------------------------------------------------------


# -- the revisit call (read side) ----------------------------------------------

def followup_ref(ticket: ComplaintTicket, round_: int) -> int | str:
    """The ``ref_id`` given to the dialer: the ticket id, plus ``#<round>`` after a reopen
    (the dialer de-duplicates per reference, and each resolution needs its own revisit)."""
    return ticket.id if round_ == 0 else f"{ticket.id}#{round_}"


def pending_followups(session, *, limit: int = 100) -> list[dict]:
    """Revisit calls not yet handed to the dialer (for a dialer that polls)."""
    rows = session.execute(
        select(ComplaintFollowup, ComplaintTicket).join(
            ComplaintTicket, ComplaintTicket.id == ComplaintFollowup.ticket_id)
        .where(ComplaintFollowup.status == "pending").order_by(ComplaintFollowup.due_before).limit(limit)
    ).all()
    return [{"followup_id": fu.id, "ticket_id": t.id, "ticket_number": t.number,
             "phone": t.patient_phone, "name": t.patient_name, "due_after": fu.due_after,
             "due_before": fu.due_before, "ref_type": "complaint", "ref_id": followup_ref(t, fu.round)}
            for fu, t in rows]


def mark_followup_scheduled(session, followup_id: int, contact_id: int | None) -> None:
    """The dialer took a pending revisit call (``pending_followups``)."""
    fu = session.get(ComplaintFollowup, followup_id)
    if fu is None:
        raise TicketNotFound(f"no complaint follow-up {followup_id}")
    fu.status, fu.contact_id = "scheduled", contact_id


class Complaints:
    """Complaint tickets under one deadline policy, and the features they tell.

    Built by the composition root: ``followups`` schedules the revisit call of a
    resolved ticket (the dialer), ``recordings`` gives a linked call's recordings
    complaint retention.  Every method takes the caller's ``session``.
    """

    def __init__(self, policy: dl.Policy, *, followups: Followups, recordings: RecordingLinks,
                 close_on_satisfied_revisit: bool = True):
        require_all([(followups, Followups, "complaints followups"),
                     (recordings, RecordingLinks, "complaints recordings")])
        self.policy = policy
        self.calendar = policy.calendar()
        self.followups = followups
        self.recordings = recordings
        self.close_on_satisfied = close_on_satisfied_revisit

    @classmethod
    def from_config(cls, config, *, followups: Followups, recordings: RecordingLinks) -> "Complaints":
        return cls(dl.Policy.from_config(config), followups=followups, recordings=recordings,
                   close_on_satisfied_revisit=config.values["complaints"]["close_on_satisfied_revisit"])

    # read-only look-ups, also on the service for its callers
    get_ticket = staticmethod(get_ticket)
    events = staticmethod(events)
    links = staticmethod(links)
    ticket_deadlines = staticmethod(ticket_deadlines)
    pending_followups = staticmethod(pending_followups)
    mark_followup_scheduled = staticmethod(mark_followup_scheduled)

    def open_ticket(self, session, *, actor: str, category: str, severity: str = "normal", channel: str = "phone",
                    summary: str = "", received_at: dt.datetime | float, department: str = "",
                    tags: Iterable[str] = (), demand: str = "", patient_phone: str = "",
                    patient_name: str = "", language: str = "zh", call_uniqueid: str | None = None,
                    recording_id: int | str | None = None, ivr_session_id: int | str | None = None,
                    ) -> ComplaintTicket:
        """Open a ticket and set its deadlines.  ``category=""`` means not yet classified
        (voice messages); phone tickets are acknowledged at once by the agent on the call;
        urgent tickets are escalated at once (an alert line is logged now)."""
        clean_tags = _validate(category, severity, channel, tags)
        at = _utc(received_at)
        year = self.calendar.local(at).year
        ticket = ComplaintTicket(
            number=_next_number(session, year), category=category, tags=clean_tags, severity=severity,
            channel=channel, department=department.strip(), summary=summary.strip(), demand=demand.strip(),
            patient_phone=(patient_phone or "").strip(), patient_name=(patient_name or "").strip(),
            language=language, status="received", created_by=actor, received_at=at, updated_at=at,
            reopen_count=0,
        )
        session.add(ticket)
        session.flush()
        _event(session, ticket, actor, at, "opened", field="status", to_value="received",
               note=f"channel={channel} severity={severity} category={category or '-'}")
        _add_deadlines(session, ticket, dl.initial_deadlines(self.policy, self.calendar, severity=severity,
                                                             channel=channel, received_at=at))
        for kind, ref in (("call", call_uniqueid), ("recording", recording_id), ("ivr_session", ivr_session_id)):
            if ref not in (None, ""):
                self._link(session, ticket, kind, str(ref), actor, at)
        if channel in self.policy.auto_ack_channels:
            self._move(session, ticket, "acknowledged", actor, at, note="acknowledged by the agent on the call")
        if severity == "urgent":
            ticket.escalated_at = at
            _event(session, ticket, actor, at, "escalated", note="urgent: passed to the department at once")
            alert_log.warning("complaint-alert ticket=%s deadline=start state=escalated due=%s",
                              ticket.number, _text(ticket.start_due))
        session.flush()
        return ticket

    def open_from_voice_message(self, session, *, caller_number: str, caller_name: str = "",
                                recording_id: int | str | None, received_at: dt.datetime | float,
                                language: str = "zh", uniqueid: str | None = None,
                                ivr_session_id: int | str | None = None) -> int:
        """The IVR's hook: an after-hours voice message becomes an unclassified normal ticket
        linked to its recording; returns the ticket id."""
        ticket = self.open_ticket(
            session, actor="ivr", category="", severity="normal", channel="voicemail",
            summary="语音留言 voice message (listen to the recording)", received_at=received_at,
            tags=["voice-message"], patient_phone=caller_number or "", patient_name=caller_name or "",
            language=language or "zh", call_uniqueid=uniqueid, recording_id=recording_id,
            ivr_session_id=ivr_session_id)
        log.info("complaint %s opened from a voice message (caller %s)", ticket.number,
                 mask_text(caller_number or "unknown"))
        return ticket.id

    def _link(self, session, ticket: ComplaintTicket, kind: str, ref: str, actor: str, at: dt.datetime) -> bool:
        if kind not in LINK_KINDS:
            raise ComplaintError(f"unknown {kind!r} (known: {', '.join(LINK_KINDS)})", field="link kind")
        exists = session.scalars(select(ComplaintLink.id).where(
            ComplaintLink.ticket_id == ticket.id, ComplaintLink.kind == kind, ComplaintLink.ref == ref)).first()
        if exists:
            return False
        session.add(ComplaintLink(ticket_id=ticket.id, kind=kind, ref=ref, at=at))
        _event(session, ticket, actor, at, "linked", field=kind, to_value=ref)
        if kind in ("call", "recording"):
            self._mark_recordings(session, ticket, kind, ref)
        return True

    def _mark_recordings(self, session, ticket: ComplaintTicket, kind: str, ref: str) -> None:
        """Tell the recordings catalogue that its recordings of this call belong to a ticket:
        they get the ticket id and complaint retention.  Never fails the ticket."""
        try:
            with session.begin_nested():
                if kind == "recording":
                    if ref.isdigit():
                        self.recordings.link_ticket(session, ticket_id=ticket.id, recording_id=int(ref))
                else:
                    self.recordings.link_ticket(session, ticket_id=ticket.id, uniqueid=ref)
        except Exception as exc:  # noqa: BLE001 - the link stays on the ticket either way
            log.warning("complaint %s: recordings not marked (%s)", ticket.number, exc.__class__.__name__)

    def link(self, session, ticket_id: int | str, kind: str, ref: int | str, *, actor: str,
             at: dt.datetime | float) -> bool:
        """Link a call (queue call uniqueid), recording (id) or IVR session; False if already linked."""
        return self._link(session, get_ticket(session, ticket_id), kind, str(ref), actor, _utc(at))

    def _move(self, session, ticket: ComplaintTicket, to: str, actor: str, at: dt.datetime, *,
              via: str = "move", note: str = "") -> None:
        frm = ticket.status
        lifecycle.check(frm, to, via=via, note=note)
        ticket.status = to
        _event(session, ticket, actor, at, "reopened" if (via == "reopen") else "moved",
               field="status", from_value=frm, to_value=to, note=note)
        if to == "acknowledged":
            ticket.acknowledged_at = ticket.acknowledged_at or at
            _meet(session, ticket, ["ack"], at)
        elif to == "investigating" and via == "move":
            ticket.acknowledged_at = ticket.acknowledged_at or at
            ticket.started_at = ticket.started_at or at
            _meet(session, ticket, ["ack", "start"], at)
        elif to == "answered":
            ticket.answered_at = at
            _meet(session, ticket, ["ack", "start", "progress", "answer"], at)
        elif to == "resolved":
            ticket.resolved_at = at
            _meet(session, ticket, ["ack", "start", "progress", "answer"], at)
            rv = dl.revisit_deadline(self.policy, at)
            _add_deadlines(session, ticket, [rv])
            self._schedule_followup(session, ticket, at, rv.due)
        elif to == "closed":
            ticket.closed_at = at

    def transition(self, session, ticket_id: int | str, to_state: str, *, actor: str, at: dt.datetime | float,
                   note: str = "") -> ComplaintTicket:
        """An operator's move (acknowledge, start, answer, resolve, close).  Illegal moves raise
        :class:`IllegalTransition` naming from and to; revisits go through :func:`record_revisit`,
        reopening through :func:`reopen`."""
        ticket = get_ticket(session, ticket_id)
        self._move(session, ticket, to_state, actor, _utc(at), note=note)
        session.flush()
        return ticket

    def reopen(self, session, ticket_id: int | str, *, actor: str, at: dt.datetime | float, reason: str,
               via: str = "reopen") -> ComplaintTicket:
        """Back to ``investigating`` with a new round of deadlines (start and answer/progress)."""
        if not reason.strip():
            raise ComplaintError("reopening a ticket needs a reason", field="reason")
        ticket = get_ticket(session, ticket_id)
        at = _utc(at)
        self._move(session, ticket, "investigating", actor, at, via="reopen", note=reason)
        ticket.reopen_count += 1
        # Handling restarts now: the new round has the answer (or progress) deadline only.
        _add_deadlines(session, ticket, [d for d in dl.initial_deadlines(
            self.policy, self.calendar, severity=ticket.severity, channel=None, received_at=at) if d.kind != "start"])
        session.flush()
        return ticket

    def flag_unsatisfied_call(self, session, *, call_refs: list[str], at: dt.datetime | float,
                              note: str = "", actor: str = "ivr") -> list[int]:
        """The caller rated a call unsatisfied after it (post-call rating): every ticket linked
        to the call (``call`` links: uniqueid or Linkedid) is reopened when it was resolved,
        revisited or closed, or, still open, flagged (tag ``UNSATISFIED_TAG`` and a ``flagged``
        event), so its handler sees it.  Returns the ticket ids."""
        refs = [r for r in dict.fromkeys(call_refs) if r]
        if not refs:
            return []
        at = _utc(at)
        why = "caller not satisfied in the post-call rating" + (f": {note}" if note else "")
        ids = sorted(set(session.scalars(select(ComplaintLink.ticket_id).where(
            ComplaintLink.kind == "call", ComplaintLink.ref.in_(refs)))))
        for tid in ids:
            ticket = get_ticket(session, tid)
            if lifecycle.is_open(ticket.status):
                before = list(ticket.tags or [])
                if UNSATISFIED_TAG not in before:
                    ticket.tags = [*before, UNSATISFIED_TAG]
                _event(session, ticket, actor, at, "flagged", field="tags", from_value=before,
                       to_value=ticket.tags, note=why)
                done = "flagged"
            else:
                self.reopen(session, ticket.id, actor=actor, at=at, reason=why)
                done = "reopened"
            log.info("complaint %s %s after an unsatisfied post-call rating", ticket.number, done)
        session.flush()
        return ids

    def record_progress(self, session, ticket_id: int | str, *, actor: str, at: dt.datetime | float, note: str,
                        expected_resolution: dt.date | None = None) -> ComplaintTicket:
        """A progress update given to the patient (complex tickets), optionally with the expected
        resolution date, which becomes the ``answer`` deadline."""
        ticket = get_ticket(session, ticket_id)
        at = _utc(at)
        if not lifecycle.is_open(ticket.status):
            raise Conflict(f"ticket {ticket.number} is {ticket.status}: no progress update on it")
        ticket.progress_at = at
        _meet(session, ticket, ["progress"], at)
        _event(session, ticket, actor, at, "progress", field="expected_resolution",
               from_value=ticket.expected_resolution, to_value=expected_resolution, note=note)
        if expected_resolution is not None:
            try:
                d = dl.resolution_deadline(self.policy, self.calendar, set_at=at, expected=expected_resolution)
            except ValueError as exc:
                raise ComplaintError(f"{exc}", field="expected_resolution") from None
            ticket.expected_resolution = expected_resolution
            _add_deadlines(session, ticket, [d])
        session.flush()
        return ticket

    def record_revisit(self, session, ticket_id: int | str, satisfied: bool, note: str = "",
                       at: dt.datetime | float | None = None, *, actor: str = "dialer",
                       score: int | None = None, strict: bool = False) -> ComplaintTicket:
        """The revisit (回访) after resolution.  Satisfied: ``revisited`` (then ``closed`` when
        ``close_on_satisfied_revisit``).  Not satisfied: recorded, then the ticket reopens.

        A revisit for a ticket that is no longer ``resolved`` (closed by hand meanwhile, a
        second report of the same call) is recorded as an event and changes nothing, so the
        dialer's transaction (which calls this) is never rolled back by it; ``strict=True``
        (operators) raises :class:`IllegalTransition` instead."""
        if at is None:
            raise ComplaintError("the revisit time is required", field="at")
        if score is not None and not 1 <= int(score) <= 5:
            raise ComplaintError(f"must be 1-5, got {score!r}", field="score")
        ticket = get_ticket(session, ticket_id)
        at = _utc(at)
        if ticket.status != "resolved" and not strict:
            _event(session, ticket, actor, at, "revisit-ignored", field="satisfied", to_value=bool(satisfied),
                   note=f"ticket is {ticket.status}: {note}".strip(": "))
            log.warning("complaint %s: revisit result ignored, ticket is %s", ticket.number, ticket.status)
            session.flush()
            return ticket
        self._move(session, ticket, "revisited", actor, at, via="revisit", note=note)
        ticket.revisited_at = at
        ticket.satisfied = bool(satisfied)
        ticket.satisfaction = int(score) if score is not None else None
        _meet(session, ticket, ["revisit"], at)
        session.execute(update(ComplaintFollowup).where(
            ComplaintFollowup.ticket_id == ticket.id, ComplaintFollowup.round == ticket.reopen_count,
            ComplaintFollowup.status.in_(("scheduled", "pending"))).values(status="done"))
        _event(session, ticket, actor, at, "revisit", field="satisfied", to_value=bool(satisfied),
               note=note)
        if satisfied:
            if self.close_on_satisfied:
                self._move(session, ticket, "closed", actor, at, note="patient satisfied at the revisit")
        else:
            self.reopen(session, ticket.id, actor=actor, at=at, reason=f"patient not satisfied at the revisit: {note}".strip(": "))
        session.flush()
        return ticket

    def update_ticket(self, session, ticket_id: int | str, *, actor: str, at: dt.datetime | float,
                      **changes: Any) -> ComplaintTicket:
        """Change classification or handling fields (category, tags, department, summary,
        demand, assigned_to), each change audited.  Severity is fixed at opening (its
        deadlines depend on it): open a new ticket or reopen instead."""
        allowed = {"category", "tags", "department", "summary", "demand", "assigned_to"}
        unknown = set(changes) - allowed
        if unknown:
            raise ComplaintError(f"cannot change {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(allowed))})")
        ticket = get_ticket(session, ticket_id)
        at = _utc(at)
        if "category" in changes or "tags" in changes:
            tags = _validate(changes.get("category", ticket.category) or "", ticket.severity, ticket.channel,
                             changes.get("tags", ticket.tags))
            if "tags" in changes:
                changes["tags"] = tags
        for key, value in changes.items():
            old = getattr(ticket, key)
            if old != value:
                setattr(ticket, key, value)
                _event(session, ticket, actor, at, "changed", field=key, from_value=old, to_value=value)
        session.flush()
        return ticket

    def _try_dialer(self, session, ticket: ComplaintTicket, fu: ComplaintFollowup) -> None:
        try:
            with session.begin_nested():
                contact_id = self.followups.schedule_followup(
                    session, campaign_kind="complaint_followup", phone=ticket.patient_phone,
                    name=ticket.patient_name, ref_type="complaint", ref_id=followup_ref(ticket, fu.round),
                    due_after=fu.due_after, due_before=fu.due_before)
        except Exception as exc:  # noqa: BLE001 - resolving must not fail because the dialer refused
            fu.status, fu.error = "failed", mask_text(f"{exc.__class__.__name__}: {exc}")[:200]
            log.warning("complaint %s: revisit call not scheduled: %s", ticket.number, fu.error)
            return
        if contact_id is None:  # the dialer's answer for a number on the do-not-call list
            fu.status, fu.error = "refused", "do-not-call"
            log.info("complaint %s: revisit call refused by the dialer (do-not-call)", ticket.number)
            return
        fu.status, fu.contact_id, fu.error = "scheduled", contact_id, ""

    def _schedule_followup(self, session, ticket: ComplaintTicket, at: dt.datetime,
                           due_before: dt.datetime) -> None:
        fu = ComplaintFollowup(ticket_id=ticket.id, round=ticket.reopen_count, due_after=at,
                               due_before=due_before, status="pending", error="", created_at=at)
        session.add(fu)
        if not ticket.patient_phone:
            fu.status = "no_phone"
        else:
            self._try_dialer(session, ticket, fu)
        session.flush()
        _event(session, ticket, "system", at, "followup", field="followup", to_value=fu.status,
               note=f"revisit call due before {due_before.isoformat()}")

    def retry_pending_followups(self, session) -> int:
        """Hand pending revisit calls (left by an earlier version) to the dialer."""
        n = 0
        for fu, t in session.execute(select(ComplaintFollowup, ComplaintTicket).join(
                ComplaintTicket, ComplaintTicket.id == ComplaintFollowup.ticket_id)
                .where(ComplaintFollowup.status == "pending")).all():
            self._try_dialer(session, t, fu)
            n += fu.status == "scheduled"
        return n
