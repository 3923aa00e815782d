"""The hospital's working calendar: working days and working hours, in its timezone.

Working days come from the ``holidays`` package for the configured country,
which knows public holidays *and* official make-up working days (China's 调休:
e.g. Saturday 2026-10-10 is a working day, Tuesday 2026-10-06 is not).  Nothing
here reads the wall clock: every function takes the instant it works on.

Instants are aware datetimes (any zone) or POSIX seconds; results are aware
datetimes in the hospital's timezone.  Days are always the *hospital's* days:
23:30 in Shanghai on a Friday is Friday even though it is 15:30 UTC.

The rule for work received outside working hours (documented in
docs/complaints.md) lives in :meth:`WorkCalendar.clock_start`: the clock of a
working-time deadline starts at the next opening of a working day.
"""
from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import holidays


def parse_hhmm(text: str, field: str = "time") -> dt.time:
    """``"08:30"`` -> ``time(8, 30)``; a clear error naming ``field`` otherwise."""
    try:
        hh, mm = str(text).strip().split(":")
        return dt.time(int(hh), int(mm))
    except (ValueError, TypeError):
        raise ValueError(f"{field}: expected HH:MM (e.g. 08:00), got {text!r}") from None


def to_datetime(value: dt.datetime | float | int) -> dt.datetime:
    """An aware datetime for an instant; naive datetimes are taken as UTC (SQLite returns those)."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.fromtimestamp(float(value), tz=dt.timezone.utc)


@dataclass(frozen=True)
class WorkingHours:
    start: dt.time = dt.time(8, 0)
    end: dt.time = dt.time(17, 30)

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ValueError(f"working hours: start {self.start:%H:%M} must be before end {self.end:%H:%M}")


class WorkCalendar:
    """Working days of ``country`` and working hours, in timezone ``tz``."""

    def __init__(self, country: str = "CN", tz: str | ZoneInfo = "Asia/Shanghai",
                 hours: WorkingHours | None = None, subdiv: str | None = None):
        self.country = country.upper()
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz
        self.hours = hours or WorkingHours()
        self._hol = holidays.country_holidays(self.country, subdiv=subdiv or None)
        # holidays expands its years lazily (mutating a dict): one lock makes the
        # calendar safe to share between the DB worker threads.
        self._lock = threading.Lock()

    # -- days ---------------------------------------------------------------
    def is_working_day(self, day: dt.date) -> bool:
        with self._lock:
            return self._hol.is_working_day(day)

    def nth_working_day(self, day: dt.date, n: int) -> dt.date:
        """The n-th working day after ``day`` (n=0: ``day`` or the next working day)."""
        with self._lock:
            return self._hol.get_nth_working_day(day, n)

    def holiday_name(self, day: dt.date) -> str | None:
        with self._lock:
            return self._hol.get(day)

    # -- instants -----------------------------------------------------------
    def local(self, when: dt.datetime | float) -> dt.datetime:
        return to_datetime(when).astimezone(self.tz)

    def _at(self, day: dt.date, t: dt.time) -> dt.datetime:
        return dt.datetime.combine(day, t, tzinfo=self.tz)

    def opening(self, day: dt.date) -> dt.datetime:
        return self._at(day, self.hours.start)

    def closing(self, day: dt.date) -> dt.datetime:
        return self._at(day, self.hours.end)

    def in_working_hours(self, when: dt.datetime | float) -> bool:
        """True on a working day between opening (inclusive) and closing (exclusive)."""
        t = self.local(when)
        return (self.is_working_day(t.date())
                and self.opening(t.date()) <= t < self.closing(t.date()))

    def clock_start(self, when: dt.datetime | float) -> dt.datetime:
        """When a working-time deadline's clock starts for work received at ``when``.

        Rule: inside working hours the clock starts at once; before opening on a
        working day it starts at that day's opening; after closing, or on a day
        off, it starts at the opening of the next working day.
        """
        t = self.local(when)
        day = t.date()
        if self.is_working_day(day):
            if t < self.opening(day):
                return self.opening(day)
            if t < self.closing(day):
                return t
        return self.opening(self.nth_working_day(day, 1))

    def add_working_days(self, when: dt.datetime | float, n: int) -> dt.datetime:
        """``n`` working days after ``when``: the same time of day on the n-th next working day,
        counted from :meth:`clock_start` (so the result is always inside working hours)."""
        if n < 0:
            raise ValueError("working days must be >= 0")
        start = self.clock_start(when)
        if n == 0:
            return start
        day = self.nth_working_day(start.date(), n)
        return self._at(day, start.time())

    def add_working_time(self, when: dt.datetime | float, seconds: float) -> dt.datetime:
        """``seconds`` of working time after ``when`` (e.g. "1 working hour").

        Counting starts at :meth:`clock_start`; time that does not fit before
        closing carries over to the next working day's opening.  A result that
        lands exactly on closing stays there (it is still that working day).
        """
        if seconds < 0:
            raise ValueError("working time must be >= 0")
        t = self.clock_start(when)
        left = dt.timedelta(seconds=seconds)
        while True:
            room = self.closing(t.date()) - t
            if left <= room:
                return t + left
            left -= room
            t = self.opening(self.nth_working_day(t.date(), 1))

    def working_seconds_between(self, a: dt.datetime | float, b: dt.datetime | float) -> float:
        """Working time (seconds) inside [a, b]; 0 when b <= a."""
        a, b = self.local(a), self.local(b)
        if b <= a:
            return 0.0
        total = 0.0
        day = a.date()
        while day <= b.date():
            if self.is_working_day(day):
                lo = max(a, self.opening(day))
                hi = min(b, self.closing(day))
                if hi > lo:
                    total += (hi - lo).total_seconds()
            day += dt.timedelta(days=1)
        return total
