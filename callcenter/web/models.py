"""Web tables: login sessions and agents' call outcomes.

Sessions live in the store (not only in memory) so a restart does not log
every agent out mid-shift, and logging out or changing a password ends them
everywhere.  Only a SHA-256 of the session token is stored: a copy of the
database does not let anyone take over a session.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.base import Base


class WebSession(Base):
    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column()
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    remote: Mapped[str] = mapped_column(String(64), default="")
    # The one-time message for the next page of this session (callcenter/web/flash.py).
    flash: Mapped[str | None] = mapped_column(Text, nullable=True)


class CallOutcome(Base):
    """What the agent recorded about a call (the reason and result of the conversation):
    one row per call (``uniqueid`` is unique), so a repeated or concurrent save cannot
    store a second outcome or open a second complaint ticket."""

    __tablename__ = "call_outcomes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uniqueid: Mapped[str] = mapped_column(String(64), index=True, unique=True)
    queue: Mapped[str] = mapped_column(String(64), default="")
    caller_number: Mapped[str] = mapped_column(String(32), default="", index=True)
    agent: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    complaint_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column()


class ApiToken(Base):
    """A credential for machine clients (the hospital's information system): ``Authorization:
    Bearer <token>`` on API routes.  Only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))          # supervisor | admin
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(64), default="")
    last_used_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
