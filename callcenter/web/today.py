"""Today's per-queue figures as running totals, so the wallboard costs O(queues), not O(calls).

The wallboard used to re-read and re-summarize every queue call of the day on each
request.  Here each finished call (the tracker's ``finished`` fact, or a stored row at
load time) adds its contribution to counters per queue and for all queues (``""``).
The counters and the definitions are :class:`callcenter.queuecalls.stats.Totals` (the
same that :func:`~callcenter.queuecalls.stats.summarize` and the SQL reports use),
applied one call at a time; tests check the two agree over the stored rows.

Calls are keyed like the ``queue_calls`` table (uniqueid, queue, leg) and a call seen
again replaces its earlier contribution under the store's own merge rule (a measured
row is not overwritten by a reconstructed one, ``unknown`` always gives way), so a
call both loaded from the database and delivered as a fact counts once.  "Today" is
the hospital's local day of ``entered_at``, as in the reports.  Inbound calls only: a
dialer call queued for an agent is outbound and has its own figures per campaign.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from callcenter.queuecalls import stats
from callcenter.queuecalls.store import replaces

from . import data

Key = tuple[str, str, int]


@dataclass(slots=True, frozen=True)
class Contribution:
    """What one call adds to the figures (the columns ``stats.Totals`` counts)."""

    queue: str
    outcome: str
    wait: float | None
    gap: bool


class TodayFigures:
    """Running figures for calls that entered in ``[start, end)`` (epoch seconds)."""

    def __init__(self, start: float, end: float, target: float, short_abandon: float):
        self.start, self.end = start, end
        self.target, self.short_abandon = target, short_abandon
        self.calls: dict[Key, Contribution] = {}
        self.totals: dict[str, stats.Totals] = {}

    def apply(self, key: Key, entered: float | None, c: Contribution) -> bool:
        """Count one call (again): returns whether the figures changed."""
        if entered is None or not (self.start <= entered < self.end):
            return False
        old = self.calls.get(key)
        if old is not None:
            if old == c or not replaces({"outcome": c.outcome, "gap": c.gap},
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
                t = self.totals[q] = stats.Totals()
            t.add(c.outcome, c.wait, c.gap, self.target, self.short_abandon, sign)

    def summaries(self) -> dict[str, dict]:
        """queue -> ``stats.summarize``-style dict, plus ``""`` for all queues (when any call)."""
        return {q: t.summary(self.target, self.short_abandon) for q, t in self.totals.items()}


def load_rows(s, start: dt.datetime, end: dt.datetime, server: str | None = None) -> list[dict] | None:
    """The stored calls of one day (of one Asterisk ``server``, or all), in one SELECT (None
    when the queue_calls table is unknown)."""
    t = data._table("queue_calls")
    if t is None:
        return None
    q = select(t.c.uniqueid, t.c.queue, t.c.leg, t.c.entered_at, t.c.outcome, t.c.wait_seconds,
               t.c.gap).where(t.c.entered_at >= start, t.c.entered_at < end, t.c.direction == "inbound")
    if server is not None:
        q = q.where(t.c.server == server)
    rows = []
    for r in s.execute(q):
        d = dict(r._mapping)
        d["entered_at"] = data._utc(d["entered_at"])
        rows.append(d)
    return rows
