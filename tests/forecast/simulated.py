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


def main() -> None:
    """``python -m tests.forecast.simulated``: the back-test error and the error against the true rate
    on simulated histories of 3-8 weeks and two volumes (figures quoted in docs/forecast.md)."""
    from callcenter.complaints.workdays import WorkCalendar
    from callcenter.forecast import forecast_queue
    from callcenter.staffing_plan import plan

    cal = WorkCalendar("CN", "Asia/Shanghai")
    start = dt.date(2026, 11, 2)
    print("base/day  weeks  backtest WAPE  MAPE   noise floor  WAPE vs true rate (next week)")
    for base in (60.0, 400.0):
        for weeks in (3, 4, 8):
            hist = simulate(start - dt.timedelta(weeks=weeks - 4), 7 * weeks, base=base, cal=cal)
            end = start + dt.timedelta(weeks=4)
            days = [end + dt.timedelta(days=i) for i in range(7)]
            bt = plan(hist, cal, end=end, days=days, target=30.0, goal=0.8)["backtest"]
            fc = forecast_queue(hist, cal, first=end - dt.timedelta(weeks=8), end=end, days=days, queue="general")
            truth = sum(expected(f.day, f.slot, base, cal) for f in fc)
            err = sum(abs(f.calls - expected(f.day, f.slot, base, cal)) for f in fc) / truth
            print(f"{base:8.0f}  {weeks:5d}  {bt['wape']:13.3f}  {bt['mape']:.3f}  {bt['noise_floor_wape']:11.3f}"
                  f"  {err:.3f}")


if __name__ == "__main__":
    main()
