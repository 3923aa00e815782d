"""Agent performance and call outcomes, counted by the database (run on the database thread).

* Calls, talk time and answers within target per agent come from the period's queue
  calls (:func:`report_queries.period_calls`, the same calls every report counts).
* Login and pause time come from ``agent_sessions`` (:mod:`.agent_sessions`): each
  stretch clipped to the period (and to *now* while it lasts), summed per agent, kind
  and pause reason in SQL.
* Outcomes are what agents saved on their calls (``call_outcomes``), one per call
  (the latest), counted per outcome; an agent's outcomes are matched to the agent's
  interface through the user who saved them.

Handling time = talk + wrap-up (the queue's ``wrapuptime``, which app_queue keeps the
agent out of calls for after each call); occupancy = handling time ÷ (logged-in −
paused time).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import and_, func, literal, or_, select, text, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, Subquery

from callcenter.store.models import User
from callcenter.web.models import CallOutcome

from . import call_groups as call_group_defs
from . import rollup_figures, rollups, satisfaction
from .models import AgentSession, QueueCallGroupRollup, QueueCallGroupRollupBlock
from .report_queries import period_calls, utc


def _seconds(session: Session, a: ColumnElement, b: ColumnElement) -> ColumnElement:
    """``b - a`` in seconds (both timestamps)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", b - a)
    return (func.julianday(b) - func.julianday(a)) * 86400.0


def _greatest(session: Session, *xs) -> ColumnElement:
    return (func.greatest if session.get_bind().dialect.name == "postgresql" else func.max)(*xs)


def _least(session: Session, *xs) -> ColumnElement:
    return (func.least if session.get_bind().dialect.name == "postgresql" else func.min)(*xs)


def session_seconds(session: Session, since: dt.datetime, until: dt.datetime, now: dt.datetime,
                    agent: str | None = None) -> dict[str, dict[tuple[str, str], float]]:
    """``{interface: {(kind, reason): seconds}}`` of the stretches inside ``[since, until)``
    (an open stretch lasts until ``now``)."""
    s = AgentSession.__table__.c
    lo, hi = utc(since), utc(min(until, now))
    if hi <= lo:
        return {}
    end = func.coalesce(s.ended_at, literal(utc(now), s.started_at.type))
    start_c = _greatest(session, s.started_at, literal(lo, s.started_at.type))
    end_c = _least(session, end, literal(hi, s.started_at.type))
    q = (select(s.interface, s.kind, s.reason, func.sum(_seconds(session, start_c, end_c)).label("secs"))
         .where(s.started_at < hi, or_(s.ended_at.is_(None), s.ended_at > lo))
         .group_by(s.interface, s.kind, s.reason))
    if agent:
        q = q.where(s.interface == agent)
    out: dict[str, dict[tuple[str, str], float]] = {}
    for r in session.execute(q):
        out.setdefault(r.interface, {})[(r.kind, r.reason)] = max(0.0, float(r.secs or 0.0))
    return out


def _latest_outcomes(since: dt.datetime, until: dt.datetime, queue: str | None):
    """One row per call: the outcome saved last (saving twice is a correction, not two calls)."""
    o = CallOutcome.__table__.c
    last = (select(o.uniqueid, func.max(o.id).label("id"))
            .where(o.created_at >= utc(since), o.created_at < utc(until)).group_by(o.uniqueid))
    if queue:
        last = last.where(o.queue == queue)
    last = last.subquery("last")
    return select(o.id, o.agent, o.outcome).join(last, last.c.id == o.id).subquery("outcomes")


def _interface_users(session: Session) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, iface in session.execute(select(User.username, User.interface).where(User.interface != "")):
        out.setdefault(iface, []).append(name)
    return out


def outcome_counts(session: Session, since: dt.datetime, until: dt.datetime, *, queue: str | None = None,
                   agent: str | None = None) -> dict[str, int]:
    """``{outcome: calls}`` saved in the period (``agent``: an interface)."""
    src = _latest_outcomes(since, until, queue)
    q = select(src.c.outcome, func.count().label("n")).group_by(src.c.outcome)
    if agent:
        q = q.where(src.c.agent.in_(_interface_users(session).get(agent, [])))
    return {r.outcome: r.n for r in session.execute(q)}


def outcomes_by_user(session: Session, since: dt.datetime, until: dt.datetime,
                     queue: str | None = None) -> dict[str, int]:
    src = _latest_outcomes(since, until, queue)
    return {r.agent: r.n for r in session.execute(select(src.c.agent, func.count().label("n"))
                                                   .group_by(src.c.agent))}


CALL_GROUPS_INDEX = "ix_queue_calls_agents"  # what call_groups' source reads on SQLite


@dataclass(frozen=True, slots=True)
class CallGroup:
    """The period's calls of one (agent, queue): "" is no agent (not answered).

    ``answered`` .. ``name`` count the answered calls (:func:`report_queries.web_answered`);
    ``ratings`` the post-call ratings over all of them (:data:`satisfaction.COUNTS`)."""

    agent: str
    queue: str
    answered: int
    talk: float
    within: int
    name: str
    ratings: dict[str, int]


def _group_select(src: Subquery, target: float):
    """Per (agent, queue) of ``src``: the columns of :data:`call_groups.COLUMNS`."""
    c = src.c
    aggs = call_group_defs.aggregates(c, target)
    return select(c.agent, c.queue, *[aggs[k].label(k) for k in call_group_defs.COLUMNS]).group_by(c.agent, c.queue)


def _to_groups(rows) -> list[CallGroup]:
    out = []
    for r in rows:
        m = r._mapping
        out.append(CallGroup(m["agent"] or "", m["queue"] or "", int(m["answered"] or 0),
                             float(m["talk_seconds"] or 0.0), int(m["within_target"] or 0), m["agent_name"] or "",
                             {k: int(m[f"rating_{k}"] or 0) for k in satisfaction.COUNTS}))
    out.sort(key=lambda g: (g.agent, g.queue))
    return out


def call_groups(session: Session, src: Subquery, target: float) -> list[CallGroup]:
    """Counts per (agent, queue) of ``src`` (:func:`report_queries.period_calls`, on SQLite from
    :data:`CALL_GROUPS_INDEX`), counted from the calls: one agent's (the ``agent`` filter)
    or a few hours at a period's ends.  In (agent, queue) order.  A period of all agents
    reads the rollups instead (:func:`period_groups`).

    PostgreSQL: one GROUP BY (a hash aggregate).  SQLite has none: its GROUP BY sorts every
    call of the period, so it groups one agent at a time, each a range of the covering index
    ``ix_queue_calls_agents`` (direction, agent, entered_at, ...) sorted by queue alone in memory."""
    q = _group_select(src, target)
    if session.get_bind().dialect.name == "sqlite":
        return _to_groups(row for a in _agents(session) for row in session.execute(q.where(src.c.agent == a)))
    return _to_groups(session.execute(q))


def period_groups(session: Session, since: dt.datetime | None, until: dt.datetime | None, *, target: float,
                  short_abandon: float, queue: str | None = None, agent: str | None = None,
                  server: str | None = None) -> list[CallGroup]:
    """:func:`call_groups` of the period's calls, from the call-group rollups kept at write time
    (:mod:`.call_groups`): its whole 16-day blocks and whole UTC days from the rollup rows, the
    parts of a day at its ends from the calls, added up in one SELECT (a year of 80 agents in
    8 queues: about 15,000 block rows and a few thousand day rows, not 1,000,000 calls).  One
    agent's (``agent``): from that agent's calls (a small part of them)."""
    if agent:
        return call_groups(session, period_calls(since, until, queue, agent, server, index=CALL_GROUPS_INDEX), target)
    rollup_figures.ready(session, target, short_abandon)
    g, b = QueueCallGroupRollup.__table__.c, QueueCallGroupRollupBlock.__table__.c
    cols = call_group_defs.COLUMNS
    a, z, edges = rollup_figures.split(since, until, rollups.DAY)
    parts = []
    if a is None or z is None or a < z:
        ba, bz, ends = rollup_figures.whole_units(rollups.BLOCK, a, z)
        if ba is None or bz is None or ba < bz:
            parts.append(select(b.agent, b.queue, *[b[k] for k in cols])
                         .where(*rollup_figures.in_range(b.block, ba, bz), *rollup_figures.key_filters(b, queue, server)))
        for lo, hi in ends:
            parts.append(select(g.agent, g.queue, *[g[k] for k in cols])
                         .where(*rollup_figures.in_range(g.day, lo, hi), *rollup_figures.key_filters(g, queue, server)))
    ranges = [(lo, hi, False) for lo, hi in edges]  # less than a day each: a GROUP BY of a few thousand calls
    if since is None and until is None:  # an open period counts the calls without an entry time too
        ranges.append((None, None, True))
    for lo, hi, no_entry_time in ranges:
        src = period_calls(lo, hi, queue, None, server, index="ix_queue_calls_report")
        q = _group_select(src, target)
        parts.append(q.where(src.c.entered_at.is_(None)) if no_entry_time else q)
    if not parts:
        return []
    u = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery("parts")
    total = select(u.c.agent, u.c.queue, *[(func.max(u.c[k]) if k == "agent_name" else func.sum(u.c[k])).label(k)
                                           for k in cols]).group_by(u.c.agent, u.c.queue)
    return _to_groups(session.execute(total))


def _agents(session: Session) -> list[str]:
    """Every ``agent`` value stored ("" included): a skip scan over its index, one probe each."""
    sql = text("WITH RECURSIVE a(agent) AS (SELECT MIN(agent) FROM queue_calls UNION ALL "
               "SELECT (SELECT MIN(agent) FROM queue_calls WHERE agent > a.agent) FROM a "
               "WHERE a.agent IS NOT NULL) SELECT agent FROM a WHERE agent IS NOT NULL")
    return [r[0] for r in session.execute(sql)]


def agent_performance(session: Session, since: dt.datetime, until: dt.datetime, now: dt.datetime, *,
                      target: float, wrapup: Callable[[str], float], queue: str | None = None,
                      agent: str | None = None, server: str | None = None,
                      groups: list[CallGroup] | None = None) -> list[dict[str, Any]]:
    """One row per agent with calls or logged-in time in the period: answered calls, talk,
    handling time (talk + wrap-up), login, pause per reason, occupancy, outcomes saved.
    ``groups``: :func:`call_groups` of the same period and filters, when the caller has them."""
    if groups is None:
        groups = call_groups(session, period_calls(since, until, queue, agent, server, index=CALL_GROUPS_INDEX),
                             target)
    calls: dict[str, dict[str, float]] = {}
    seen_names: dict[str, str] = {}
    for g in groups:
        if not g.agent or not g.answered:
            continue
        a = calls.setdefault(g.agent, {"n": 0, "talk": 0.0, "wrap": 0.0, "within": 0})
        seen_names.setdefault(g.agent, g.name)
        a["n"] += g.answered
        a["talk"] += g.talk
        a["wrap"] += g.answered * float(wrapup(g.queue))
        a["within"] += g.within
    secs = session_seconds(session, since, until, now, agent)
    names = {**seen_names, **_names(session)}
    users = _interface_users(session)
    saved = outcomes_by_user(session, since, until, queue)
    rows = []
    for iface in sorted(set(calls) | set(secs)):
        a = calls.get(iface, {"n": 0, "talk": 0.0, "wrap": 0.0, "within": 0})
        ss = secs.get(iface, {})
        login = sum(v for (k, _), v in ss.items() if k == "login")
        pauses = {r: v for (k, r), v in ss.items() if k == "pause"}
        paused = sum(pauses.values())
        handling = a["talk"] + a["wrap"]
        ready = login - paused
        rows.append({
            "agent": iface, "name": names.get(iface, ""), "answered": a["n"],
            "answered_within_target": a["within"],
            "talk_seconds_total": round(a["talk"], 1),
            "aht_seconds": round(handling / a["n"], 1) if a["n"] else None,
            "login_seconds": round(login, 1) if iface in secs else None,
            "pause_seconds": round(paused, 1) if iface in secs else None,
            "pause_by_reason": {r: round(v, 1) for r, v in sorted(pauses.items())},
            "occupancy": round(min(1.0, handling / ready), 4) if iface in secs and ready > 0 else None,
            "outcomes": sum(saved.get(u, 0) for u in users.get(iface, [])),
        })
    return rows


def _names(session: Session) -> dict[str, str]:
    """interface -> the agent's display name (the user's, else the latest queue-member name)."""
    s = AgentSession.__table__.c
    out = {r.interface: r.agent_name for r in session.execute(
        select(s.interface, s.agent_name).where(s.agent_name != "").order_by(s.started_at))}
    for iface, name in session.execute(select(User.interface, User.display_name)
                                       .where(and_(User.interface != "", User.display_name != ""))):
        out[iface] = name
    return out
