"""Where recording files live: ``<YYYY>/<MM>/<DD>/<queue-or-campaign>/<uniqueid>.<fmt>``,
under ``<server>/`` for a named Asterisk server (``[[ami]]``: two may reuse a Uniqueid).

Pure path logic.  The catalogue stores paths *relative* to the recordings
directory, so the directory can move (or be mounted elsewhere than Asterisk's
``spool_dir`` on a remote PBX) without rewriting rows.  Every name that comes
from outside (queue, campaign, Uniqueid) is reduced to a safe file-name
alphabet, and :func:`resolve_inside` is the one gate between a catalogue path
and the file system: it refuses anything that would leave the directory.
"""
from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path, PurePosixPath

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
VOICE_MESSAGE_GROUP = "voicemail"


class UnsafePath(ValueError):
    """A path that is absolute, climbs out of the recordings directory, or is not a plain name."""


def safe_name(text: str, *, fallback: str = "unknown") -> str:
    """A single path component: ``[A-Za-z0-9._-]`` only, never ``.``/``..``, at most 64 chars."""
    name = _UNSAFE.sub("_", text or "").strip(".")[:64]
    return name or fallback


def relative_path(when: dt.datetime, group: str, uniqueid: str, fmt: str = "wav", server: str = "default") -> str:
    """``2026/11/22/consultation/1795346754.44.wav`` (``when`` in the hospital's local time);
    ``north/2026/...`` for Asterisk server ``north`` (the one server of before: no prefix)."""
    return "/".join((*(() if server == "default" else (safe_name(server),)),
        f"{when.year:04d}", f"{when.month:02d}", f"{when.day:02d}",
        safe_name(group), f"{safe_name(uniqueid)}.{safe_name(fmt, fallback='wav')}",
    ))


def check_relative(rel: str) -> PurePosixPath:
    """Validate a catalogue path: relative, no ``..``, no empty or hidden tricks."""
    if not rel or "\x00" in rel or "\\" in rel:
        raise UnsafePath(f"unsafe recording path {rel!r}")
    p = PurePosixPath(rel)
    if p.is_absolute() or any(part in ("..", ".", "") for part in rel.split("/")):
        raise UnsafePath(f"unsafe recording path {rel!r}")
    return p


def real_root(root: Path) -> str:
    """The recordings directory with its symlinks resolved (what :func:`resolve_inside`
    compares with)."""
    return os.path.realpath(root)


def resolve_inside(root: Path, rel: str, *, base: str | None = None) -> Path:
    """The real file for catalogue path ``rel``; refuses escapes, also through symlinks.
    ``base``: :func:`real_root` of ``root``, for many paths in a row (a batch of
    finalisations resolves the directory once).  (On strings: capture calls it for every
    recording it finalises, and ``Path.parents`` made it ~4x dearer.)"""
    check_relative(rel)
    base = os.path.realpath(root) if base is None else base
    full = os.path.realpath(os.path.join(base, rel))
    if full != base and not full.startswith(base if base.endswith(os.sep) else base + os.sep):
        raise UnsafePath(f"recording path {rel!r} resolves outside the recordings directory")
    return Path(full)


def to_relative(path: str, roots: list[Path]) -> str:
    """Map an absolute path under one of ``roots`` (our directory, Asterisk's spool_dir) to
    a catalogue path; a relative path is checked and returned as is."""
    p = PurePosixPath(path)
    if not p.is_absolute():
        return str(check_relative(path))
    root = root_of(path, roots)
    if root is None:
        raise UnsafePath(f"recording path {path!r} is not under {', '.join(str(r) for r in roots)}")
    return str(check_relative(str(p.relative_to(root))))


def root_of(path: str, roots: list[Path]) -> PurePosixPath | None:
    """The first of ``roots`` that the absolute ``path`` is or lies under; None if none."""
    p = PurePosixPath(path)
    for root in roots:
        r = PurePosixPath(str(root))
        if p == r or r in p.parents:
            return r
    return None
