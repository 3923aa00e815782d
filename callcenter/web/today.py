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

A call counts as answered *when it is answered* (the tracker's ``answered`` fact, or a
call being talked at load time), not when it ends: three agents talking show three
answered calls.  The finished record then replaces that contribution under the same
merge rule (usually equal: same wait, same outcome).  Per half hour of the local day
(by ``entered_at``, as the interval report) the same counters give the wallboard's
charts; per agent (interface) the answered calls of the day.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from callcenter.queuecalls import stats
from callcenter.queuecalls.store import replaces

SLOT = 1800.0  # half an hour

from . import data

Key = tuple[str, str, int]


@dataclass(slots=True, frozen=True)
class Contribution:
    """What one call adds to the figures (the columns ``stats.Totals`` counts)."""

    queue: str
    outcome: str
    wait: float | None
    gap: bool
    agent: str = ""   # the member interface that answered (answered/transferred calls)


class TodayFigures:
    """Running figures for calls that entered in ``[start, end)`` (epoch seconds)."""

    def __init__(self, start: float, end: float, target: float, short_abandon: float):
        self.start, self.end = start, end
        self.target, self.short_abandon = target, short_abandon
        self.calls: dict[Key, Contribution] = {}
        self.totals: dict[str, stats.Totals] = {}
        self.slots: dict[int, stats.Totals] = {}   # half hours since ``start``, all queues
        self.by_agent: dict[str, int] = {}         # interface -> answered calls
        self._slot_of: dict[Key, int] = {}

    def apply(self, key: Key, entered: float | None, c: Contribution) -> bool:
        """Count one call (again): returns whether the figures changed."""
        if entered is None or not (self.start <= entered < self.end):
            return False
        old = self.calls.get(key)
        if old is not None:
            if old == c or not replaces({"outcome": c.outcome, "gap": c.gap},
                                         {"outcome": old.outcome, "gap": old.gap}):
                return False
            self._add(old, self._slot_of[key], -1)
        slot = int((entered - self.start) // SLOT)
        self.calls[key], self._slot_of[key] = c, slot
        self._add(c, slot, 1)
        return True

    def apply_record(self, rec: Any) -> bool:
        """A ``QueueCallRecord`` (the tracker's ``finished`` fact or its unwritten buffer);
        dialer (outbound) calls are not hotline traffic and are left out."""
        if rec.direction != "inbound":
            return False
        return self.apply((rec.uniqueid, rec.queue, int(rec.leg or 1)), rec.entered_at,
                          Contribution(rec.queue, rec.outcome, rec.wait_seconds, bool(rec.gap), rec.agent or ""))

    def apply_answered(self, call: Any) -> bool:
        """A call an agent has just taken (the tracker's ``LiveCall``, or a ``talking`` entry
        of its live view): answered now, with the wait it had."""
        if isinstance(call, dict):
            direction, uid, queue, leg = call["direction"], call["uniqueid"], call["queue"], call["leg"]
            entered, answered, agent, gap = call["entered_at"], call["since"], call["agent"], call["uncertain"]
        else:
            direction, uid, queue, leg = call.direction, call.uniqueid, call.queue, call.leg
            entered, answered, agent, gap = call.entered_at, call.answered_at, call.agent, call.uncertain
        if direction != "inbound" or answered is None:
            return False
        wait = max(0.0, answered - entered) if entered is not None else None
        return self.apply((uid, queue, int(leg or 1)), entered,
                          Contribution(queue, "answered", wait, bool(gap), agent or ""))

    def apply_row(self, row: dict) -> bool:
        """A stored row from :func:`load_rows`."""
        entered = row["entered_at"]
        return self.apply((row["uniqueid"], row["queue"], int(row["leg"] or 1)),
                          entered.timestamp() if entered is not None else None,
                          Contribution(row["queue"], row["outcome"], row["wait_seconds"], bool(row["gap"]),
                                       row["agent"] or ""))

    def _add(self, c: Contribution, slot: int, sign: int) -> None:
        for q in (c.queue, ""):
            t = self.totals.get(q)
            if t is None:
                t = self.totals[q] = stats.Totals()
            t.add(c.outcome, c.wait, c.gap, self.target, self.short_abandon, sign)
        t = self.slots.get(slot)
        if t is None:
            t = self.slots[slot] = stats.Totals()
        t.count(c.outcome, c.wait, c.gap, self.target, self.short_abandon, sign)
        if c.agent and c.outcome in stats.ANSWERED:
            self.by_agent[c.agent] = self.by_agent.get(c.agent, 0) + sign

    def summaries(self) -> dict[str, dict]:
        """queue -> ``stats.summarize``-style dict, plus ``""`` for all queues (when any call)."""
        return {q: t.summary(self.target, self.short_abandon) for q, t in self.totals.items()}

    def half_hours(self, now: float, tz: ZoneInfo, first_hour: int = 8) -> list[dict]:
        """All queues per half hour of the day, from ``first_hour`` (or the first call, if
        earlier) to the half hour of ``now``: label ``08:00–08:30`` in local time, offered,
        answered, abandoned and the service level (None without offered calls).  Slots are
        counted from the local midnight, so a daylight-saving day has its real 46 or 50."""
        last = int((min(max(now, self.start), self.end - 1) - self.start) // SLOT)
        opening = dt.datetime.fromtimestamp(self.start, tz).replace(hour=first_hour)
        first = min([int((opening.timestamp() - self.start) // SLOT), *self.slots], default=0)
        out = []
        for i in range(max(0, min(first, last)), last + 1):
            t = self.slots.get(i) or stats.Totals()
            f = stats.figures(t.answered, t.abandoned, t.short, t.timeouts, t.redirected, t.within,
                              t.unans_within, t.gaps, t.answered_wait, None, None, self.target,
                              self.short_abandon)
            a, b = self.start + i * SLOT, self.start + (i + 1) * SLOT
            label = (f"{dt.datetime.fromtimestamp(a, tz):%H:%M}–"
                     f"{dt.datetime.fromtimestamp(b, tz):%H:%M}")
            out.append({"slot": label, "start": a, "offered": f["offered"], "answered": f["answered"],
                        "abandoned": f["abandoned"], "service_level": f["service_level"]})
        return out


def load_rows(s, start: dt.datetime, end: dt.datetime, server: str | None = None) -> list[dict] | None:
    """The stored calls of one day (of one Asterisk ``server``, or all), in one SELECT (None
    when the queue_calls table is unknown)."""
    t = data._table("queue_calls")
    if t is None:
        return None
    q = select(t.c.uniqueid, t.c.queue, t.c.leg, t.c.entered_at, t.c.outcome, t.c.wait_seconds,
               t.c.gap, t.c.agent).where(t.c.entered_at >= start, t.c.entered_at < end, t.c.direction == "inbound")
    if server is not None:
        q = q.where(t.c.server == server)
    rows = []
    for r in s.execute(q):
        d = dict(r._mapping)
        d["entered_at"] = data._utc(d["entered_at"])
        rows.append(d)
    return rows
