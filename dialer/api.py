"""Entry points other features call (IVR, complaints, web): :class:`DialerApi`.

Every method takes the caller's session.  They never place calls themselves: they create or finish contacts, and the
running dialer picks due contacts up on its next tick.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select, update

from callcenter.logs import mask_number
from callcenter.phones import PhoneError, normalise
from callcenter.ports import AssemblyError, Revisits, require
from callcenter.store.locks import get_for_update

from . import appointments
from .campaigns import Settings, close_appointment_work, contact_row, ensure_campaign, insert_contacts
from .models import Attempt, Campaign, Contact, DoNotCall, Patient
from .timeutil import as_utc

log = logging.getLogger(__name__)
SATISFIED_SCORE = 4  # satisfaction score (1-5) at or above which a complaint revisit counts as satisfied


def _when(value, default: dt.datetime) -> dt.datetime:
    if value is None:
        return default
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    return as_utc(value)


def _patient_id(session, phone: str) -> int | None:
    return session.scalar(select(Patient.id).where(Patient.phone == phone).limit(1))


def _survey_score(answers: dict) -> float | None:
    vals = []
    for v in answers.values():
        try:
            vals.append(float(v))
        except (TypeError, ValueError):
            pass
    return round(sum(vals) / len(vals), 3) if vals else None


def _as_score(v) -> int | None:
    try:
        n = int(float(v))
    except (TypeError, ValueError):
        return None
    return n if 1 <= n <= 5 else None


class DialerApi:
    """What other features ask of the dialer (the IVR, complaints, the web), bound to the
    ``[dialer]`` settings, the hospital's region and the clock.

    ``revisits`` (the complaints service) hears the verdict of a complaint follow-up
    call; the composition root connects it after building both (each needs the other).
    """

    def __init__(self, settings: Settings, *, region: str, clock: Any):
        self.settings = settings
        self.region = region
        self.clock = clock
        self.revisits: Revisits | None = None

    def connect(self, revisits: Revisits) -> None:
        self.revisits = require(revisits, Revisits, "dialer revisits")

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock.seconds(), dt.timezone.utc)

    def _phone(self, phone: str) -> str:
        """A number to dial: validated even when it already looks like E.164 (normalise is idempotent)."""
        return normalise(phone, self.region)

    def schedule_followup(self, session, *, campaign_kind: str = "complaint_followup", phone: str, name: str = "",
                          ref_type: str, ref_id, due_after=None, due_before=None) -> int | None:
        """A follow-up call for ``ref_type``/``ref_id`` (e.g. a resolved complaint ticket).

        Idempotent per (campaign, ref): a second call returns the same contact id.
        Returns ``None`` when the number is on the do-not-call list (nobody may call it).
        """
        e164 = self._phone(phone)
        now = self._now()
        after = _when(due_after, now)
        before = _when(due_before, after + dt.timedelta(hours=self.settings.followup_hours))
        campaign = ensure_campaign(session, campaign_kind, self.settings)
        key = f"{ref_type}:{ref_id}"
        if self.is_do_not_call(session, e164):
            log.info("follow-up for %s %s not scheduled: %s is on the do-not-call list",
                     ref_type, ref_id, mask_number(e164))
            return None
        insert_contacts(session, [contact_row(
            campaign.id, key, phone=e164, name=name, reason=campaign_kind, ref_type=ref_type, ref_id=str(ref_id),
            due_after=after, due_before=before, patient_id=_patient_id(session, e164), now=now)])
        return session.scalar(select(Contact.id).where(Contact.dedupe_key == f"{campaign.id}:{key}"[:160]))

    def request_callback(self, session, *, phone: str, name: str = "", reason: str = "", requested_at=None,
                         ivr_session_id=None) -> int | None:
        """A caller asked to be called back: one open callback per number (repeats return it)."""
        e164 = self._phone(phone)
        if self.is_do_not_call(session, e164):
            return None
        campaign = ensure_campaign(session, "callback", self.settings)
        open_id = session.scalar(select(Contact.id).where(
            Contact.campaign_id == campaign.id, Contact.phone == e164,
            Contact.state.in_(("pending", "dialing"))).limit(1))
        if open_id is not None:
            return open_id
        at = _when(requested_at, self._now())
        key = f"ivr:{ivr_session_id}" if ivr_session_id is not None else f"phone:{e164}:{at.isoformat()}"
        insert_contacts(session, [contact_row(
            campaign.id, key, phone=e164, name=name, reason=(reason or "callback")[:64], ref_type="ivr_session",
            ref_id=str(ivr_session_id or ""), due_after=at,
            due_before=at + dt.timedelta(hours=self.settings.followup_hours),
            patient_id=_patient_id(session, e164), now=self._now())])
        return session.scalar(select(Contact.id).where(Contact.dedupe_key == f"{campaign.id}:{key}"[:160]))

    def is_do_not_call(self, session, phone: str) -> bool:
        try:
            e164 = self._phone(phone)
        except PhoneError:
            return False
        return session.scalar(select(DoNotCall.id).where(DoNotCall.phone == e164)) is not None

    def add_do_not_call(self, session, phone: str, *, source: str, reason: str = "", at=None) -> int:
        """Put a number on the do-not-call list and close every open contact for it (all campaigns).

        Returns the number of open contacts that were closed.
        """
        e164 = self._phone(phone)
        when = _when(at, self._now())
        if session.scalar(select(DoNotCall.id).where(DoNotCall.phone == e164)) is None:
            session.add(DoNotCall(phone=e164, source=source, reason=reason[:256], created_at=when))
            session.flush()
        res = session.execute(update(Contact).where(Contact.phone == e164, Contact.state == "pending")
                              .values(state="done", outcome="opted_out", completed_at=when)
                              .execution_options(synchronize_session=False))
        log.info("do-not-call: %s added (%s)", mask_number(e164), source)
        return res.rowcount or 0

    def remove_do_not_call(self, session, phone: str) -> bool:
        row = session.scalar(select(DoNotCall).where(DoNotCall.phone == self._phone(phone)))
        if row is None:
            return False
        session.delete(row)
        return True

    def record_survey_result(self, session, *, attempt_id, answers: dict | None = None, opted_out: bool = False,
                             completed: bool = True, at=None, **_extra) -> None:
        """The revisit survey's answers for the call placed as ``attempt_id`` (channel var ATTEMPT_ID).

        ``opted_out`` (the patient pressed 9) puts the number on the do-not-call list and ends
        the contact.  A completed survey with answers ends the contact as ``completed`` (a
        complaint follow-up is passed on to the complaints package).  Partial answers
        (``completed=False``: the patient hung up) or none (the patient asked for an agent) are
        kept, and the call's hang-up decides: ``reached`` if an agent took it, else ``hungup``.
        """
        try:  # ATTEMPT_ID comes from a channel variable: anything but an id names no attempt
            aid = int(str(attempt_id).strip())
        except ValueError:
            raise LookupError(f"no dial attempt {str(attempt_id)[:20]!r}") from None
        a = get_for_update(session, Attempt, aid)  # vs. the hang-up (store.apply_fact)
        if a is None:
            raise LookupError(f"no dial attempt {attempt_id}")
        when = _when(at, self._now())
        answers = {str(k): v for k, v in (answers or {}).items() if v is not None and v != ""}
        a.survey, a.score = answers, _survey_score(answers)
        c = session.get(Contact, a.contact_id)
        if opted_out:
            a.disposition = "opted_out"
            self.add_do_not_call(session, a.phone, source="survey", reason=f"survey attempt {a.id}", at=when)
            c.state, c.outcome, c.completed_at = "done", "opted_out", when
            return
        if not completed or not answers:
            return
        a.disposition = "completed"
        if c.outcome not in ("rebooked", "declined", "opted_out"):
            c.outcome = "completed"
        c.state, c.completed_at, c.last_disposition = "done", when, "completed"
        if c.reason == "complaint_followup" and c.ref_id:
            sat = answers.get("satisfaction")
            score = _as_score(sat) if sat is not None else (round(a.score) if a.score is not None else None)
            self._tell_complaints(session, c, satisfied=score is not None and score >= SATISFIED_SCORE,
                             note="survey: " + ", ".join(f"{k}={v}" for k, v in answers.items()), at=when,
                             score=score)

    def record_outcome(self, session, *, contact_id: int, outcome: str, by: str = "", satisfied: bool | None = None,
                       note: str = "", at=None) -> None:
        """An agent's result for a contact: rebooked | declined | completed | opted_out."""
        if outcome not in ("rebooked", "declined", "completed", "opted_out"):
            raise ValueError(f"unknown outcome {outcome!r} (rebooked, declined, completed, opted_out)")
        c = session.get(Contact, int(contact_id))
        if c is None:
            raise LookupError(f"no contact {contact_id}")
        when = _when(at, self._now())
        if outcome == "opted_out":
            self.add_do_not_call(session, c.phone, source="agent", reason=f"agent {by}"[:256], at=when)
        c.outcome = outcome
        if c.state == "pending":
            c.state, c.completed_at = "done", when
        elif c.state == "done":
            c.completed_at = c.completed_at or when
        if c.ref_type == "appointment":  # the missed appointment is dealt with, whichever campaign asks again
            close_appointment_work(session, [c.ref_id], when, keep_contact=c.id)
        # state 'dialing': the call is still up; its hang-up finishes the contact with this outcome.
        if c.reason == "complaint_followup" and c.ref_id and outcome == "completed" and satisfied is not None:
            self._tell_complaints(session, c, satisfied=satisfied, note=note, at=when)

    def _tell_complaints(self, session, contact: Contact, *, satisfied: bool, note: str, at, score=None) -> None:
        """Hand a finished complaint revisit to the complaints service (ref_id = ticket id or "id#round")."""
        if self.revisits is None:
            raise AssemblyError("dialer revisits: not connected (DialerApi.connect was not called)")
        ref = contact.ref_id
        try:
            with session.begin_nested():
                self.revisits.record_revisit(session, int(ref) if ref.isdigit() else ref, satisfied, note[:500],
                                             at, score=score)
        except Exception:  # noqa: BLE001 - the call's result is kept even if the ticket refuses it
            log.exception("complaint follow-up %s: record_revisit failed", ref)

    # -- appointments (reminder calls and the hotline IVR) ------------------------------
    def find_appointment(self, session, *, by: str, attempt_id=None, caller_number: str = "",
                         patient_number: str | None = None, at=None) -> dict | None:
        """The appointment an IVR call is about: the reminder's (``by="call"``), the caller's
        next one (``"caller"``: caller ID) or a keyed-in patient number's (``"patient_number"``).
        ``None``: nothing booked ahead (or no longer: cancelled or moved since the reminder
        was planned)."""
        when = _when(at, self._now())
        if by == "call":
            return appointments.for_attempt(session, _attempt_id(attempt_id), when)
        if by == "caller":
            try:
                phone = self._phone(caller_number)
            except PhoneError:
                return None
            return appointments.for_phone(session, phone, when)
        if by == "patient_number":
            return appointments.for_patient_number(session, str(patient_number or ""), when)
        raise ValueError(f"unknown appointment look-up {by!r} (call, caller, patient_number)")

    def answer_appointment(self, session, *, appointment_id: int, answer: str, via: str, attempt_id=None,
                           ivr_session_id: int | None = None, at=None) -> bool:
        """Store the patient's answer on the appointment (:func:`dialer.appointments.record_answer`)."""
        appointments.record_answer(session, appointment_id=appointment_id, answer=answer, via=via,
                                   at=_when(at, self._now()),
                                   attempt_id=_attempt_id(attempt_id) if attempt_id not in (None, "") else None)
        log.info("appointment %s: %s (%s)", appointment_id, answer, via)
        return True

    def notification_message(self, session, *, attempt_id) -> str | None:
        """The message a voice notification call plays: its campaign's ``settings.message``."""
        a = session.get(Attempt, _attempt_id(attempt_id))
        if a is None:
            raise LookupError(f"no dial attempt {attempt_id}")
        c = session.get(Campaign, a.campaign_id)
        return (c.settings or {}).get("message") if c.kind == "notification" else None


def _attempt_id(value) -> int:
    """ATTEMPT_ID comes from a channel variable: anything but an id names no attempt."""
    try:
        return int(str(value).strip())
    except ValueError:
        raise LookupError(f"no dial attempt {str(value)[:20]!r}") from None
