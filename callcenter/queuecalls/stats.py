"""Answer-time figures over queue calls: pure functions over rows (mappings or records).

Definitions (docs/architecture.md "Vocabulary"; the issue's reconciliation with ``queue show``):

* *answered* = outcome answered or transferred; *abandoned* = outcome abandoned
  (caller hung up); *timeouts* = left the queue unanswered (Queue() timeout or
  empty queue); *redirected* = moved out by AMI ``Redirect``; *unknown* = the
  outcome was lost in an AMI outage without ``queue_log`` (counted in ``gaps``,
  kept out of every rate so it neither helps nor hurts).
* *short abandon* = abandoned with wait < ``short_abandon`` seconds.
* *offered* = all calls with a known outcome − short abandons.
* **service level** (docs/architecture.md) = answered within target ÷ offered.
* **Asterisk SL** (``ServicelevelPerf``) = answered within target ÷ answered.
* **Asterisk SL2** (``ServicelevelPerf2``) = (answered within target + unanswered
  within target) ÷ (answered + unanswered); Asterisk counts timeouts and
  redirects as abandoned, so "unanswered" here is abandoned + timeout + redirected.
* ASA = mean wait of answered calls; abandon rate = (abandoned − short) ÷ offered;
  max and p90 (nearest rank) wait over all calls with a known outcome.
"""
from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from typing import Any, Callable, Iterable
from zoneinfo import ZoneInfo

ANSWERED = ("answered", "transferred")
UNANSWERED = ("abandoned", "timeout", "redirected")

SUMMARY_KEYS = ("offered", "answered", "abandoned", "short_abandons", "timeouts",
                "answered_within_target", "service_level", "sl_asterisk", "sl2",
                "asa_seconds", "max_wait_seconds", "p90_wait_seconds", "abandon_rate")


def _get(r: Any, k: str) -> Any:
    return r.get(k) if isinstance(r, dict) else getattr(r, k, None)


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
        outcome = _get(r, "outcome")
        w = _get(r, "wait_seconds")
        if _get(r, "gap"):
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
        return _as_local(_get(r, "entered_at"), tz)

    return {
        "queue": group_by(calls, lambda r: _get(r, "queue"), answer_target, short_abandon),
        "agent": group_by([r for r in calls if _get(r, "outcome") in ANSWERED],
                          lambda r: _get(r, "agent") or None, answer_target, short_abandon),
        "hour": group_by(calls, lambda r: (local(r).strftime("%H:00") if local(r) else None),
                         answer_target, short_abandon),
        "day": group_by(calls, lambda r: (local(r).date().isoformat() if local(r) else None),
                        answer_target, short_abandon),
    }
