"""Today's per-queue figures as running totals, so the wallboard costs O(queues), not O(calls).

The wallboard used to re-read and re-summarize every queue call of the day on each
request.  Here each finished call (the tracker's ``finished`` fact, or a stored row at
load time) adds its contribution to counters per queue and for all queues (``""``).
Definitions are :func:`callcenter.queuecalls.stats.summarize`'s, applied one call at
a time (same outcome groups, same thresholds, same rounding), and tests check the two
agree over the stored rows.

Calls are keyed like the ``queue_calls`` table (uniqueid, queue, leg) and a call seen
again replaces its earlier contribution under the store's own merge rule (a measured
row is not overwritten by a reconstructed one, ``unknown`` always gives way), so a
call both loaded from the database and delivered as a fact counts once.  "Today" is
the hospital's local day of ``entered_at``, as in the reports.  Inbound calls only: a
dialer call queued for an agent is outbound and has its own figures per campaign.
"""
from __future__ import annotations

import datetime as dt
from bisect import bisect_left, insort
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from callcenter.queuecalls import stats
from callcenter.queuecalls.store import _better as _replaces  # the store's merge rule, reused

from . import data

Key = tuple[str, str, int]


@dataclass(slots=True, frozen=True)
class Contribution:
    """What one call adds to the figures (the columns ``stats.summarize`` reads)."""

    queue: str
    outcome: str
    wait: float | None
    gap: bool


@dataclass(slots=True)
class Totals:
    """The counters of ``stats.summarize`` for one queue, updated one call at a time."""

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

    def add(self, c: Contribution, target: float, short_abandon: float, sign: int = 1) -> None:
        if c.gap:
            self.gaps += sign
        if c.outcome not in stats.ANSWERED and c.outcome not in stats.UNANSWERED:
            return
        w = float(c.wait) if c.wait is not None else None
        if w is not None:
            if sign > 0:
                insort(self.waits, w)
            else:
                del self.waits[bisect_left(self.waits, w)]
        if c.outcome in stats.ANSWERED:
            self.answered += sign
            self.answered_wait += sign * (w or 0.0)
            if w is not None and w <= target:
                self.within += sign
            return
        if c.outcome == "abandoned":
            self.abandoned += sign
            if w is not None and w < short_abandon:
                self.short += sign
        elif c.outcome == "timeout":
            self.timeouts += sign
        else:
            self.redirected += sign
        if w is not None and w <= target:
            self.unans_within += sign

    def summary(self, target: float, short_abandon: float) -> dict[str, Any]:
        """The dict ``stats.summarize`` returns for the same calls."""
        total = self.answered + self.abandoned + self.timeouts + self.redirected
        offered = total - self.short
        unanswered = self.abandoned + self.timeouts + self.redirected
        waits = self.waits
        answered_wait = self.answered_wait if self.answered else 0.0
        return {
            "offered": offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "short_abandons": self.short,
            "timeouts": self.timeouts,
            "redirected": self.redirected,
            "answered_within_target": self.within,
            "service_level": stats._ratio(self.within, offered),
            "sl_asterisk": stats._ratio(self.within, self.answered),
            "sl2": stats._ratio(self.within + self.unans_within, self.answered + unanswered),
            "asa_seconds": stats._round(answered_wait / self.answered) if self.answered else None,
            "max_wait_seconds": stats._round(waits[-1]) if waits else None,
            "p90_wait_seconds": stats._round(stats.percentile(waits, 90)),
            "abandon_rate": stats._ratio(self.abandoned - self.short, offered),
            "gaps": self.gaps,
            "answer_target_seconds": target,
            "short_abandon_seconds": short_abandon,
        }


class TodayFigures:
    """Running figures for calls that entered in ``[start, end)`` (epoch seconds)."""

    def __init__(self, start: float, end: float, target: float, short_abandon: float):
        self.start, self.end = start, end
        self.target, self.short_abandon = target, short_abandon
        self.calls: dict[Key, Contribution] = {}
        self.totals: dict[str, Totals] = {}

    def apply(self, key: Key, entered: float | None, c: Contribution) -> bool:
        """Count one call (again): returns whether the figures changed."""
        if entered is None or not (self.start <= entered < self.end):
            return False
        old = self.calls.get(key)
        if old is not None:
            if old == c or not _replaces({"outcome": c.outcome, "gap": c.gap},
                                         {"outcome": old.outcome, "gap": old.gap}):
                return False
            self._add(old, -1)
        self.calls[key] = c
        self._add(c, 1)
        return True

    def apply_record(self, rec: Any) -> bool:
        """A ``QueueCallRecord`` (the tracker's ``finished`` fact or its unwritten buffer);
        dialer (outbound) calls are not hotline traffic and are left out."""
        if rec.direction != "inbound":
            return False
        return self.apply((rec.uniqueid, rec.queue, int(rec.leg or 1)), rec.entered_at,
                          Contribution(rec.queue, rec.outcome, rec.wait_seconds, bool(rec.gap)))

    def apply_row(self, row: dict) -> bool:
        """A stored row from :func:`load_rows`."""
        entered = row["entered_at"]
        return self.apply((row["uniqueid"], row["queue"], int(row["leg"] or 1)),
                          entered.timestamp() if entered is not None else None,
                          Contribution(row["queue"], row["outcome"], row["wait_seconds"], bool(row["gap"])))

    def _add(self, c: Contribution, sign: int) -> None:
        for q in (c.queue, ""):
            t = self.totals.get(q)
            if t is None:
                t = self.totals[q] = Totals()
            t.add(c, self.target, self.short_abandon, sign)

    def summaries(self) -> dict[str, dict]:
        """queue -> ``stats.summarize``-style dict, plus ``""`` for all queues (when any call)."""
        return {q: t.summary(self.target, self.short_abandon) for q, t in self.totals.items()}


def load_rows(s, start: dt.datetime, end: dt.datetime) -> list[dict] | None:
    """The stored calls of one day, in one SELECT (None when the queue_calls table is unknown)."""
    t = data._table("queue_calls")
    if t is None:
        return None
    q = select(t.c.uniqueid, t.c.queue, t.c.leg, t.c.entered_at, t.c.outcome, t.c.wait_seconds,
               t.c.gap).where(t.c.entered_at >= start, t.c.entered_at < end, t.c.direction == "inbound")
    rows = []
    for r in s.execute(q):
        d = dict(r._mapping)
        d["entered_at"] = data._utc(d["entered_at"])
        rows.append(d)
    return rows
