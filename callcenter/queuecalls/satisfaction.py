"""Satisfaction figures from the post-call ratings stored on queue calls (:mod:`.ratings`).

Counted by the database over the calls a report counts (:func:`report_queries.period_calls`:
inbound, entered in the period), in the agents' one GROUP BY per agent and queue
(:func:`agent_queries.call_groups`), summed per agent and per queue here:

* ``offered``: calls that reached the rating (any ``rating_outcome``); a caller who hung up
  while still talking to the agent was never asked and is not counted;
* ``rated`` and, of those, ``satisfied`` / ``neutral`` / ``unsatisfied`` (the flow's scale);
* ``satisfaction_rate`` = satisfied / rated (None when nobody rated);
  ``response_rate`` = rated / offered.

Per agent (the agents report's columns) and per queue (the "satisfaction" report); the
wallboard keeps today's as running counters (:func:`counts_of`, ``web/satisfaction_today.py``).
"""
from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Iterable

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from .models import QueueCall

if TYPE_CHECKING:
    from .agent_queries import CallGroup

AGENT_COLUMNS = ("rated", "satisfaction_rate", "unsatisfied")
COUNTS = ("offered", "rated", "satisfied", "neutral", "unsatisfied", "no_input", "invalid", "hangup")


def _n(cond) -> Any:
    return func.sum(case((cond, 1), else_=0))


def aggregates(c) -> list:
    """The counts of :data:`COUNTS` over a call source's columns ``c`` (SQL, labelled by name)."""
    return [_n(c.rating_outcome != "").label("offered"), _n(c.rating_outcome == "rated").label("rated"),
            _n(c.rating_level == "satisfied").label("satisfied"),
            _n(c.rating_level == "neutral").label("neutral"),
            _n(c.rating_level == "unsatisfied").label("unsatisfied"),
            _n(c.rating_outcome == "no_input").label("no_input"),
            _n(c.rating_outcome == "invalid").label("invalid"),
            _n(c.rating_outcome == "hangup").label("hangup")]


def figures(m: Any) -> dict[str, Any]:
    """One group's counts (a mapping: a result row's ``_mapping``, or running counters) -> the
    figures the views show."""
    n = {k: int(m.get(k) or 0) for k in COUNTS}
    return {"ratings_offered": n["offered"], "rated": n["rated"], "satisfied": n["satisfied"],
            "neutral": n["neutral"], "unsatisfied": n["unsatisfied"], "no_rating": n["no_input"],
            "invalid_rating": n["invalid"], "hung_up_before_rating": n["hangup"],
            "satisfaction_rate": round(n["satisfied"] / n["rated"], 4) if n["rated"] else None,
            "response_rate": round(n["rated"] / n["offered"], 4) if n["offered"] else None}


def counts_of(outcome: str, level: str) -> dict[str, int]:
    """What one rated call adds to the counters of :func:`figures` (the SQL's definitions)."""
    return {"offered": int(outcome != ""), "rated": int(outcome == "rated"),
            "satisfied": int(level == "satisfied"), "neutral": int(level == "neutral"),
            "unsatisfied": int(level == "unsatisfied"), "no_input": int(outcome == "no_input"),
            "invalid": int(outcome == "invalid"), "hangup": int(outcome == "hangup")}


def _sum(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    out = dict.fromkeys(COUNTS, 0)
    for n in counts:
        for k in COUNTS:
            out[k] += n[k]
    return out


def with_agent_columns(rows: list[dict], groups: "Iterable[CallGroup]") -> list[dict]:
    """The agents report's rows plus :data:`AGENT_COLUMNS`, over each agent's calls in ``groups``
    (:func:`agent_queries.call_groups`, any outcome); an agent nobody rated: 0 / None / 0."""
    per_agent: dict[str, list[dict[str, int]]] = {}
    for g in groups:
        if g.agent:
            per_agent.setdefault(g.agent, []).append(g.ratings)
    figs = {a: figures(_sum(n)) for a, n in per_agent.items()}
    empty = {"rated": 0, "satisfaction_rate": None, "unsatisfied": 0}
    return [{**row, **{k: figs.get(row["agent"], empty)[k] for k in AGENT_COLUMNS}} for row in rows]


def queue_rows(groups: "Iterable[CallGroup]") -> list[dict]:
    """The "satisfaction" report: one row per queue that offered a rating, then all queues ("*")."""
    per_queue: dict[str, list[dict[str, int]]] = {}
    for g in groups:
        per_queue.setdefault(g.queue, []).append(g.ratings)
    counts = {q: _sum(n) for q, n in per_queue.items()}
    offered = sorted(q for q, n in counts.items() if n["offered"])
    rows = [{"queue": q, **figures(counts[q])} for q in offered]
    if len(rows) > 1:
        rows.append({"queue": "*", **figures(_sum(counts[q] for q in offered))})
    return rows


def day_calls(session: Session, start: dt.datetime, end: dt.datetime) -> list[tuple]:
    """The wallboard's load: (uniqueid, queue, leg, outcome, level) of today's rated inbound
    calls, entered in ``[start, end)`` (aware UTC bounds)."""
    t = QueueCall.__table__
    q = select(t.c.uniqueid, t.c.queue, t.c.leg, t.c.rating_outcome, t.c.rating_level).where(
        t.c.direction == "inbound", t.c.entered_at >= start, t.c.entered_at < end, t.c.rating_outcome != "")
    return [tuple(r) for r in session.execute(q)]
