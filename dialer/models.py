"""Dialer tables: the patients the hospital gives us, and the outbound work on them.

Patients, treatments and appointments are imported (CSV or JSON) with the
hospital's own ids (``external_id``), which make re-imports idempotent.
A *campaign* owns *contacts* (a person to reach for a reason, with a dedupe key
so the same follow-up is never created twice); every Originate is an *attempt*
row written before the call is placed.  ``do_not_call`` holds numbers that no
campaign may ever dial again.

All times are stored as UTC (see :mod:`dialer.timeutil`).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.base import Base, utcnow


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    phone: Mapped[str] = mapped_column(String(32), index=True)  # E.164
    language: Mapped[str] = mapped_column(String(8), default="zh")
    source: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # pressed 9 on a reminder call: no more appointment reminders (other calls still allowed)
    reminders_stopped_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class Treatment(Base):
    __tablename__ = "treatments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    treatment_type: Mapped[str] = mapped_column(String(32))
    treated_at: Mapped[dt.datetime] = mapped_column()
    doctor: Mapped[str] = mapped_column(String(128), default="")
    source: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Appointment(Base):
    __tablename__ = "appointments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    scheduled_at: Mapped[dt.datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(16))  # booked | attended | missed | cancelled
    department: Mapped[str] = mapped_column(String(64), default="")
    doctor: Mapped[str] = mapped_column(String(128), default="")
    source: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The patient's answer (reminder call or hotline IVR), for the hospital's booking system:
    # confirm | cancel | reschedule | stop_reminders; when, through which channel, for which slot.
    answer: Mapped[str] = mapped_column(String(16), default="")
    answered_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    answered_via: Mapped[str] = mapped_column(String(16), default="")  # reminder | hotline
    answered_for: Mapped[dt.datetime | None] = mapped_column(nullable=True)  # scheduled_at then


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # revisit | no_show | reminder | notification | complaint_followup | callback
    mode: Mapped[str] = mapped_column(String(16), default="progressive")  # progressive | survey | predictive
    state: Mapped[str] = mapped_column(String(16), default="draft")  # draft | running | paused
    queue: Mapped[str] = mapped_column(String(64), default="")
    # the Asterisk server ([[ami]] name) its calls are originated on
    server: Mapped[str] = mapped_column(String(32), server_default="default")
    max_attempts: Mapped[int | None] = mapped_column(Integer, nullable=True)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)  # e.g. {"treatment_types": [...]}
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# A missed appointment is one piece of work: at most one open contact for it, whichever
# no-show campaign holds it (the database refuses a second; inserts skip it).
OPEN_APPOINTMENT = "ref_type = 'appointment' AND state IN ('pending', 'dialing')"
# The claim's indexes (:func:`dialer.store.claim`): its statement spells these states as
# literals, so the planner matches the predicates in a generic (prepared) plan too.
DIALING = "state = 'dialing'"
PENDING_WITH_DEADLINE = "state = 'pending' AND due_before IS NOT NULL"


class Contact(Base):
    """One person to reach for one reason; the unit the dialer claims."""

    __tablename__ = "contacts"
    __table_args__ = (
        # The due work, partial by state (migration 0999d): the claim walks one campaign's due
        # contacts in order up to its LIMIT ...
        # (campaign_id, state, next_attempt_at), not a partial index beside one on campaign_id:
        # a campaign imported into an analysed table has no statistics, and the planner then
        # took the campaign_id index and sorted every contact of the campaign
        Index("ix_contacts_campaign_due", "campaign_id", "state", "next_attempt_at"),
        # ... and asks, per candidate, "is this number in one of our calls?";
        Index("ix_contacts_dialing_phone", "phone", sqlite_where=text(DIALING), postgresql_where=text(DIALING)),
        # expiry finds the pending contacts past their deadline
        Index("ix_contacts_pending_deadline", "due_before",
              sqlite_where=text(PENDING_WITH_DEADLINE), postgresql_where=text(PENDING_WITH_DEADLINE)),
        Index("ix_contacts_ref", "ref_type", "ref_id"),
        Index("ux_contacts_open_appointment", "ref_id", unique=True,
              sqlite_where=text(OPEN_APPOINTMENT), postgresql_where=text(OPEN_APPOINTMENT)),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))  # ix_contacts_campaign_due
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), nullable=True)
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    phone: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    reason: Mapped[str] = mapped_column(String(64), default="")
    ref_type: Mapped[str] = mapped_column(String(32), default="")
    ref_id: Mapped[str] = mapped_column(String(64), default="")
    due_after: Mapped[dt.datetime] = mapped_column()
    due_before: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    next_attempt_at: Mapped[dt.datetime] = mapped_column()
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | dialing | done
    # reached | completed | rebooked | declined | opted_out (the patient was dealt with);
    # unreachable | expired (gave up); superseded (a duplicate closed for another contact)
    outcome: Mapped[str] = mapped_column(String(16), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_disposition: Mapped[str] = mapped_column(String(16), default="")
    claimed_by: Mapped[str] = mapped_column(String(64), default="")
    claim_token: Mapped[str] = mapped_column(String(36), default="")  # the claim batch, for tracing
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class Attempt(Base):
    """One Originate.  Written (committed) before the action is sent; id = ActionID."""

    __tablename__ = "dial_attempts"
    # "was this number called for another reason recently?" (claim's phone gap)
    __table_args__ = (Index("ix_dial_attempts_phone_started", "phone", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    phone: Mapped[str] = mapped_column(String(32))
    instance: Mapped[str] = mapped_column(String(64), default="")
    # dialing -> answered -> ended ; dialing -> ended ; dialing -> unknown (reconciled after a crash)
    state: Mapped[str] = mapped_column(String(16), default="dialing", index=True)
    disposition: Mapped[str] = mapped_column(String(16), default="")
    reason_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    hangup_cause: Mapped[int | None] = mapped_column(Integer, nullable=True)
    channel: Mapped[str] = mapped_column(String(128), default="")
    uniqueid: Mapped[str] = mapped_column(String(64), default="")
    agent: Mapped[str] = mapped_column(String(128), default="")  # the queue member's name (display)
    # ... and its interface (e.g. PJSIP/1001): unique per member, what ties the call to a user
    agent_interface: Mapped[str] = mapped_column(String(128), default="")
    abandoned: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[dt.datetime] = mapped_column(index=True)
    answered_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    connected_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    survey: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)


class DoNotCall(Base):
    __tablename__ = "do_not_call"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), unique=True)
    source: Mapped[str] = mapped_column(String(32))  # survey | agent | import | admin
    reason: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[dt.datetime] = mapped_column()


class AgentReservation(Base):
    """A queue member taken out of inbound distribution for one progressive attempt.

    Written (committed) before the member is paused with reason ``dialer:<attempt>`` and
    before the patient is dialled; deleted once the member is unpaused.  ``interface`` is
    unique, so two dialer instances sharing the database never reserve one agent twice.
    """

    __tablename__ = "agent_reservations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    interface: Mapped[str] = mapped_column(String(128), unique=True)
    queue: Mapped[str] = mapped_column(String(64))
    attempt_id: Mapped[int] = mapped_column(Integer)
    instance: Mapped[str] = mapped_column(String(64), index=True)
    reserved_at: Mapped[dt.datetime] = mapped_column()
