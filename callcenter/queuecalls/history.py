"""Half-hour history of queue calls for the forecast: one SQL GROUP BY (never every call in Python).

Buckets are UTC half hours (epoch // 1800), turned into the hospital's local
day and slot afterwards; that is exact for every timezone whose offset is a
whole number of half hours (checked: another zone is an error naming it).
Offered = calls with a known outcome minus short abandons (:mod:`.stats`).
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, case, cast, distinct, func, select

from ..forecast import SLOT_SECONDS, Interval
from .report_queries import period_calls
from .stats import ANSWERED, UNANSWERED


def inbound_calls(since: dt.datetime, until: dt.datetime, queue: str | None = None):
    """The calls that count for service level, forecast and staffing: the reports' own period
    query (``report_queries.period_calls``: inbound only, the one place that says so)."""
    return period_calls(since, until, queue, index="ix_queue_calls_report")  # covering: no row is read


def _bucket(dialect: str, entered_at):
    if dialect == "sqlite":
        return cast(func.strftime("%s", entered_at), Integer) // SLOT_SECONDS  # integer division
    return func.floor(func.extract("epoch", entered_at) / SLOT_SECONDS)


def half_hours(session, since: dt.datetime, until: dt.datetime, tz: ZoneInfo, *,
               short_abandon: float, queue: str | None = None) -> list[Interval]:
    """Per queue and local half hour in [since, until): offered, answered, talk time, agents seen."""
    c = inbound_calls(since, until, queue).c
    answered = c.outcome.in_(ANSWERED)
    talked = and_(answered, c.talk_seconds.is_not(None))
    known = c.outcome.in_(ANSWERED + UNANSWERED)
    short = and_(c.outcome == "abandoned", c.wait_seconds < short_abandon)
    bucket = _bucket(session.get_bind().dialect.name, c.entered_at).label("bucket")
    q = (select(c.queue, bucket,
                func.sum(case((known, 1), else_=0)) - func.sum(case((short, 1), else_=0)),
                func.sum(case((answered, 1), else_=0)),
                func.sum(case((talked, c.talk_seconds), else_=0.0)),
                func.sum(case((talked, 1), else_=0)),
                func.count(distinct(case((and_(answered, c.agent != ""), c.agent)))))
         .group_by(c.queue, bucket))
    out = []
    for queue, b, offered, ans, talk, n_talk, agents in session.execute(q):
        local = dt.datetime.fromtimestamp(int(b) * SLOT_SECONDS, tz)
        if local.minute % 30 or local.second:
            raise ValueError(f"[hospital] timezone {tz.key}: offset is not whole half hours; "
                             "half-hour forecasts need one that is")
        out.append(Interval(queue, local.date(), local.hour * 2 + local.minute // 30, int(offered or 0),
                            int(ans or 0), float(talk or 0.0), int(n_talk or 0), int(agents or 0)))
    return out
