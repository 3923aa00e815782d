"""Forecast of offered calls and handling time per queue and half hour (pure: history in, forecast out).

Method (docs/forecast.md): per queue, the daily totals are smoothed with
statsmodels' Holt-Winters (additive weekly seasonality, no trend: with a few
weeks of history a fitted trend extrapolates noise), then split over the day
with an intraday half-hour profile of the day's type.  Handling time per half
hour is the history's talk time per answered call in that half hour.

Day types follow the hospital calendar (:class:`~callcenter.complaints.workdays.WorkCalendar`):
an ordinary day is its weekday; a public holiday is a Sunday (the closed
pattern); a make-up working day on a weekend is an average Monday–Friday.
Holidays in the history are moved to their weekday's level before fitting (and
back after forecasting), so one Golden Week does not bend the weekly pattern.
"""
from __future__ import annotations

import datetime as dt
import warnings
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Protocol

# imported with this module, not at the first forecast: numpy's and statsmodels' C extensions
# hold the GIL while they load (1-4 s), which froze the web's event loop for 90-180 ms when the
# first /reports page computed its staffing plan on a worker thread
import numpy as np
from statsmodels.tsa.holtwinters import ExponentialSmoothing

SLOTS = 48                   # half hours in a day
SLOT_SECONDS = 1800
MIN_HISTORY_DAYS = 14        # two full weeks: each weekday seen at least twice
SUNDAY, MAKEUP = 6, 7        # day types 0..6 are weekdays; MAKEUP = average Mon..Fri
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class Calendar(Protocol):
    def is_working_day(self, day: dt.date) -> bool: ...
    def holiday_name(self, day: dt.date) -> str | None: ...


class ForecastError(ValueError):
    """No forecast can be made; the message says why."""


class NotEnoughHistory(ForecastError):
    """The history cannot support a forecast; the message names what is missing."""


@dataclass(frozen=True)
class Interval:
    """One queue's half hour of history (local day and slot 0..47)."""

    queue: str
    day: dt.date
    slot: int
    offered: int
    answered: int = 0
    talk_seconds: float = 0.0   # summed over answered calls with a talk time
    talked: int = 0             # answered calls with a talk time
    agents_seen: int = 0        # distinct agents who answered in this half hour


@dataclass(frozen=True)
class SlotForecast:
    queue: str
    day: dt.date
    slot: int
    calls: float
    aht_seconds: float


def day_type(cal: Calendar, day: dt.date) -> int:
    """0..6 for an ordinary weekday, SUNDAY for a public holiday, MAKEUP for a make-up working day."""
    wd = day.weekday()
    working = cal.is_working_day(day)
    if working and wd >= 5:
        return MAKEUP
    if not working and (wd < 5 or cal.holiday_name(day)):
        return SUNDAY
    return wd


def slot_label(slot: int) -> str:
    return f"{slot // 2:02d}:{30 * (slot % 2):02d}"


def forecast_queue(history: Iterable[Interval], cal: Calendar, *, first: dt.date, end: dt.date,
                   days: list[dt.date], queue: str) -> list[SlotForecast]:
    """Forecast ``queue`` for ``days`` (all on or after ``end``) from its history in [first, end).

    ``first`` is the first day the history covers; days before the queue's first call are
    not counted (a new queue is not "closed" before it existed).
    """
    if any(d < end for d in days):
        raise ValueError(f"forecast days must be on or after the history's end {end}")
    rows = [r for r in history if r.queue == queue and first <= r.day < end]
    if not rows:
        raise NotEnoughHistory(f"queue {queue}: no calls in the history {first} .. {end - dt.timedelta(days=1)}")
    start = max(first, min(r.day for r in rows))
    n = (end - start).days
    if n < MIN_HISTORY_DAYS:
        raise NotEnoughHistory(
            f"queue {queue}: {n} days of history from {start} (first call) to "
            f"{end - dt.timedelta(days=1)}; at least {MIN_HISTORY_DAYS} full days (2 weeks) are needed")
    series = [start + dt.timedelta(days=i) for i in range(n)]
    types = {d: day_type(cal, d) for d in series + list(days)}
    totals: dict[dt.date, float] = defaultdict(float)
    profile: dict[int, list[float]] = {k: [0.0] * SLOTS for k in range(MAKEUP + 1)}
    talk, talked = [0.0] * SLOTS, [0] * SLOTS
    for r in rows:
        totals[r.day] += r.offered
        profile[types[r.day]][r.slot] += r.offered
        talk[r.slot] += r.talk_seconds
        talked[r.slot] += r.talked
    if sum(talked) == 0:
        raise NotEnoughHistory(f"queue {queue}: no answered call with a talk time in the history")
    level = _type_levels(series, totals, types, queue)
    adjusted = [_to_weekday(totals[d], level[types[d]], level[d.weekday()]) for d in series]
    daily = _holt_winters(adjusted, horizon=(max(days) - end).days + 1 if days else 0, queue=queue)
    queue_aht = sum(talk) / sum(talked)
    shares = _shares(profile)
    out = []
    for d in days:
        k = types[d]
        total = max(0.0, _to_weekday(daily[(d - end).days], level[d.weekday()], level[k]))
        for slot in range(SLOTS):
            aht = talk[slot] / talked[slot] if talked[slot] else queue_aht
            out.append(SlotForecast(queue, d, slot, total * shares[k][slot], aht))
    return out


def _to_weekday(value: float, level_from: float, level_to: float) -> float:
    """Scale a day's total from one day type's level to another's (identity when they agree)."""
    if level_from == level_to:
        return value
    return value * level_to / level_from if level_from > 0 else level_to


def _type_levels(series: list[dt.date], totals: dict, types: dict, queue: str) -> dict[int, float]:
    """Mean daily total per day type (ordinary days only for weekdays; holidays for SUNDAY)."""
    sums: dict[int, list[float]] = defaultdict(list)
    for d in series:
        sums[types[d]].append(totals[d])
    missing = [WEEKDAYS[k] for k in range(7) if len(sums[k]) < 2]
    if missing:
        raise NotEnoughHistory(f"queue {queue}: fewer than 2 ordinary {', '.join(missing)} in the history "
                               f"(holidays and make-up days do not count as their weekday)")
    level = {k: sum(v) / len(v) for k, v in sums.items() if k != MAKEUP}
    level[MAKEUP] = sum(level[k] for k in range(5)) / 5
    return level


def _shares(profile: dict[int, list[float]]) -> dict[int, list[float]]:
    """Each day type's share of the day's calls per half hour (MAKEUP: Mon..Fri and make-up days)."""
    out = {}
    for k, p in profile.items():
        s = sum(p)
        out[k] = [v / s for v in p] if s else [0.0] * SLOTS
    week = [sum(profile[k][i] for k in (0, 1, 2, 3, 4, MAKEUP)) for i in range(SLOTS)]
    s = sum(week)
    out[MAKEUP] = [v / s for v in week] if s else [0.0] * SLOTS
    return out


def _holt_winters(values: list[float], horizon: int, queue: str) -> list[float]:
    """Additive Holt-Winters, weekly season, no trend; the optimiser's warnings become an error."""
    if horizon <= 0:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            fit = ExponentialSmoothing(np.asarray(values, dtype=float), trend=None, seasonal="add",
                                       seasonal_periods=7, initialization_method="estimated").fit()
        except Warning as w:
            raise ForecastError(f"queue {queue}: Holt-Winters did not fit the daily totals: {w}") from None
    return [float(v) for v in fit.forecast(horizon)]
