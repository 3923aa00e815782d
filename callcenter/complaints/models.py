"""Complaint tickets (工单) and what hangs off them.

* ``complaint_tickets``: one complaint, its classification, patient contact,
  life-cycle timestamps and the current due time of each deadline.
* ``complaint_events``: the audit trail of every change (who, when, what, from -> to).
* ``complaint_links``: calls (queue call uniqueid), recordings (id), IVR sessions.
* ``complaint_deadlines``: one row per deadline and round (a reopened ticket gets
  new rounds) with its warn instant, when it was met and its alert level; the
  escalation check and the compliance report work on this table.
* ``complaint_followups``: the revisit call requested from the dialer (or still
  pending, for the dialer to poll, when it could not be scheduled).
* ``complaint_counters``: the per-year serial behind ``TS-2026-000123``.

All instants are stored in UTC (SQLite drops the offset; see ``workdays.to_datetime``).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.base import Base

CATEGORIES = ("medical", "attitude", "environment", "fees", "communication")
CATEGORY_LABELS = {
    "medical": "医疗服务 medical service",
    "attitude": "服务态度 service attitude",
    "environment": "环境设施 environment and facilities",
    "fees": "费用 fees and billing",
    "communication": "沟通 communication and information",
}
LINK_KINDS = ("call", "recording", "ivr_session")


class ComplaintTicket(Base):
    __tablename__ = "complaint_tickets"
    __table_args__ = (Index("ix_complaint_tickets_status_received", "status", "received_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    category: Mapped[str] = mapped_column(String(16))
    tags: Mapped[list] = mapped_column(JSON, default=list)
    severity: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(12))
    department: Mapped[str] = mapped_column(String(64), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    demand: Mapped[str] = mapped_column(Text, default="")
    patient_phone: Mapped[str] = mapped_column(String(32), default="")
    patient_name: Mapped[str] = mapped_column(String(64), default="")
    language: Mapped[str] = mapped_column(String(8), default="zh")
    status: Mapped[str] = mapped_column(String(16))
    assigned_to: Mapped[str] = mapped_column(String(64), default="")
    created_by: Mapped[str] = mapped_column(String(64))

    # current due time of each deadline (NULL: none of that kind)
    ack_due: Mapped[dt.datetime | None] = mapped_column(default=None)
    start_due: Mapped[dt.datetime | None] = mapped_column(default=None)
    progress_due: Mapped[dt.datetime | None] = mapped_column(default=None)
    answer_due: Mapped[dt.datetime | None] = mapped_column(default=None)
    revisit_due: Mapped[dt.datetime | None] = mapped_column(default=None)
    expected_resolution: Mapped[dt.date | None] = mapped_column(Date, default=None)

    received_at: Mapped[dt.datetime] = mapped_column()
    escalated_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    progress_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    answered_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    revisited_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    closed_at: Mapped[dt.datetime | None] = mapped_column(default=None)

    satisfied: Mapped[bool | None] = mapped_column(Boolean, default=None)
    satisfaction: Mapped[int | None] = mapped_column(Integer, default=None)  # score 1-5 if asked
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column()


class ComplaintEvent(Base):
    """Append-only audit of a ticket: who, when, what, from -> to."""

    __tablename__ = "complaint_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("complaint_tickets.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    field: Mapped[str] = mapped_column(String(32), default="")
    from_value: Mapped[str | None] = mapped_column(Text, default=None)
    to_value: Mapped[str | None] = mapped_column(Text, default=None)
    note: Mapped[str] = mapped_column(Text, default="")


class ComplaintLink(Base):
    __tablename__ = "complaint_links"
    __table_args__ = (UniqueConstraint("ticket_id", "kind", "ref", name="uq_complaint_links_ticket"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("complaint_tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # call | recording | ivr_session
    ref: Mapped[str] = mapped_column(String(64), index=True)  # uniqueid, recording id, session id
    at: Mapped[dt.datetime] = mapped_column()


class ComplaintDeadline(Base):
    __tablename__ = "complaint_deadlines"
    __table_args__ = (Index("ix_complaint_deadlines_open", "active", "met_at", "warn_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("complaint_tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))  # ack | start | progress | answer | revisit
    round: Mapped[int] = mapped_column(Integer, default=0)  # = reopen_count when set
    due_at: Mapped[dt.datetime] = mapped_column()
    warn_at: Mapped[dt.datetime] = mapped_column()
    working: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # False: replaced (new date)
    met_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    level: Mapped[str] = mapped_column(String(12), default="ok")  # ok | approaching | overdue
    alerted_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class ComplaintFollowup(Base):
    """The revisit call for a resolution: scheduled with the dialer, or pending for it to poll."""

    __tablename__ = "complaint_followups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("complaint_tickets.id"), index=True)
    round: Mapped[int] = mapped_column(Integer, default=0)
    due_after: Mapped[dt.datetime] = mapped_column()
    due_before: Mapped[dt.datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(12), index=True)  # scheduled|pending|failed|no_phone|done
    contact_id: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column()


class ComplaintCounter(Base):
    __tablename__ = "complaint_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer, default=0)
