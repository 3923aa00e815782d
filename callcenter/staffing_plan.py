"""Staffing plan: agents needed per queue and half hour from the forecast, with its back-test.

:func:`plan` is pure (history intervals in, plan out); :func:`load_plan` runs the
one GROUP BY query and the plan in a session (the web calls it via ``db.run``).

The back-test repeats the forecast as of 1..``backtest_weeks`` weeks before the
history's end (using only what was known then) and compares each week's
forecast with what happened: WAPE = Σ|actual − forecast| ÷ Σ actual, MAPE =
mean |actual − forecast| ÷ actual over half hours with calls (undefined
without), next to the noise floor: the WAPE a perfect forecast of the rate
would still have on Poisson half-hour counts.  Past days also show the agents
*seen answering* per half hour: the store has no agent log-in times, so that is
the closest honest measure of the staff who were there.
"""
from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from zoneinfo import ZoneInfo

from . import staffing
from .forecast import (SLOT_SECONDS, Calendar, ForecastError, Interval, NotEnoughHistory, forecast_queue,
                       slot_label)
from .queuecalls.history import half_hours

HISTORY_WEEKS = 8
BACKTEST_WEEKS = 2
PLAN_COLUMNS = ("queue", "day", "time", "forecast_calls", "aht_seconds", "agents_needed",
                "expected_service_level")
PAST_COLUMNS = ("queue", "day", "time", "actual_calls", "forecast_calls", "agents_needed_forecast",
                "agents_needed_actual", "agents_seen_answering")
ERROR_COLUMNS = ("time", "actual_calls", "forecast_calls", "wape", "mape")


def _advice(calls: float, aht: float, target: float, goal: float) -> staffing.Advice:
    """Erlang C for a half hour; fractional expected calls round up (≥1 agent when calls are expected)."""
    return staffing.agents_needed(math.ceil(round(calls, 2)), SLOT_SECONDS, aht, target_seconds=target, goal=goal)


def plan(history: list[Interval], cal: Calendar, *, end: dt.date, days: list[dt.date], target: float,
         goal: float, history_weeks: int = HISTORY_WEEKS, backtest_weeks: int = BACKTEST_WEEKS) -> dict:
    """The plan for ``days`` from ``history`` before ``end``; per-queue problems instead of guesses."""
    queues = sorted({r.queue for r in history})
    if not queues:
        raise NotEnoughHistory(f"no inbound queue calls in the {history_weeks} weeks before {end}")
    rows, problems, past, errors, failures = [], {}, [], [], []
    actual = {(r.queue, r.day, r.slot): r for r in history}
    for q in queues:
        try:
            fc = forecast_queue(history, cal, first=end - dt.timedelta(weeks=history_weeks), end=end,
                                days=days, queue=q)
        except ForecastError as e:
            problems[q] = str(e)
            failures.append(e)
            continue
        for f in fc:
            adv = _advice(f.calls, f.aht_seconds, target, goal)
            rows.append({"queue": q, "day": f.day.isoformat(), "time": slot_label(f.slot),
                         "forecast_calls": round(f.calls, 2), "aht_seconds": round(f.aht_seconds, 1),
                         "agents_needed": adv.agents, "expected_service_level": round(adv.service_level, 3)})
        for w in range(backtest_weeks, 0, -1):
            origin = end - dt.timedelta(weeks=w)
            week = [origin + dt.timedelta(days=i) for i in range(7)]
            try:
                bt = forecast_queue(history, cal, first=origin - dt.timedelta(weeks=history_weeks), end=origin,
                                    days=week, queue=q)
            except ForecastError:
                continue  # no forecast possible as of then: that week is not back-tested
            for f in bt:
                a = actual.get((q, f.day, f.slot))
                n = a.offered if a else 0
                errors.append((f.slot, n, f.calls))
                if w == 1:
                    aht = (a.talk_seconds / a.talked) if a and a.talked else f.aht_seconds
                    past.append({"queue": q, "day": f.day.isoformat(), "time": slot_label(f.slot),
                                 "actual_calls": n, "forecast_calls": round(f.calls, 2),
                                 "agents_needed_forecast": _advice(f.calls, f.aht_seconds, target, goal).agents,
                                 "agents_needed_actual": _advice(n, aht, target, goal).agents,
                                 "agents_seen_answering": a.agents_seen if a else 0})
    if not rows:
        kind = NotEnoughHistory if all(isinstance(e, NotEnoughHistory) for e in failures) else ForecastError
        raise kind("; ".join(problems.values()))
    return {"rows": rows, "columns": list(PLAN_COLUMNS), "problems": problems,
            "backtest": backtest_summary(errors), "past": past, "past_columns": list(PAST_COLUMNS),
            "target": target, "goal": goal, "history_weeks": history_weeks}


def backtest_summary(errors: list[tuple[int, float, float]]) -> dict:
    """WAPE/MAPE overall and per half hour of the day from (slot, actual, forecast) triples."""
    by_slot: dict[int, list] = defaultdict(list)
    for e in errors:
        by_slot[e[0]].append(e)
    per = []
    for slot in sorted(by_slot):
        a, f, w, m = _errors(by_slot[slot])
        if a or f:
            per.append({"time": slot_label(slot), "actual_calls": a, "forecast_calls": round(f, 1),
                        "wape": w, "mape": m})
    a, f, w, m = _errors(errors)
    noise = sum(poisson_mad(e[2]) for e in errors)
    return {"intervals": len(errors), "actual_calls": a, "forecast_calls": round(f, 1), "wape": w,
            "mape": m, "noise_floor_wape": round(noise / f, 4) if f else None,
            "by_interval": per, "columns": list(ERROR_COLUMNS)}


def poisson_mad(lam: float) -> float:
    """E|N − λ| for N ~ Poisson(λ) (exact: 2·e^−λ·λ^(k+1)/k!, k = ⌊λ⌋): the error a perfect
    forecast of the rate still makes on a half hour's count."""
    if lam <= 0:
        return 0.0
    k = math.floor(lam)
    return 2.0 * math.exp(-lam + (k + 1) * math.log(lam) - math.lgamma(k + 1))


def _errors(errs) -> tuple[float, float, float | None, float | None]:
    actual = sum(e[1] for e in errs)
    fc = sum(e[2] for e in errs)
    absdiff = sum(abs(e[1] - e[2]) for e in errs)
    pct = [abs(e[1] - e[2]) / e[1] for e in errs if e[1] > 0]
    return (actual, fc, round(absdiff / actual, 4) if actual else None,
            round(sum(pct) / len(pct), 4) if pct else None)


def load_plan(session, cal, *, tz: ZoneInfo, end: dt.date, days: list[dt.date], target: float, goal: float,
              short_abandon: float, queue: str | None = None) -> dict:
    """Query the half-hour history before ``end`` and plan ``days`` (runs in one session)."""
    first = end - dt.timedelta(weeks=HISTORY_WEEKS + BACKTEST_WEEKS)
    since = dt.datetime.combine(first, dt.time(), tz)
    until = dt.datetime.combine(end, dt.time(), tz)
    history = half_hours(session, since, until, tz, short_abandon=short_abandon, queue=queue)
    return plan(history, cal, end=end, days=days, target=target, goal=goal)


# --- the page's compact view (the CSV, XLSX and JSON keep every half hour) ----------------------

def day_totals(rows: list[dict]) -> list[dict]:
    """Per plan day, all queues: forecast calls, the agents needed at its busiest half hour
    (summed over the queues) and when, and agent hours (agents × half hours ÷ 2)."""
    days: dict[str, dict[str, float]] = {}
    for r in rows:
        days.setdefault(r["day"], {}).setdefault(r["time"], 0)
        days[r["day"]][r["time"]] += r["agents_needed"]
    out = []
    for day in sorted(days):
        slots = days[day]
        peak = max(slots.values())
        out.append({"day": day, "forecast_calls": round(sum(r["forecast_calls"] for r in rows if r["day"] == day), 1),
                    "agents_peak": peak, "peak_time": min(k for k, v in slots.items() if v == peak) if peak else None,
                    "agent_hours": sum(slots.values()) / 2})
    return out


def day_grid(rows: list[dict], day: str) -> tuple[list[str], list[dict]]:
    """(queues, one row per half hour of ``day`` that needs an agent: ``{"time", queue: agents, ...,
    "agents_needed": all queues}``): the plan of one day as a person reads it."""
    queues = sorted({r["queue"] for r in rows})
    slots: dict[str, dict] = {}
    for r in rows:
        if r["day"] == day:
            slots.setdefault(r["time"], {"time": r["time"]})[r["queue"]] = r["agents_needed"]
    out = []
    for time in sorted(slots):
        row = {"time": time, **{q: slots[time].get(q, 0) for q in queues}}
        row["agents_needed"] = sum(row[q] for q in queues)
        if row["agents_needed"]:
            out.append(row)
    return queues, out


def past_totals(past: list[dict]) -> list[dict]:
    """The back-tested week per day and queue: calls summed, agents at the busiest half hour."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in past:
        groups.setdefault((r["day"], r["queue"]), []).append(r)
    return [{"day": d, "queue": q, "actual_calls": sum(r["actual_calls"] for r in rs),
             "forecast_calls": round(sum(r["forecast_calls"] for r in rs), 1),
             "agents_needed_forecast": max(r["agents_needed_forecast"] for r in rs),
             "agents_needed_actual": max(r["agents_needed_actual"] for r in rs),
             "agents_seen_answering": max(r["agents_seen_answering"] for r in rs)}
            for (d, q), rs in sorted(groups.items())]
