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

from sqlalchemy import and_, case, func, literal, or_, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, Subquery

from callcenter.store.models import User
from callcenter.web.models import CallOutcome

from . import satisfaction
from .models import AgentSession
from .report_queries import _n, period_calls, utc, web_answered


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


def call_groups(session: Session, src: Subquery, target: float) -> list[CallGroup]:
    """Counts per (agent, queue) of ``src`` (:func:`report_queries.period_calls`, on SQLite from
    :data:`CALL_GROUPS_INDEX`), which the agents
    report and both satisfaction views are summed from: one read of the period's calls instead
    of one per view.  In (agent, queue) order.

    PostgreSQL: one GROUP BY (a hash aggregate).  SQLite has none: its GROUP BY sorts every
    call of the period (4-8 s for a year of 1,000,000), so it groups one agent at a time, each a
    range of the covering index ``ix_queue_calls_agents`` (direction, agent, entered_at, ...)
    sorted by queue alone in memory: a year in about 1 s, a week in 20 ms."""
    c = src.c
    answered = web_answered(c)
    q = (select(c.agent, c.queue, _n(answered).label("n"),
                func.sum(case((answered, func.coalesce(c.talk_seconds, 0.0)), else_=0.0)).label("talk"),
                _n(and_(answered, func.coalesce(c.wait_seconds, 0.0) <= target)).label("within"),
                func.max(case((answered, c.agent_name))).label("name"), *satisfaction.aggregates(c))
         .group_by(c.agent, c.queue))
    if session.get_bind().dialect.name == "sqlite":
        results = [row for a in _agents(session) for row in session.execute(q.where(c.agent == a))]
    else:
        results = list(session.execute(q))
    out = []
    for r in results:
        m = r._mapping
        out.append(CallGroup(r.agent or "", r.queue or "", int(r.n or 0), float(r.talk or 0.0), int(r.within or 0),
                             r.name or "", {k: int(m[k] or 0) for k in satisfaction.COUNTS}))
    out.sort(key=lambda g: (g.agent, g.queue))
    return out


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
