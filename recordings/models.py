"""The recordings catalogue.

One row per recording file.  The row is written *before* the MixMonitor action
(status ``recording``) so a crash never leaves an unexplained file; it becomes
``ready`` with size/duration/sha256 once the call ended and the file was read,
``missing`` when the file never appeared, ``failed`` when Asterisk refused the
MixMonitor, and ``purged`` when retention removed the file (the row stays as
the record of what was deleted).  Access is audited in the shared audit log
(``object_type = "recording"``).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.base import Base, utcnow

STATUSES = ("recording", "ready", "missing", "failed", "purged")


class Recording(Base):
    __tablename__ = "recordings"
    __table_args__ = (
        Index("ix_recordings_status_purge_after", "status", "purge_after"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Relative to the recordings directory, '/'-separated; unique (one file, one row).
    path: Mapped[str] = mapped_column(String(512), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # queue | complaint | voice_message | outbound
    server: Mapped[str] = mapped_column(String(32), server_default="default")  # [[ami]] name
    format: Mapped[str] = mapped_column(String(8), default="wav")
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    duration: Mapped[float | None] = mapped_column(Float, nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Caller channel Uniqueid (= queue call uniqueid / Linkedid; outbound: the originated channel).
    uniqueid: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(128), default="")
    queue: Mapped[str | None] = mapped_column(String(64), nullable=True)
    campaign: Mapped[str | None] = mapped_column(String(64), nullable=True)
    agent: Mapped[str | None] = mapped_column(String(128), nullable=True)  # member interface
    agent_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    caller_number: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ticket_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    started_at: Mapped[dt.datetime] = mapped_column(index=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="recording")
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    purge_after: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    purged_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    error: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def as_dict(self) -> dict:
        def iso(v):
            return v.isoformat() if v is not None else None

        return {
            "id": self.id, "path": self.path, "kind": self.kind, "format": self.format,
            "size": self.size, "duration": self.duration, "sha256": self.sha256,
            "uniqueid": self.uniqueid, "queue": self.queue, "campaign": self.campaign,
            "agent": self.agent, "agent_name": self.agent_name, "ticket_id": self.ticket_id,
            "started_at": iso(self.started_at), "ended_at": iso(self.ended_at),
            "status": self.status, "error": self.error, "legal_hold": self.legal_hold,
            "purge_after": iso(self.purge_after), "purged_at": iso(self.purged_at),
        }
