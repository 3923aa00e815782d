"""The period reports' figures from the rollups (:mod:`.rollups`): cost grows with the days.

A period ``[since, until)`` is its whole 15-minute slots, read from ``queue_call_rollups``,
and the parts of a slot at either end, counted from the calls with the same definition
(:func:`.rollups.slot_counts`; a report of local days has none).  A slot maps to its local
hour, half hour and day by the zone's UTC offset at its start (the offsets of the period,
:func:`report_queries.offsets`, as integer SQL); every real zone changes offset on a quarter
hour, a zone that does not is refused (:class:`ZoneNotQuarterHours`).  The database sums
the counters per grouping set and concatenates the rows' sorted waits; the exact
nearest-rank p90 of each group is one ``numpy.partition`` of its waits (C, a few ms for a
million, so the web's event loop is not held up).

"By agent" reads ``queue_call_agent_rollups`` (UTC days) likewise.
"""
from __future__ import annotations

import datetime as dt
import math
from typing import Sequence
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import BigInteger, case, func, literal, literal_column, select, tuple_, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from . import report_queries as rq
from . import rollups, stats
from .models import QueueCall, QueueCallAgentRollup, QueueCallRollup
from .rollups import DAY, SLOT


class ZoneNotQuarterHours(ValueError):
    """The hospital's time zone has a UTC offset (or an offset change) in the period that is
    not whole quarter hours, so local hours are not whole rollup slots."""


def ready(session: Session, target: float, short_abandon: float) -> rollups.Settings:
    """Refuse rollups counted with other settings; recount what a writer left marked."""
    rollups.check_settings(session, target, short_abandon)
    rollups.settle(session)
    rollups.register_functions(session)
    return rollups.Settings(float(target), float(short_abandon))


def _epoch(d: dt.datetime) -> float:
    return rq.utc(d).timestamp()


def _ts(e: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(e, dt.timezone.utc)


def split(since: dt.datetime | None, until: dt.datetime | None,
          size: int) -> tuple[int | None, int | None, list[tuple[dt.datetime, dt.datetime]]]:
    """``[since, until)`` as whole ``size``-second slots ``[first, end)`` (None: open) and the
    partial ranges at its ends (UTC datetimes), to be counted from the calls."""
    a = None if since is None else math.ceil(_epoch(since) / size) * size
    b = None if until is None else math.floor(_epoch(until) / size) * size
    if a is not None and b is not None and a >= b:  # no whole slot: all of it from the calls
        return 0, 0, [(rq.utc(since), rq.utc(until))]
    edges = []
    if since is not None and _epoch(since) < a:
        edges.append((rq.utc(since), _ts(a)))
    if until is not None and b < _epoch(until):
        edges.append((_ts(b), rq.utc(until)))
    return a, b, edges


def _filters(c, queue: str | None, server: str | None) -> list[ColumnElement]:
    out = []
    if queue:
        out.append(c.queue == queue)
    if server is not None:
        out.append(c.server == server)
    return out


def slot_source(session: Session, st: rollups.Settings, since, until, queue: str | None, server: str | None):
    """The period's slot rows: ``queue, slot, <counters>, waits`` (rollups + partial slots)."""
    d = rollups.dialect_of(session)
    r = QueueCallRollup.__table__.c
    c = QueueCall.__table__.c
    probe = rollups.slot_counts(d, st, by_server=False)
    names = [col.name for col in probe.selected_columns][2:]  # the counters and waits
    a, b, edges = split(since, until, SLOT)
    whole = select(r.queue, r.slot, *[r[n] for n in names]).where(*_filters(r, queue, server))
    if a is not None:
        whole = whole.where(r.slot >= a)
    if b is not None:
        whole = whole.where(r.slot < b)
    parts = [whole] if a is None or b is None or a < b else []
    for lo, hi in edges:
        parts.append(rollups.slot_counts(d, st, by_server=False, where=[
            c.entered_at >= lo, c.entered_at < hi, *_filters(c, queue, server)]))
    if since is None and until is None:  # an open period counts the calls without an entry time too
        parts.append(rollups.slot_counts(d, st, by_server=False, where=[c.entered_at.is_(None),
                                                                         *_filters(c, queue, server)]))
    return (parts[0] if len(parts) == 1 else union_all(*parts)).subquery("slots")


def _span(session: Session, since, until) -> tuple[dt.datetime, dt.datetime] | None:
    """The UTC range the local-time mapping must cover (an open end: the stored slots')."""
    r = QueueCallRollup.__table__.c
    lo, hi = (rq.utc(since) if since else None), (rq.utc(until) if until else None)
    if lo is None or hi is None:
        first, last = session.execute(select(func.min(r.slot), func.max(r.slot))).one()
        if first is None:
            return (lo, hi) if lo and hi else None
        lo = lo or _ts(int(first))
        hi = hi or _ts(int(last) + SLOT)
    return lo, max(lo, hi)


def _lit(v: float) -> ColumnElement:
    return literal_column(str(int(v)), BigInteger)


def local_epoch(col: ColumnElement, tz: ZoneInfo, lo: dt.datetime, hi: dt.datetime) -> ColumnElement:
    """``slot`` + the zone's offset at it, as integer SQL (literals: PostgreSQL matches GROUP BY
    expressions by their text)."""
    spans = rq.offsets(tz, lo, hi)
    for i, (start, off) in enumerate(spans):
        if off % SLOT or (i and int(start.timestamp()) % SLOT):
            raise ZoneNotQuarterHours(f"time zone {tz.key}: UTC offset {off:+d} s from {start.isoformat()} is not "
                                      "whole quarter hours; the rollups cannot split its local hours")
    lit = _lit
    if len(spans) == 1:
        return col + lit(spans[0][1])
    return col + case(*[(col < lit(start.timestamp()), lit(prev))
                        for (start, _), (_, prev) in zip(spans[1:], spans)], else_=lit(spans[-1][1]))


def _grouped(session: Session, src, keys: dict[str, ColumnElement], sets: Sequence[tuple[str, ...]],
             sums: list[str]) -> dict[tuple[str, ...], dict[tuple, rq.Group]]:
    """Counters summed, max of ``max_wait`` and the waits concatenated, per grouping set."""
    d = rollups.dialect_of(session)
    c = src.c
    names = list(keys)
    aggs = {k: (func.max(c[k]) if k == "max_wait" else func.sum(c[k])) for k in sums}
    out: dict[tuple[str, ...], dict[tuple, rq.Group]] = {s_: {} for s_ in sets}
    if d == "postgresql":
        q = select(*[keys[k].label(k) for k in names], *[v.label(k) for k, v in aggs.items()],
                   rollups.concat(d, c.waits).label("waits")).select_from(src)
        if names:
            q = q.add_columns(func.grouping(*[keys[k] for k in names]).label("gid"))
            q = q.group_by(func.grouping_sets(*[tuple_(*[keys[k] for k in s_]) for s_ in sets]))
        for m in session.execute(q).mappings():
            s_ = rq._set_of(m["gid"], names, sets) if names else sets[0]
            _put(out[s_], tuple(m[n] for n in s_), m, sums)
        return out
    fine = select(*[keys[k].label(k) for k in names], *[v.label(k) for k, v in aggs.items()],
                  rollups.concat(d, c.waits).label("waits")).select_from(src)
    if names:
        fine = fine.group_by(*[literal_column(k) for k in names])
    f = fine.cte("fine").prefix_with("MATERIALIZED")
    parts = []
    for n, s_ in enumerate(sets):
        part = select(literal(n).label("set_no"), *[(f.c[k] if k in s_ else literal(None)).label(k) for k in names],
                      *[(func.max(f.c[k]) if k == "max_wait" else func.sum(f.c[k])).label(k) for k in sums],
                      rollups.concat(d, f.c.waits).label("waits"))
        if s_:
            part = part.group_by(*[f.c[k] for k in s_])
        parts.append(part)
    for m in session.execute(union_all(*parts)).mappings():
        s_ = sets[m["set_no"]]
        _put(out[s_], tuple(m[n] for n in s_), m, sums)
    return out


def p90(waits: bytes | None) -> float | None:
    """Nearest-rank 90th percentile (``stats.percentile``) of packed waits, exactly."""
    n = len(waits or b"") // 8
    if not n:
        return None
    a = np.frombuffer(waits, dtype=">f8").astype(np.float64)
    k = max(1, math.ceil(90 / 100 * n))
    return float(np.partition(a, k - 1)[k - 1])


def _put(groups: dict[tuple, rq.Group], key: tuple, m, sums: list[str]) -> None:
    if None in key:  # calls without an entry time have no hour or day
        return
    # PostgreSQL sums integers to numeric: back to int (and the seconds to float)
    t = stats.Totals(**{k: int(m[k] or 0) for k in rq.COUNTERS if k != "answered_wait"},
                     answered_wait=float(m["answered_wait"] or 0.0))
    g = rq.Group(totals=t, max_wait=m["max_wait"], p90_wait=p90(m["waits"]))
    if "calls" in sums:
        g.calls, g.talk_sum, g.talk_n = int(m["calls"] or 0), float(m["talk_sum"] or 0.0), int(m["talk_n"] or 0)
        g.dist = [[int(m[f"a{i}"] or 0), int(m[f"b{i}"] or 0)] for i in range(len(rq.BUCKETS))]
    groups[key] = g


def _day(n: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=int(n))).isoformat()


SUMS = list(rq.COUNTERS) + ["max_wait"] + list(rq.EXTRAS)


def period_figures(session: Session, since, until, tz: ZoneInfo, *, target: float, short_abandon: float,
                   queue: str | None, server: str | None, parts: Sequence[str]) -> rq.PeriodFigures:
    """:func:`report_queries.period_figures` (no agent filter) from the rollups."""
    st = ready(session, target, short_abandon)
    src = slot_source(session, st, since, until, queue, server)
    span = _span(session, since, until)
    keys: dict[str, ColumnElement] = {}
    if span is not None:
        local = local_epoch(src.c.slot, tz, *span)
        keys = {k: v for k, v in (("queue", src.c.queue), ("hour", (local % _lit(DAY)) // _lit(3600)),
                                  ("day", local // _lit(DAY))) if k in parts}
    else:
        keys = {"queue": src.c.queue} if "queue" in parts else {}
    sets = [(k,) if k != "whole" else () for k in rq.PARTS if k in parts and (k == "whole" or k in keys)]
    g = _grouped(session, src, keys, sets, SUMS) if sets else {}
    whole = g.get((), {}).get(()) or rq.Group()
    return rq.PeriodFigures(whole, {k[0]: v for k, v in g.get(("queue",), {}).items()},
                            {int(k[0]): v for k, v in g.get(("hour",), {}).items()},
                            {_day(k[0]): v for k, v in g.get(("day",), {}).items()})


def by_half_hour(session: Session, since, until, tz: ZoneInfo, *, target: float, short_abandon: float,
                 queue: str | None, server: str | None) -> dict[int, rq.Group]:
    """:func:`report_queries.by_half_hour` (no agent filter) from the rollups."""
    st = ready(session, target, short_abandon)
    src = slot_source(session, st, since, until, queue, server)
    span = _span(session, since, until)
    if span is None:
        return {}
    half = (local_epoch(src.c.slot, tz, *span) % _lit(DAY)) // _lit(1800)
    g = _grouped(session, src, {"slot": half}, [("slot",)], SUMS)
    return {int(k[0]): v for k, v in g[("slot",)].items()}


def by_agent(session: Session, since, until, *, target: float, short_abandon: float, queue: str | None,
             server: str | None) -> dict[str, rq.Group]:
    """Answered calls per agent (``report_queries.by_agent``) from the agent-day rollups."""
    st = ready(session, target, short_abandon)
    d = rollups.dialect_of(session)
    r = QueueCallAgentRollup.__table__.c
    c = QueueCall.__table__.c
    probe = rollups.agent_counts(d, st, by_server=False)
    names = [col.name for col in probe.selected_columns][3:]
    a, b, edges = split(since, until, DAY)
    whole = select(r.queue, r.agent, r.day, *[r[n] for n in names]).where(*_filters(r, queue, server))
    if a is not None:
        whole = whole.where(r.day >= a)
    if b is not None:
        whole = whole.where(r.day < b)
    parts = [whole] if a is None or b is None or a < b else []
    for lo, hi in edges:
        parts.append(rollups.agent_counts(d, st, by_server=False, where=[
            c.entered_at >= lo, c.entered_at < hi, *_filters(c, queue, server)]))
    if since is None and until is None:
        parts.append(rollups.agent_counts(d, st, by_server=False, where=[c.entered_at.is_(None),
                                                                          *_filters(c, queue, server)]))
    src = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery("agent_days")
    g = _grouped(session, src, {"agent": src.c.agent}, [("agent",)], list(rq.COUNTERS) + ["max_wait"])
    return {k[0]: v for k, v in g[("agent",)].items()}


