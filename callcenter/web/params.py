"""Query parameters parsed once, each refusal a :class:`BadRequest` naming the parameter
(views never see the stdlib's ``ValueError``, nor an integer a database cannot hold)."""
from __future__ import annotations

import datetime as dt

from .http import BadRequest

MAX_OFFSET = 1_000_000_000   # far past any table here; a 64-bit column overflows long after


def int_arg(args: dict, name: str, default: int, lo: int, hi: int) -> int:
    raw = (args.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name}: must be a whole number, got {raw[:20]!r}") from None
    if not lo <= value <= hi:
        raise BadRequest(f"{name}: must be {lo}-{hi}")
    return value


def date_arg(args: dict, name: str, default: dt.date | None) -> dt.date | None:
    raw = args.get(name) or ""
    if not raw:
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name}: not a date (YYYY-MM-DD): {raw[:20]!r}") from None


def moment_arg(args: dict, name: str) -> dt.datetime | None:
    """An ISO 8601 date and time with its offset (``2026-12-01T08:00:00+08:00``, ``...Z``)."""
    raw = args.get(name) or ""
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name}: not an ISO date/time {raw[:40]!r} (e.g. 2026-12-01T08:00:00+08:00)") from None
    if value.tzinfo is None:
        raise BadRequest(f"{name}: give the offset (e.g. +08:00 or Z)")
    return value
