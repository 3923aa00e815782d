"""IVR sessions: one row per FastAGI session (a caller's trip through a flow).

The row is inserted when the session starts (its id becomes the channel variable
``IVR_SESSION`` before queueing, so the queue call links to it) and completed
when it ends; ``path`` is the list of node ids visited.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.base import Base


class IvrSession(Base):
    __tablename__ = "ivr_sessions"
    __table_args__ = (Index("ix_ivr_sessions_started_at", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flow: Mapped[str] = mapped_column(String(64))
    uniqueid: Mapped[str] = mapped_column(String(64), index=True, default="")
    caller_number: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    path: Mapped[list] = mapped_column(JSON, default=list)
    digits: Mapped[str] = mapped_column(String(256), default="")
    # queued:<queue> | voicemail | callback | operator | hangup | optout | survey_done | error
    # | interrupted (the process died mid-flow; closed at the next start)
    result: Mapped[str] = mapped_column(String(64), default="")
    language: Mapped[str] = mapped_column(String(8), default="")
    detail: Mapped[dict] = mapped_column(JSON, default=dict)

    @property
    def duration(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()
