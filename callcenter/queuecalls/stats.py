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

from collections.abc import Mapping

import math
from bisect import bisect_left, insort
from dataclasses import dataclass, field
from typing import Any, Iterable

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


@dataclass(slots=True)
class Totals:
    """The counters behind a summary, updated one call at a time (``sign=-1`` takes a call back).

    The wallboard keeps one per queue for today; :func:`summarize` feeds one with a list
    of calls; the SQL reports fill the same fields from one GROUP BY (:func:`figures`).
    """

    answered: int = 0
    abandoned: int = 0
    short: int = 0
    timeouts: int = 0
    redirected: int = 0
    within: int = 0
    unans_within: int = 0
    gaps: int = 0
    answered_wait: float = 0.0
    waits: list[float] = field(default_factory=list)  # ascending, for max and p90

    def add(self, outcome: str | None, wait: float | None, gap: bool, target: float,
            short_abandon: float, sign: int = 1) -> None:
        """Count one call in (or, with ``sign=-1``, out), keeping ``waits`` sorted."""
        w = self.count(outcome, wait, gap, target, short_abandon, sign)
        if w is not None:
            if sign > 0:
                insort(self.waits, w)
            else:
                del self.waits[bisect_left(self.waits, w)]

    def count(self, outcome: str | None, wait: float | None, gap: bool, target: float,
              short_abandon: float, sign: int = 1) -> float | None:
        """The counters only; returns the wait that belongs in ``waits`` (None: none)."""
        if gap:
            self.gaps += sign
        if outcome not in ANSWERED and outcome not in UNANSWERED:
            return None
        w = float(wait) if wait is not None else None
        if outcome in ANSWERED:
            self.answered += sign
            self.answered_wait += sign * (w or 0.0)
            if w is not None and w <= target:
                self.within += sign
            return w
        if outcome == "abandoned":
            self.abandoned += sign
            if w is not None and w < short_abandon:
                self.short += sign
        elif outcome == "timeout":
            self.timeouts += sign
        else:
            self.redirected += sign
        if w is not None and w <= target:
            self.unans_within += sign
        return w

    def summary(self, target: float, short_abandon: float) -> dict[str, Any]:
        w = self.waits
        return figures(self.answered, self.abandoned, self.short, self.timeouts, self.redirected,
                       self.within, self.unans_within, self.gaps,
                       self.answered_wait if self.answered else 0.0,
                       w[-1] if w else None, percentile(w, 90), target, short_abandon)


def figures(answered: int, abandoned: int, short: int, timeouts: int, redirected: int, within: int,
            unans_within: int, gaps: int, answered_wait: float, max_wait: float | None,
            p90_wait: float | None, target: float, short_abandon: float) -> dict[str, Any]:
    """The summary dict from its counters: the one place the rates are defined."""
    total = answered + abandoned + timeouts + redirected
    offered = total - short
    unanswered = abandoned + timeouts + redirected
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
        "max_wait_seconds": _round(max_wait),
        "p90_wait_seconds": _round(p90_wait),
        "abandon_rate": _ratio(abandoned - short, offered),
        "gaps": gaps,
        "answer_target_seconds": target,
        "short_abandon_seconds": short_abandon,
    }


def summarize(calls: Iterable[Any], answer_target: float = 30.0,
              short_abandon: float = 5.0) -> dict[str, Any]:
    """The summary of ``calls``: records or rows with ``outcome``, ``wait_seconds`` and ``gap``
    (:class:`~.reducer.QueueCallRecord`, :class:`~.models.QueueCall`), or mappings with those
    keys (SQL result mappings); a missing field is an error, never taken as empty."""
    t = Totals()
    for r in calls:
        if isinstance(r, Mapping):
            outcome, wait, gap = r["outcome"], r["wait_seconds"], r["gap"]
        else:
            outcome, wait, gap = r.outcome, r.wait_seconds, r.gap
        w = t.count(outcome, wait, bool(gap), answer_target, short_abandon)
        if w is not None:
            t.waits.append(w)
    t.waits.sort()
    return t.summary(answer_target, short_abandon)


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)
