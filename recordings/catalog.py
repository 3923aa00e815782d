"""Catalogue operations.  Each function takes a SQLAlchemy session (the caller's
transaction, run off the event loop via ``Database.run``) and never blocks on
anything but the database, except :func:`add_voice_message`, which fingerprints
the (small) voice-message file in the caller's worker thread.

Other features get a :class:`Catalog` (the functions bound to the ``[recordings]``
settings, built by the composition root): ``prepare_voice_message`` (blocking, before
RECORD FILE), ``add_voice_message`` and ``usable`` (the IVR), and ``link_ticket``
(complaints: a linked recording is kept with complaint retention).
"""
from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import select

from callcenter.phones import canonical
from callcenter.store.models import audit

from . import layout, quality
from .models import Recording
from .settings import Settings
from .wav import FileInfo, inspect_file

log = logging.getLogger(__name__)


class Catalog:
    """The catalogue's operations for other features, bound to one :class:`Settings`."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def prepare_voice_message(self, path: str) -> Path:
        return prepare_voice_message(path, settings=self.settings)

    def add_voice_message(self, session, **kw: Any) -> int:
        return add_voice_message(session, settings=self.settings, **kw)

    def usable(self, session, rec_id: int) -> bool:
        return usable(session, rec_id)

    def link_ticket(self, session, **kw: Any) -> list[int]:
        return link_ticket(session, settings=self.settings, **kw)


def as_utc(value: dt.datetime | float | int | None) -> dt.datetime | None:
    """Aware UTC datetime from an epoch, an aware datetime, or a naive one read back from SQLite."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def start(session, *, rel: str, kind: str, uniqueid: str, channel: str = "",
          started_at: dt.datetime, settings: Settings, queue: str | None = None,
          campaign: str | None = None, agent: str | None = None, agent_name: str | None = None,
          caller_number: str | None = None, fmt: str = "wav", server: str = "default") -> int:
    """Insert the row for a recording about to start (status ``recording``) on Asterisk
    ``server``; returns its id."""
    layout.check_relative(rel)
    started_at = as_utc(started_at)
    rec = Recording(
        path=rel, kind=kind, server=server, format=fmt, uniqueid=uniqueid, channel=channel, queue=queue,
        campaign=campaign, agent=agent, agent_name=agent_name,
        caller_number=canonical(caller_number, settings.phone_region) or None, started_at=started_at, status="recording", legal_hold=False,
        purge_after=settings.purge_after(kind, started_at), error="",
    )
    session.add(rec)
    session.flush()
    return rec.id


def set_agent(session, rec_id: int, *, queue: str | None, agent: str | None, agent_name: str | None) -> None:
    """A campaign call's recording learns the queue and agent the patient was put through to."""
    rec = session.get(Recording, rec_id)
    if rec is None:
        raise LookupError(f"no recording {rec_id}")
    rec.queue = rec.queue or queue
    rec.agent = rec.agent or agent
    rec.agent_name = rec.agent_name or agent_name


def start_or_get(session, *, rel: str, uniqueid: str, **kw: Any) -> int:
    """:func:`start`, or the row an earlier try of the same start wrote (a commit in doubt,
    a journal replayed after a restart); a row of another call at that path is refused."""
    rec = session.scalars(select(Recording).where(Recording.path == rel)).first()
    if rec is not None:
        if rec.uniqueid != uniqueid:
            raise ValueError(f"recording path {rel} is catalogued for call {rec.uniqueid}")
        return rec.id
    return start(session, rel=rel, uniqueid=uniqueid, **kw)


def finalize(session, rec_id: int, info: FileInfo | None, ended_at: dt.datetime | None,
             *, error: str = "", end_known: bool = True) -> str:
    """Record the file's fingerprint (``ready``), its absence (``missing``) or that it is
    empty / cut short (``failed``, see :mod:`.quality`); returns the status.
    ``end_known=False``: ``ended_at`` is only when we noticed (after a reconnect), so the
    call's length is not judged."""
    rec = session.get(Recording, rec_id)
    if rec is None:
        raise LookupError(f"no recording {rec_id}")
    rec.ended_at = as_utc(ended_at) if ended_at is not None else rec.ended_at
    if info is None:
        rec.status = "missing"
        rec.error = (error or "file not found after the call ended")[:256]
        log.error("recording %s (%s, %s) missing: %s", rec_id, rec.kind, rec.path, rec.error)
        return rec.status
    rec.size, rec.duration, rec.sha256 = info.size, info.duration, info.sha256
    call = None
    if end_known and rec.ended_at is not None and rec.started_at is not None:
        call = (as_utc(rec.ended_at) - as_utc(rec.started_at)).total_seconds()
    rec.status, rec.error = quality.judge(info, rec.format or "wav", call)
    if rec.status == "failed":
        log.error("recording %s (%s, %s) failed: %s", rec_id, rec.kind, rec.path, rec.error)
    return rec.status


def mark_failed(session, rec_id: int, error: str, ended_at: dt.datetime | None = None) -> None:
    rec = session.get(Recording, rec_id)
    if rec is not None:
        rec.status, rec.error = "failed", error[:256]
        rec.ended_at = as_utc(ended_at) if ended_at is not None else rec.ended_at


class VoiceMessageUnavailable(OSError):
    """The directory a voice message is to be recorded into cannot be made ready."""


def prepare_voice_message(path: str, settings: Settings) -> Path:
    """Make the directory of voice message ``path`` (Asterisk's name for it) exist before
    ``RECORD FILE``, which, unlike MixMonitor, creates no directory.  Missing levels are
    created with their parent's permission bits and group (so a setgid, group-writable
    tree stays writable for Asterisk); returns the directory.  Blocking."""
    s = settings
    fmt = s.format
    if not path.lower().endswith("." + fmt):
        path = f"{path}.{fmt}"
    try:
        folder = layout.resolve_inside(s.directory, layout.to_relative(path, s.roots)).parent
    except layout.UnsafePath as exc:
        raise VoiceMessageUnavailable(f"voice message {path!r}: {exc}") from None
    missing = []
    probe = folder
    while not probe.is_dir():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for d in reversed(missing):
        parent = d.parent.stat()
        try:
            d.mkdir(mode=0o700)
            os.chmod(d, parent.st_mode & 0o7777)
            if d.stat().st_gid != parent.st_gid:
                os.chown(d, -1, parent.st_gid)
        except FileExistsError:
            if d.is_dir():  # made meanwhile by another call
                continue
            raise VoiceMessageUnavailable(
                f"cannot create voice-message directory {d}: a file of that name is in the way") from None
        except OSError as exc:
            raise VoiceMessageUnavailable(
                f"cannot create voice-message directory {d}: {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise VoiceMessageUnavailable(f"voice-message directory {folder} is not writable")
    return folder


def add_voice_message(session, *, path: str, uniqueid: str, caller_number: str | None = None,
                      started_at: dt.datetime | float, duration: float | None = None,
                      settings: Settings) -> int:
    """Catalogue a voice message recorded by the IVR (``RECORD FILE``); returns the recording id.

    ``path`` is the file Asterisk wrote, absolute (under ``spool_dir`` or the recordings
    directory) or relative to it, with or without the format extension.  RECORD FILE has
    finished when this runs, so the row is settled at once (never left ``recording``):
    ``ready``, ``failed`` (empty or cut short) or ``missing`` (not in the directory).
    Whether the message can be acted on: :func:`usable`.
    """
    s = settings
    fmt = s.format
    if not path.lower().endswith("." + fmt):
        path = f"{path}.{fmt}"
    rel = layout.to_relative(path, s.roots)
    started = as_utc(started_at)
    rec_id = start(session, rel=rel, kind="voice_message", uniqueid=uniqueid, started_at=started,
                   settings=s, caller_number=caller_number, fmt=fmt)
    try:
        full = layout.resolve_inside(s.directory, rel)
        info = inspect_file(full, fmt) if full.is_file() else None
    except (OSError, layout.UnsafePath):
        info = None
    ended = started + dt.timedelta(seconds=duration or 0)
    if info is not None and info.duration is None and duration is not None and fmt.lower() != "wav":
        info = FileInfo(info.size, float(duration), info.sha256)
    finalize(session, rec_id, info, ended, error=f"RECORD FILE ended but {rel} is not in {s.directory}")
    return rec_id


def usable(session, rec_id: int) -> bool:
    """A catalogued recording that exists and holds audio (``ready``)."""
    rec = session.get(Recording, rec_id)
    return rec is not None and rec.status == "ready"


def link_ticket(session, *, ticket_id: int, uniqueid: str | None = None,
                recording_id: int | None = None, settings: Settings) -> list[int]:
    """Attach a complaint ticket to the recordings of a call; they get complaint retention
    (never shorter than what they had)."""
    s = settings
    q = select(Recording)
    if recording_id is not None:
        q = q.where(Recording.id == recording_id)
    elif uniqueid is not None:
        q = q.where(Recording.uniqueid == uniqueid)
    else:
        raise ValueError("link_ticket needs uniqueid or recording_id")
    ids = []
    for rec in session.scalars(q):
        rec.ticket_id = ticket_id
        longer = s.purge_after("complaint", as_utc(rec.started_at))
        current = as_utc(rec.purge_after)
        if current is not None and (longer is None or longer > current):
            rec.purge_after = longer
        ids.append(rec.id)
    return ids


def set_hold(session, rec_id: int, hold: bool, *, actor: str, reason: str = "") -> Recording:
    """Set or clear the legal hold (audited); a held recording is never purged."""
    rec = session.get(Recording, rec_id)
    if rec is None:
        raise LookupError(f"no recording with id {rec_id}")
    rec.legal_hold = hold
    audit(session, actor, "recording.hold" if hold else "recording.release", "recording", rec_id,
          reason=reason)
    return rec


def get(session, rec_id: int) -> Recording | None:
    return session.get(Recording, rec_id)


def query(session, *, status: str | None = None, kind: str | None = None, queue: str | None = None,
          uniqueid: str | None = None, agent: str | None = None, caller_number: str | None = None,
          ticket_id: int | None = None, started_from: dt.datetime | None = None,
          started_before: dt.datetime | None = None, include_purged: bool = False, limit: int = 100,
          offset: int = 0) -> list[Recording]:
    """Recordings newest first; ``agent`` is the member interface, ``caller_number`` the stored
    (canonical) number, ``started_from``/``started_before`` bound ``started_at`` (UTC)."""
    q = select(Recording)
    if status:
        q = q.where(Recording.status == status)
    elif not include_purged:
        q = q.where(Recording.status != "purged")
    for column, value in ((Recording.kind, kind), (Recording.queue, queue), (Recording.uniqueid, uniqueid),
                          (Recording.agent, agent), (Recording.caller_number, caller_number),
                          (Recording.ticket_id, ticket_id)):
        if value:
            q = q.where(column == value)
    if started_from is not None:
        q = q.where(Recording.started_at >= as_utc(started_from))
    if started_before is not None:
        q = q.where(Recording.started_at < as_utc(started_before))
    q = q.order_by(Recording.started_at.desc(), Recording.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(q))


def pending(session) -> list[Recording]:
    return list(session.scalars(select(Recording).where(Recording.status == "recording")))


def local_file(settings: Settings, rec: Any) -> Path:
    """The file of a row, checked to be inside the recordings directory."""
    return layout.resolve_inside(settings.directory, rec.path)
