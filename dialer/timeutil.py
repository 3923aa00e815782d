"""UTC datetimes for the store and epoch seconds for the clock.

SQLite hands back naive datetimes and PostgreSQL aware ones; everything the
dialer stores is UTC, so naive values read back are UTC too.
"""
from __future__ import annotations

import datetime as dt

UTC = dt.timezone.utc


def to_dt(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, tz=UTC)


def to_ts(value: dt.datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def as_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
