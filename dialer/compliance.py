"""When a patient may be called, and when to try again.  Pure: times are epoch seconds.

Calling windows are local wall-clock times in the hospital's timezone on allowed
weekdays, never on the country's public holidays (``holidays`` also knows China's
shifted days off).  Retry delays depend on the last disposition; after
``max_attempts`` the contact is given up as unreachable.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Dispositions that end a contact without retrying.
FINAL = {"completed", "reached", "opted_out", "invalid"}
RETRYABLE = ("busy", "no_answer", "congestion", "failed", "hungup", "abandoned")


@lru_cache(maxsize=16)
def _holidays(country: str, year: int):
    import holidays

    return holidays.country_holidays(country, years=year)


@dataclass(frozen=True)
class Rules:
    timezone: str = "Asia/Shanghai"
    window_start: dt.time = dt.time(9, 0)
    window_end: dt.time = dt.time(20, 0)
    call_days: frozenset = frozenset(DAYS)
    country: str = "CN"
    skip_holidays: bool = True
    max_attempts: int = 3
    retry_minutes: dict = field(default_factory=lambda: {
        "busy": 15.0, "no_answer": 60.0, "congestion": 5.0, "failed": 120.0,
        "hungup": 30.0, "abandoned": 60.0})

    @classmethod
    def from_config(cls, config) -> "Rules":
        d = config.dialer

        def hhmm(s):
            h, m = (int(x) for x in s.split(":"))
            return dt.time(23, 59, 59) if h == 24 else dt.time(h, m)

        return cls(
            timezone=config.hospital.timezone, window_start=hhmm(d.window_start),
            window_end=hhmm(d.window_end), call_days=frozenset(x.lower() for x in d.call_days),
            country=config.hospital.country.upper(), skip_holidays=d.skip_holidays,
            max_attempts=d.max_attempts,
            retry_minutes={k: getattr(d, f"retry_{k}_minutes") for k in RETRYABLE},
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def longest_retry(self) -> float:
        """Seconds: the safe gap after an attempt whose outcome is unknown (crash)."""
        return max(self.retry_minutes.values()) * 60.0


def is_call_day(rules: Rules, day: dt.date) -> bool:
    if DAYS[day.weekday()] not in rules.call_days:
        return False
    if rules.skip_holidays and day in _holidays(rules.country, day.year):
        return False
    return True


def in_window(rules: Rules, ts: float) -> bool:
    local = dt.datetime.fromtimestamp(ts, rules.zone)
    if not is_call_day(rules, local.date()):
        return False
    t = local.time()
    return rules.window_start <= t < rules.window_end


def next_window_open(rules: Rules, ts: float) -> float:
    """``ts`` itself when calls are allowed now, else the start of the next window."""
    if in_window(rules, ts):
        return ts
    zone = rules.zone
    local = dt.datetime.fromtimestamp(ts, zone)
    day = local.date()
    for _ in range(400):
        start = dt.datetime.combine(day, rules.window_start, zone)
        if is_call_day(rules, day) and start.timestamp() >= ts:
            return start.timestamp()
        day += dt.timedelta(days=1)
    raise ValueError("no calling day within 400 days: check [dialer] call_days / holidays")


def window_close(rules: Rules, ts: float) -> float:
    """End of the window containing ``ts`` (callers check :func:`in_window` first)."""
    local = dt.datetime.fromtimestamp(ts, rules.zone)
    return dt.datetime.combine(local.date(), rules.window_end, rules.zone).timestamp()


def retry_delay(rules: Rules, disposition: str) -> float:
    """Seconds to wait after ``disposition`` (unknown outcomes wait the longest)."""
    minutes = rules.retry_minutes.get(disposition)
    return rules.longest_retry if minutes is None else minutes * 60.0


@dataclass(frozen=True)
class Next:
    """What happens to a contact after an attempt."""

    retry_at: float | None  # None: the contact is finished
    outcome: str = ""


def after_attempt(rules: Rules, disposition: str, attempts: int, now: float,
                  max_attempts: int | None = None, due_before: float | None = None) -> Next:
    """Decide the contact's next step from the attempt's disposition.

    Final dispositions end the contact; retryable ones schedule the next try after the
    disposition's delay (moved into the next calling window) unless the attempts are
    used up or the next try would fall after the contact's deadline.
    """
    if disposition in FINAL:
        return Next(None, disposition)
    limit = max_attempts or rules.max_attempts
    if attempts >= limit:
        return Next(None, "unreachable")
    at = next_window_open(rules, now + retry_delay(rules, disposition))
    if due_before is not None and at > due_before:
        return Next(None, "unreachable")
    return Next(at, "")


def predictive_ratio(answered: int, abandoned: int, *, target: float = 0.03,
                     max_ratio: float = 1.5, current: float = 1.0) -> float:
    """Calls per free agent for predictive mode, steered by the abandon rate.

    At or over the target the dialer falls back to 1.0 (progressive: nobody hears
    silence); with headroom it rises by at most 0.1 per decision towards ``max_ratio``,
    scaled by how much of the allowed abandon budget is still unused.
    """
    if answered <= 0:
        return 1.0
    rate = abandoned / answered
    if rate >= target:
        return 1.0
    headroom = 1.0 - rate / target
    goal = 1.0 + (max_ratio - 1.0) * headroom
    if goal > current:
        return min(goal, current + 0.1)
    return max(1.0, goal)
