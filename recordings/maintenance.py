"""Reconciling the catalogue with the disk, and retention.

Blocking (file system walks, hashing, SQL): run from the CLI or a worker thread.
``now`` is always passed in (injected clock), never read here.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import select

from callcenter.store.models import audit

from . import layout
from .catalog import as_utc
from .models import Recording
from .settings import Settings
from .wav import inspect_file, sha256_file

STALE_AFTER = dt.timedelta(hours=24)


@dataclass
class Problem:
    kind: str  # missing | orphan | size_mismatch | checksum_mismatch | stale | failed | empty | unsafe_path
    path: str
    recording_id: int | None = None
    detail: str = ""


@dataclass
class VerifyReport:
    checked: int = 0
    files_on_disk: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {"checked": self.checked, "files_on_disk": self.files_on_disk,
                "problems": [asdict(p) for p in self.problems]}


def files_on_disk(root: Path) -> set[str]:
    """Relative '/'-paths of every regular file under ``root`` (symlinks are not followed)."""
    out: set[str] = set()
    if not root.is_dir():
        return out
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            full = Path(dirpath) / name
            if full.is_file() and not full.is_symlink():
                out.add(full.relative_to(root).as_posix())
    return out


def verify(db, settings: Settings, *, now: dt.datetime, check_hash: bool = True) -> VerifyReport:
    """Missing files, orphan files, size/checksum mismatches, rows stuck in ``recording``
    (voice messages at once: RECORD FILE has ended when they are catalogued), ``failed``
    recordings (refused, empty or cut short) and ``ready`` rows of empty files."""
    report = VerifyReport()
    root = settings.directory
    disk = files_on_disk(root)
    report.files_on_disk = len(disk)
    rows = db.call(lambda s: [(r.id, r.path, r.status, r.size, r.sha256, r.started_at, r.kind, r.error)
                              for r in s.scalars(select(Recording).order_by(Recording.id))])
    catalogued: set[str] = set()
    for rec_id, path, status, size, sha, started, kind, error in rows:
        if status == "purged":
            continue
        catalogued.add(path)
        report.checked += 1
        try:
            full = layout.resolve_inside(root, path)
        except layout.UnsafePath as exc:
            report.problems.append(Problem("unsafe_path", path, rec_id, str(exc)))
            continue
        exists = full.is_file()
        if status == "recording":
            if kind == "voice_message" or now - as_utc(started) > STALE_AFTER:
                report.problems.append(Problem("stale", path, rec_id,
                                               f"still 'recording' since {as_utc(started).isoformat()}"))
            continue
        if status == "failed":
            report.problems.append(Problem("failed", path, rec_id, error or "recording failed"))
            continue
        if not exists:
            report.problems.append(Problem("missing", path, rec_id,
                                           "marked missing" if status == "missing" else "file deleted"))
            continue
        if status != "ready":  # a 'missing' file that reappeared: worth a look
            report.problems.append(Problem("missing", path, rec_id, "catalogued missing but on disk"))
            continue
        actual = full.stat().st_size
        if actual == 0:
            report.problems.append(Problem("empty", path, rec_id, "catalogued ready, but the file is 0 bytes"))
        elif size is not None and actual != size:
            report.problems.append(Problem("size_mismatch", path, rec_id, f"catalogue {size} B, disk {actual} B"))
        elif check_hash and sha and sha256_file(full) != sha:
            report.problems.append(Problem("checksum_mismatch", path, rec_id, "sha256 differs"))
    for path in sorted(disk - catalogued):
        report.problems.append(Problem("orphan", path, None, "file on disk, not in the catalogue"))
    return report


@dataclass
class Purged:
    recording_id: int
    path: str
    kind: str
    size: int | None
    sha256: str | None
    purge_after: str
    removed_file: bool
    error: str = ""


def expired(session, now: dt.datetime) -> list[Recording]:
    q = (select(Recording)
         .where(Recording.status.in_(("ready", "missing", "failed")))
         .where(Recording.legal_hold.is_(False))
         .where(Recording.purge_after.is_not(None))
         .where(Recording.purge_after <= as_utc(now))
         .order_by(Recording.purge_after, Recording.id))
    return list(session.scalars(q))


def purge(db, settings: Settings, *, now: dt.datetime, actor: str, dry_run: bool = False) -> list[Purged]:
    """Delete the files of expired recordings not under legal hold.

    Each row is marked ``purged`` (with an audit entry naming path, size and sha256)
    in its own transaction *before* the file is unlinked, so what was removed is on
    record even if the process dies half-way; a file that could not be unlinked is
    reported and shows up as an orphan in ``verify``.
    """
    now = as_utc(now)
    candidates = db.call(lambda s: [(r.id, r.path, r.kind, r.size, r.sha256, as_utc(r.purge_after))
                                    for r in expired(s, now)])
    out: list[Purged] = []
    for rec_id, path, kind, size, sha, after in candidates:
        item = Purged(rec_id, path, kind, size, sha, after.isoformat(), removed_file=False)
        if dry_run:
            out.append(item)
            continue

        def mark(s, rec_id=rec_id, path=path, kind=kind, size=size, sha=sha):
            rec = s.get(Recording, rec_id)
            if rec is None or rec.legal_hold or rec.status == "purged":
                return False  # held or purged since the query
            rec.status, rec.purged_at = "purged", now
            audit(s, actor, "recording.purge", "recording", rec_id, path=path, kind=kind,
                  size=size, sha256=sha, purge_after=rec.purge_after.isoformat() if rec.purge_after else None)
            return True

        if not db.call(mark):
            continue
        try:
            full = layout.resolve_inside(settings.directory, path)
            if full.is_file():
                full.unlink()
                item.removed_file = True
        except (OSError, layout.UnsafePath) as exc:
            item.error = str(exc)
            db.call(lambda s, rec_id=rec_id, e=str(exc): setattr(s.get(Recording, rec_id), "error", e[:256]))
        out.append(item)
    return out


def fingerprint(settings: Settings, rel: str):
    """Size, duration and sha256 of a catalogued file (blocking)."""
    return inspect_file(layout.resolve_inside(settings.directory, rel), settings.format)
