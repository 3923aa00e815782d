"""Simulated history with known weekly and intraday seasonality (seeded Poisson arrivals)."""
from __future__ import annotations

import datetime as dt

import numpy as np

from callcenter.forecast import MAKEUP, SLOTS, Interval, day_type

WEEKLY = (1.0, 0.9, 0.85, 0.85, 0.8, 0.35, 0.0)   # Monday .. Sunday (closed)
AHT = 180.0


def intraday(weekday: int) -> list[float]:
    """Share of the day's calls per half hour: 08:00-17:30 with a morning peak; Saturday mornings."""
    w = [0.0] * SLOTS
    last = 24 if weekday == 5 else 35
    for s in range(16, last):
        w[s] = 3.0 if 18 <= s < 22 else (2.0 if 22 <= s < 26 else 1.0)
    total = sum(w)
    return [v / total for v in w] if total else w


def expected(day: dt.date, slot: int, base: float, cal=None) -> float:
    """The true rate; with ``cal`` holidays are closed and make-up days an average working day."""
    kind = day_type(cal, day) if cal is not None else day.weekday()
    if kind == MAKEUP:
        return base * sum(WEEKLY[:5]) / 5 * intraday(0)[slot]
    return base * WEEKLY[kind] * intraday(kind)[slot]


def simulate(start: dt.date, days: int, *, base: float = 400.0, seed: int = 21, queue: str = "general",
             cal=None) -> list[Interval]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(days):
        d = start + dt.timedelta(days=i)
        for slot in range(SLOTS):
            lam = expected(d, slot, base, cal)
            if lam <= 0:
                continue
            n = int(rng.poisson(lam))
            if n:
                out.append(Interval(queue, d, slot, n, n, AHT * n, n, min(n, 5)))
    return out
