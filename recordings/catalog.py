"""Catalogue operations.  Each function takes a SQLAlchemy session (the caller's
transaction, run off the event loop via ``Database.run``) and never blocks on
anything but the database, except :func:`add_voice_message`, which fingerprints
the (small) voice-message file in the caller's worker thread.

Other features get a :class:`Catalog` (the functions bound to the ``[recordings]``
settings, built by the composition root): ``prepare_voice_message`` (blocking, before
RECORD FILE), ``add_voice_message`` and ``unusable`` (the IVR), and ``link_ticket``
(complaints: a linked recording is kept with complaint retention).
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, select

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

    def unusable(self, session, rec_id: int, min_seconds: float) -> str | None:
        return unusable(session, rec_id, min_seconds)

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


# Capture writes a start and a finalise per recorded call, a burst of them per transaction
# (group commit): Core statements built once with bound parameters, not ORM units of work
# nor statements built per row (~5x less Python per row on the database thread, which
# shares the GIL with the event loop).  An ORM instance of the row already in the session
# is expired after them (``_refresh``).
_T = Recording.__table__
_INSERT = _T.insert()
# many rows, one statement: each id read back with its path (asking for the rows in the
# order given makes SQLAlchemy send SQLite one INSERT per row: 2,000 a burst of 2,000 calls)
_INSERT_RETURNING = _T.insert().returning(_T.c.path, _T.c.id)
_BY_PATHS = select(_T.c.id, _T.c.uniqueid, _T.c.path).where(_T.c.path.in_(bindparam("paths", expanding=True)))
_AGENT_OF = select(_T.c.queue, _T.c.agent, _T.c.agent_name).where(_T.c.id == bindparam("rec_id"))
_TO_FINALIZE_MANY = select(_T.c.id, _T.c.kind, _T.c.path, _T.c.format, _T.c.started_at, _T.c.ended_at,
                           _T.c.status).where(
    _T.c.id.in_(bindparam("ids", expanding=True)))


@functools.lru_cache(maxsize=None)
def _update_of(columns: tuple[str, ...]):
    """``UPDATE recordings SET <columns> WHERE id = :rec_id``, one statement per column set."""
    return _T.update().where(_T.c.id == bindparam("rec_id")).values({c: bindparam(f"v_{c}") for c in columns})


def _update_params(rec_id: int, values: dict[str, Any]) -> dict[str, Any]:
    """The parameters of :func:`_update_of` ``(tuple(values))`` for row ``rec_id``."""
    params = {f"v_{c}": v for c, v in values.items()}
    params["rec_id"] = rec_id
    return params


def _refresh(session, rec_id: int) -> None:
    """A row changed by a Core statement: an ORM instance of it in this session is stale."""
    rec = session.identity_map.get(session.identity_key(Recording, rec_id))
    if rec is not None:
        session.expire(rec)


def start(session, *, rel: str, kind: str, uniqueid: str, channel: str = "",
          started_at: dt.datetime, settings: Settings, queue: str | None = None,
          campaign: str | None = None, agent: str | None = None, agent_name: str | None = None,
          caller_number: str | None = None, fmt: str = "wav", server: str = "default") -> int:
    """Insert the row for a recording about to start (status ``recording``) on Asterisk
    ``server``; returns its id."""
    layout.check_relative(rel)
    result = session.execute(_INSERT, _row_of(
        rel=rel, kind=kind, uniqueid=uniqueid, channel=channel, started_at=started_at, settings=settings,
        queue=queue, campaign=campaign, agent=agent, agent_name=agent_name, caller_number=caller_number,
        fmt=fmt, server=server))
    return result.inserted_primary_key[0]


def _update(session, rec_id: int, **values: Any) -> None:
    session.flush()  # an ORM change to the row pending in this session goes first
    session.execute(_update_of(tuple(values)), _update_params(rec_id, values))
    _refresh(session, rec_id)


def set_agent(session, rec_id: int, *, queue: str | None, agent: str | None, agent_name: str | None) -> None:
    """A campaign call's recording learns the queue and agent the patient was put through to."""
    session.flush()
    row = session.execute(_AGENT_OF, {"rec_id": rec_id}).first()
    if row is None:
        raise LookupError(f"no recording {rec_id}")
    _update(session, rec_id, queue=row.queue or queue, agent=row.agent or agent,
            agent_name=row.agent_name or agent_name)


def start_or_get(session, *, rel: str, uniqueid: str, **kw: Any) -> int:
    """:func:`start`, or the row an earlier try of the same start wrote (a commit in doubt,
    a journal replayed after a restart); a row of another call at that path is refused."""
    return start_many(session, [dict(kw, rel=rel, uniqueid=uniqueid)])[0]


def start_many(session, starts: list[dict]) -> list[int]:
    """:func:`start_or_get` for many recordings (each a dict of its keyword arguments): one
    read of the paths already catalogued and one ``INSERT`` of the rest; their ids, in order.
    A path twice, or catalogued for another call, is refused (``ValueError``): the group
    commit then runs each start alone, so only the bad one fails."""
    paths = [f["rel"] for f in starts]
    if len(set(paths)) != len(paths):
        raise ValueError("the same recording path twice in one batch")
    for rel in paths:
        layout.check_relative(rel)
    by_path = {f["rel"]: f["uniqueid"] for f in starts}
    ids = {}
    for r in session.execute(_BY_PATHS, {"paths": paths}):
        ids[r.path] = r.id
        if r.uniqueid != by_path[r.path]:
            raise ValueError(f"recording path {r.path} is catalogued for call {r.uniqueid}")
    new = [_row_of(**f) for f in starts if f["rel"] not in ids]
    if new:
        ids.update((path, rid) for path, rid in session.execute(_INSERT_RETURNING, new))
    return [ids[rel] for rel in paths]


def _row_of(*, rel: str, kind: str, uniqueid: str, channel: str = "", started_at: dt.datetime,
            settings: Settings, queue: str | None = None, campaign: str | None = None,
            agent: str | None = None, agent_name: str | None = None, caller_number: str | None = None,
            fmt: str = "wav", server: str = "default") -> dict:
    """The column values of a new ``recording`` row (the arguments of :func:`start`)."""
    started_at = as_utc(started_at)
    return dict(path=rel, kind=kind, server=server, format=fmt, uniqueid=uniqueid, channel=channel, queue=queue,
                campaign=campaign, agent=agent, agent_name=agent_name,
                caller_number=canonical(caller_number, settings.phone_region) or None, started_at=started_at,
                status="recording", legal_hold=False, purge_after=settings.purge_after(kind, started_at), error="")


def finalize(session, rec_id: int, info: FileInfo | None, ended_at: dt.datetime | None,
             *, error: str = "", end_known: bool = True) -> str:
    """Record the file's fingerprint (``ready``), its absence (``missing``) or that it is
    empty / cut short (``failed``, see :mod:`.quality`); returns the status.
    ``end_known=False``: ``ended_at`` is only when we noticed (after a reconnect), so the
    call's length is not judged."""
    return finalize_many(session, [Finalize(rec_id, info, ended_at, error, end_known)])[0]


@dataclass(frozen=True)
class Finalize:
    """The arguments of one :func:`finalize`."""

    rec_id: int
    info: FileInfo | None
    ended_at: dt.datetime | None
    error: str = ""
    end_known: bool = True


def finalize_many(session, items: list[Finalize]) -> list[str]:
    """:func:`finalize` for many rows: one read of them, one ``UPDATE`` per set of columns
    changed (executemany); their statuses, in order.  A row twice or not there is refused
    (the group commit then runs each alone: only that one fails).  A row no longer
    ``recording`` is finalised already and left as it is (its status is returned): a
    reconnect's look at the rows left ``recording`` may race the finalisation the journal
    started, and would otherwise overwrite the hang-up time with the moment it looked."""
    ids = [f.rec_id for f in items]
    if len(set(ids)) != len(ids):
        raise ValueError("the same recording finalised twice in one batch")
    session.flush()  # an ORM change to a row pending in this session is read back
    rows = {r.id: r for r in session.execute(_TO_FINALIZE_MANY, {"ids": ids})}
    out, updates = [], {}
    for f in items:
        rec = rows.get(f.rec_id)
        if rec is None:
            raise LookupError(f"no recording {f.rec_id}")
        if rec.status != "recording":
            out.append(rec.status)
            continue
        status, values = _finalized(rec, f)
        out.append(status)
        updates.setdefault(tuple(values), []).append(_update_params(f.rec_id, values))
    for columns, params in updates.items():
        session.execute(_update_of(columns), params)
    for rec_id in ids:
        _refresh(session, rec_id)
    return out


def _finalized(rec: Any, f: Finalize) -> tuple[str, dict]:
    """The status and column values :func:`finalize` writes for row ``rec`` (logged when
    the recording is missing or failed)."""
    ended = as_utc(f.ended_at) if f.ended_at is not None else rec.ended_at
    if f.info is None:
        error = (f.error or "file not found after the call ended")[:256]
        log.error("recording %s (%s, %s) missing: %s", f.rec_id, rec.kind, rec.path, error)
        return "missing", dict(ended_at=ended, status="missing", error=error)
    call = None
    if f.end_known and ended is not None and rec.started_at is not None:
        call = (as_utc(ended) - as_utc(rec.started_at)).total_seconds()
    status, error = quality.judge(f.info, rec.format or "wav", call)
    if status == "failed":
        log.error("recording %s (%s, %s) failed: %s", f.rec_id, rec.kind, rec.path, error)
    return status, dict(ended_at=ended, size=f.info.size, duration=f.info.duration, sha256=f.info.sha256,
                        status=status, error=error)


def mark_failed(session, rec_id: int, error: str, ended_at: dt.datetime | None = None) -> None:
    values: dict[str, Any] = {"status": "failed", "error": error[:256]}
    if ended_at is not None:
        values["ended_at"] = as_utc(ended_at)
    _update(session, rec_id, **values)


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
    Whether the message can be acted on: :func:`unusable`.
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


def unusable(session, rec_id: int, min_seconds: float) -> str | None:
    """Why voice message ``rec_id`` must not be acted on (no ticket, no callback), or None.

    Not ``ready`` (empty, cut short, missing), or ``ready`` but holding less than
    ``min_seconds`` of audio: a caller who hung up at the beep (or pressed # at once)
    leaves a header-only WAV, which is a good file with nothing in it.  The audio is the
    file's (its WAV duration), never what Asterisk claimed (``endpos``); in a format whose
    duration cannot be read from the file the row's duration is the call's, so only the
    status counts there."""
    rec = session.get(Recording, rec_id)
    if rec is None:
        raise LookupError(f"no recording {rec_id}")
    if rec.status != "ready":
        return f"not recorded: recording {rec_id} is {rec.status} ({rec.error or 'no reason given'})"
    if rec.format.lower() == "wav" and rec.duration < min_seconds:
        heard = math.floor(rec.duration * 10) / 10  # never rounded up to the minimum
        return (f"no message: {heard:.1f} s of audio (under {min_seconds:g} s: nothing said, "
                "or hung up at the beep)")
    return None


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
