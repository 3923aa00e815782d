"""The reports as they were computed before the database did it (kept verbatim as the oracle).

``summarize``/``group_by``/``breakdowns`` are the old ``queuecalls.stats`` functions and
the rest the old ``web.reports`` ones, over rows loaded as dicts (every column of ``queue_calls``); the tests check that
the SQL reports give the same figures on the same data.
"""
from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from typing import Any, Callable, Iterable
from typing import Mapping
from zoneinfo import ZoneInfo

from callcenter import staffing
from callcenter.logs import mask_number

ANSWERED = ("answered", "transferred")
UNANSWERED = ("abandoned", "timeout", "redirected")

SUMMARY_KEYS = ("offered", "answered", "abandoned", "short_abandons", "timeouts",
                "answered_within_target", "service_level", "sl_asterisk", "sl2",
                "asa_seconds", "max_wait_seconds", "p90_wait_seconds", "abandon_rate")


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(calls: Iterable[Any], answer_target: float = 30.0,
              short_abandon: float = 5.0) -> dict[str, Any]:
    answered = abandoned = short = timeouts = redirected = within = unans_within = gaps = 0
    answered_wait = 0.0
    waits: list[float] = []
    for r in calls:
        outcome = r["outcome"]
        w = r["wait_seconds"]
        if r["gap"]:
            gaps += 1
        if outcome not in ANSWERED and outcome not in UNANSWERED:
            continue
        w = float(w) if w is not None else None
        if w is not None:
            waits.append(w)
        if outcome in ANSWERED:
            answered += 1
            answered_wait += w or 0.0
            if w is not None and w <= answer_target:
                within += 1
            continue
        if outcome == "abandoned":
            abandoned += 1
            if w is not None and w < short_abandon:
                short += 1
        elif outcome == "timeout":
            timeouts += 1
        else:
            redirected += 1
        if w is not None and w <= answer_target:
            unans_within += 1
    total = answered + abandoned + timeouts + redirected
    offered = total - short
    unanswered = abandoned + timeouts + redirected
    waits.sort()
    return {
        "offered": offered,
        "answered": answered,
        "abandoned": abandoned,
        "short_abandons": short,
        "timeouts": timeouts,
        "redirected": redirected,
        "answered_within_target": within,
        "service_level": _ratio(within, offered),
        "sl_asterisk": _ratio(within, answered),
        "sl2": _ratio(within + unans_within, answered + unanswered),
        "asa_seconds": _round(answered_wait / answered) if answered else None,
        "max_wait_seconds": _round(waits[-1]) if waits else None,
        "p90_wait_seconds": _round(percentile(waits, 90)),
        "abandon_rate": _ratio(abandoned - short, offered),
        "gaps": gaps,
        "answer_target_seconds": answer_target,
        "short_abandon_seconds": short_abandon,
    }


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def _as_local(v: Any, tz: ZoneInfo) -> dt.datetime | None:
    if v is None:
        return None
    if isinstance(v, (int, float)):
        return dt.datetime.fromtimestamp(v, tz)
    if v.tzinfo is None:
        v = v.replace(tzinfo=dt.timezone.utc)
    return v.astimezone(tz)


def group_by(calls: Iterable[Any], key: Callable[[Any], Any], answer_target: float = 30.0,
             short_abandon: float = 5.0) -> list[dict[str, Any]]:
    groups: dict[Any, list] = defaultdict(list)
    for r in calls:
        k = key(r)
        if k is not None:
            groups[k].append(r)
    return [{"key": k, **summarize(v, answer_target, short_abandon)}
            for k, v in sorted(groups.items(), key=lambda kv: str(kv[0]))]


def breakdowns(calls: list[Any], answer_target: float, short_abandon: float,
               tz: ZoneInfo) -> dict[str, list[dict[str, Any]]]:
    """Per queue, per agent (answered calls), per local hour of day and per local day."""
    def local(r):
        return _as_local(r["entered_at"], tz)

    return {
        "queue": group_by(calls, lambda r: r["queue"], answer_target, short_abandon),
        "agent": group_by([r for r in calls if r["outcome"] in ANSWERED],
                          lambda r: r["agent"] or None, answer_target, short_abandon),
        "hour": group_by(calls, lambda r: (local(r).strftime("%H:00") if local(r) else None),
                         answer_target, short_abandon),
        "day": group_by(calls, lambda r: (local(r).date().isoformat() if local(r) else None),
                        answer_target, short_abandon),
    }


# --- the old web/reports.py ------------------------------------------------------------
Row = Mapping[str, Any]
BUCKETS = (0, 10, 20, 30, 45, 60, 90, 120, 180)


def _abandoned(r: Row) -> bool:
    return r.get("outcome") in ("abandoned", "timeout")


def _answered(r: Row) -> bool:
    return r.get("outcome") in ("answered", "transferred") or (
        r.get("answered_at") is not None and r.get("outcome") not in ("abandoned", "timeout"))


def _wait(r: Row) -> float:
    return float(r.get("wait_seconds") or 0.0)


def _local(d: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone.utc)
    return d.astimezone(tz)


def answer_time_distribution(rows: Iterable[Row], buckets: tuple = BUCKETS) -> list[dict]:
    """Answered and abandoned calls per wait-time bucket ``[lo, hi)``; the last is open."""
    out = []
    for i, lo in enumerate(buckets):
        hi = buckets[i + 1] if i + 1 < len(buckets) else None
        out.append({"from_seconds": lo, "to_seconds": hi,
                    "label": f"{lo}-{hi}s" if hi is not None else f"{lo}s+",
                    "answered": 0, "abandoned": 0})
    for r in rows:
        w = _wait(r)
        idx = max(i for i, lo in enumerate(buckets) if w >= lo) if w >= buckets[0] else 0
        if _answered(r):
            out[idx]["answered"] += 1
        elif _abandoned(r):
            out[idx]["abandoned"] += 1
    return out


def service_level_by(rows: Iterable[Row], key: str, tz: ZoneInfo, target: float,
                     short_abandon: float) -> list[dict]:
    """``key`` = "hour" (0-23, all days together) or "day" (local date)."""
    groups: dict[Any, list] = defaultdict(list)
    for r in rows:
        local = _local(r["entered_at"], tz)
        groups[local.hour if key == "hour" else local.date().isoformat()].append(r)
    out = []
    for k in sorted(groups):
        s = summarize(groups[k], target, short_abandon)
        out.append({key: k, **s})
    return out


def per_agent(rows: Iterable[Row], target: float) -> list[dict]:
    groups: dict[str, list] = defaultdict(list)
    names: dict[str, str] = {}
    for r in rows:
        if _answered(r) and r.get("agent"):
            groups[r["agent"]].append(r)
            names[r["agent"]] = r.get("agent_name") or names.get(r["agent"], "")
    out = []
    for agent in sorted(groups):
        calls = groups[agent]
        talk = [float(r.get("talk_seconds") or 0) for r in calls]
        out.append({
            "agent": agent, "name": names.get(agent, ""), "answered": len(calls),
            "talk_seconds_total": round(sum(talk), 1),
            "talk_seconds_avg": round(sum(talk) / len(talk), 1),
            "wait_seconds_avg": round(sum(_wait(r) for r in calls) / len(calls), 1),
            "answered_within_target": sum(1 for r in calls if _wait(r) <= target),
        })
    return out


def abandoned_calls(rows: Iterable[Row], tz: ZoneInfo) -> list[dict]:
    out = []
    for r in rows:
        if _abandoned(r):
            out.append({
                "entered_at": _local(r["entered_at"], tz).isoformat(timespec="seconds"),
                "queue": r.get("queue", ""), "caller": mask_number(r.get("caller_number") or ""),
                "wait_seconds": round(_wait(r), 1), "outcome": r.get("outcome"),
            })
    return sorted(out, key=lambda x: x["entered_at"])


def staffing_by_hour(rows: Iterable[Row], tz: ZoneInfo, *, days: int, target: float, goal: float,
                     wrap_seconds: float = 0.0) -> list[dict]:
    """Agents needed per hour of day from the average arrivals and handling time per hour."""
    rows = list(rows)
    by_hour: dict[int, list] = defaultdict(list)
    for r in rows:
        by_hour[_local(r["entered_at"], tz).hour].append(r)
    all_talk = [float(r.get("talk_seconds") or 0) for r in rows if _answered(r) and r.get("talk_seconds")]
    default_aht = (sum(all_talk) / len(all_talk)) if all_talk else 180.0
    out = []
    for hour in sorted(by_hour):
        calls = by_hour[hour]
        talk = [float(r.get("talk_seconds") or 0) for r in calls if _answered(r) and r.get("talk_seconds")]
        aht = (sum(talk) / len(talk) if talk else default_aht) + wrap_seconds
        per_hour = len(calls) / max(1, days)
        adv = staffing.agents_needed(math.ceil(per_hour), 3600.0, aht, target_seconds=target, goal=goal)
        out.append({"hour": hour, "calls_per_hour": round(per_hour, 2), "aht_seconds": round(aht, 1),
                    "traffic_erlangs": round(adv.traffic_erlangs, 2), "agents_needed": adv.agents,
                    "expected_service_level": round(adv.service_level, 3),
                    "expected_asa_seconds": round(adv.asa_seconds, 1)})
    return out


