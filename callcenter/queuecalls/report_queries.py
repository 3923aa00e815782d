"""Report figures computed by the database: one GROUP BY over the period's calls.

Reports used to load every call as a dict and aggregate in Python (29 s and 1.9 GB
for a million calls).  Here the database does the counting and the answer-time
summary is filled from the counters by :func:`stats.figures`, so a report moves a
few thousand group rows, not the calls:

* :func:`period_calls` is the one place that says which calls a report counts
  (inbound, entered in ``[since, until)``, optionally one queue); every query here reads it.
* :func:`grouped` counts per (queue, local day, local hour), per agent, ... with the
  definitions of :mod:`.stats`.  The 90th percentile is nearest rank (``stats.percentile``):
  PostgreSQL ``percentile_disc(0.9)`` over ``GROUPING SETS``; SQLite has no ordered-set
  aggregate, so each fine group hands back its waits (``group_concat``, exact to the
  bit) and an aggregate registered on the connection takes the percentile per set.
* Local hours and days are the hospital's: ``AT TIME ZONE`` on PostgreSQL; on SQLite
  (UTC text) a shift by the zone's UTC offset, a CASE over the offset changes in the
  period, so DST days are right too.

Every function takes a session and runs where the caller runs it (``db.run`` in the
web: a worker thread, never the event loop).
"""
from __future__ import annotations

import array
import datetime as dt
import math
import struct
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, case, cast, func, literal, literal_column, not_, or_, select, tuple_, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, Subquery

from . import stats
from .models import QueueCall

KNOWN = stats.ANSWERED + stats.UNANSWERED
BUCKETS = (0, 10, 20, 30, 45, 60, 90, 120, 180)  # answer-time distribution, seconds [lo, hi)


def utc(d: dt.datetime | None) -> dt.datetime | None:
    """Aware -> UTC (SQLite compares the stored UTC text, so a local bound would be hours off)."""
    if d is None:
        return None
    return d.replace(tzinfo=dt.timezone.utc) if d.tzinfo is None else d.astimezone(dt.timezone.utc)


def period_calls(since: dt.datetime | None, until: dt.datetime | None,
                 queue: str | None = None, agent: str | None = None, server: str | None = None,
                 *, index: str | None = None) -> Subquery:
    """The calls a report counts: inbound (a dialer patient queued for an agent is an
    outbound call, with its own figures: ``dialer.outbound``), entered in ``[since, until)``
    (aware), optionally one queue, one agent (interface: the calls that agent took) and one
    Asterisk server (else all: the total).  ``index``: the index SQLite reads them from
    (``INDEXED BY``, migration 0999b_report_indexes); PostgreSQL plans by itself."""
    t = QueueCall.__table__
    q = select(t.c.id, t.c.queue, t.c.agent, t.c.agent_name, t.c.caller_number, t.c.entered_at,
               t.c.answered_at, t.c.wait_seconds, t.c.talk_seconds, t.c.outcome, t.c.gap,
               t.c.rating_outcome, t.c.rating_level).where(t.c.direction == "inbound")
    if since is not None:
        q = q.where(t.c.entered_at >= utc(since))
    if until is not None:
        q = q.where(t.c.entered_at < utc(until))
    if queue:
        q = q.where(t.c.queue == queue)
    if server is not None:
        q = q.where(t.c.server == server)
    if agent:
        q = q.where(t.c.agent == agent)
    if index is not None:
        q = q.with_hint(t, f"INDEXED BY {index}", "sqlite")
    return q.subquery("calls")


# --- local time ---------------------------------------------------------------------------------

def offsets(tz: ZoneInfo, lo: dt.datetime, hi: dt.datetime) -> list[tuple[dt.datetime, int]]:
    """``[(from_utc, utc_offset_seconds), ...]`` covering ``[lo, hi]``: the first from ``lo``."""
    def off(t: dt.datetime) -> int:
        return int(t.astimezone(tz).utcoffset().total_seconds())

    out = [(lo, off(lo))]
    day = dt.timedelta(days=1)
    t = lo
    while t < hi:
        nxt = min(t + day, hi)
        if off(nxt) != out[-1][1]:
            a, b = t, nxt  # the change is in (a, b]: halve to the minute
            while b - a > dt.timedelta(minutes=1):
                mid = a + (b - a) / 2
                a, b = (mid, b) if off(mid) == out[-1][1] else (a, mid)
            b = b.replace(second=0, microsecond=0)
            while off(b) == out[-1][1]:
                b += dt.timedelta(minutes=1)
            out.append((b, off(b)))
        t = nxt
    return out


def _sqlite_local(col: ColumnElement, tz: ZoneInfo, lo: dt.datetime, hi: dt.datetime) -> ColumnElement:
    """``datetime(entered_at, '+N seconds')``: local wall time as text."""
    spans = offsets(tz, lo, hi)
    if len(spans) == 1:
        mod: Any = literal(f"{spans[0][1]:+d} seconds")
    else:
        mod = case(*[(col < literal(start, col.type), f"{prev:+d} seconds")
                     for (start, _), (_, prev) in zip(spans[1:], spans)],
                   else_=f"{spans[-1][1]:+d} seconds")
    return func.datetime(col, mod)


def local_hour_day(session: Session, src: Subquery, tz: ZoneInfo, since: dt.datetime | None,
                   until: dt.datetime | None) -> tuple[ColumnElement, ColumnElement]:
    """(local hour 0-23, local date 'YYYY-MM-DD') of ``entered_at`` as SQL expressions."""
    col = src.c.entered_at
    if session.get_bind().dialect.name == "postgresql":
        # literals, not parameters: PostgreSQL matches GROUP BY expressions to the SELECT's
        # by text, and two bound copies of the zone name would not match
        zone = literal_column("'" + tz.key.replace("'", "''") + "'")
        local = func.timezone(zone, col)
        return cast(func.extract("hour", local), Integer), func.to_char(local, literal_column("'YYYY-MM-DD'"))
    t = QueueCall.__table__
    lo = utc(since) or _as_dt(session.execute(select(func.min(t.c.entered_at))).scalar())
    hi = utc(until) or _as_dt(session.execute(select(func.max(t.c.entered_at))).scalar())
    lo = utc(lo) or dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    hi = max(utc(hi) or lo, lo)
    local = _sqlite_local(col, tz, lo, hi)
    return cast(func.substr(local, 12, 2), Integer), func.substr(local, 1, 10)


def local_slot(session: Session, src: Subquery, tz: ZoneInfo, since: dt.datetime | None,
               until: dt.datetime | None) -> ColumnElement:
    """The local half hour of the day of ``entered_at`` (0 = 00:00-00:30 ... 47) as SQL."""
    col = src.c.entered_at
    if session.get_bind().dialect.name == "postgresql":
        zone = literal_column("'" + tz.key.replace("'", "''") + "'")
        local = func.timezone(zone, col)
        return (cast(func.extract("hour", local), Integer) * 2
                + case((func.extract("minute", local) >= 30, 1), else_=0))
    hour, _ = local_hour_day(session, src, tz, since, until)
    t = QueueCall.__table__
    lo = utc(since) or _as_dt(session.execute(select(func.min(t.c.entered_at))).scalar())
    hi = utc(until) or _as_dt(session.execute(select(func.max(t.c.entered_at))).scalar())
    lo = utc(lo) or dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    local = _sqlite_local(col, tz, lo, max(utc(hi) or lo, lo))
    return hour * 2 + case((cast(func.substr(local, 15, 2), Integer) >= 30, 1), else_=0)


def _as_dt(v: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(v) if isinstance(v, str) else v


# --- grouped counters ---------------------------------------------------------------------------

class _P90:
    """SQLite aggregate over fine groups' waits (``group_concat`` text): their nearest-rank p90."""

    __slots__ = ("a",)

    def __init__(self) -> None:
        self.a = array.array("d")

    def step(self, packed: str | None) -> None:
        if packed:
            self.a.extend(map(float, packed.split(",")))

    def finalize(self) -> float | None:
        n = len(self.a)
        if not n:
            return None
        # sorted in runs, so no single C call holds the GIL (and the web's event loop) for long
        runs = [sorted(self.a[i:i + RUN]) for i in range(0, n, RUN)]
        return kth_smallest(runs, max(1, math.ceil(90 / 100 * n)))  # stats.percentile's rank


RUN = 32768


def _key(x: float) -> int:
    """A float's bits as an integer in the floats' order (negative values flipped)."""
    (i,) = struct.unpack(">Q", struct.pack(">d", x))
    return (i ^ 0xFFFFFFFFFFFFFFFF) if i >> 63 else (i | 1 << 63)


def _float(k: int) -> float:
    i = (k & ~(1 << 63)) if k >> 63 else (k ^ 0xFFFFFFFFFFFFFFFF)
    return struct.unpack(">d", struct.pack(">Q", i))[0]


def kth_smallest(runs: list[list[float]], k: int) -> float:
    """The ``k``-th smallest (1-based) of several ascending runs, exactly: a bisection over the
    floats' bit patterns, counting with ``bisect`` in each run (64 steps, no merge)."""
    lo = min(_key(r[0]) for r in runs if r)
    hi = max(_key(r[-1]) for r in runs if r)
    while lo < hi:
        mid = (lo + hi) // 2
        x = _float(mid)
        if sum(bisect_right(r, x) for r in runs) >= k:
            hi = mid
        else:
            lo = mid + 1
    return _float(lo)


def _packed(known: ColumnElement, w: ColumnElement) -> ColumnElement:
    """A group's waits as text, in C: ``%!.17g`` (17 digits) reads back as the very same double."""
    return func.group_concat(case((and_(known, w.is_not(None)), func.printf("%!.17g", w))))


def _register_aggregates(session: Session) -> None:
    conn = session.connection().connection.driver_connection
    conn.create_aggregate("cc_p90", 1, _P90)


def _n(cond: ColumnElement) -> ColumnElement:
    return func.sum(case((cond, 1), else_=0))


def web_answered(c) -> ColumnElement:
    """The reports' "answered" (charts, agents): answered/transferred, or bridged and not abandoned."""
    return or_(c.outcome.in_(stats.ANSWERED),
               and_(c.answered_at.is_not(None), not_(c.outcome.in_(("abandoned", "timeout")))))


def web_abandoned(c) -> ColumnElement:
    """Abandoned or timed out: the partial index ``ix_queue_calls_abandoned``'s condition, as
    literals (SQLite uses a partial index only for the very same terms, not bound values)."""
    return c.outcome.in_([literal_column("'abandoned'"), literal_column("'timeout'")])


def _bucket(c) -> ColumnElement:
    w = func.coalesce(c.wait_seconds, 0.0)
    return case(*[(w >= lo, i) for i, lo in reversed(list(enumerate(BUCKETS))) if i], else_=0)


@dataclass(slots=True)
class Group:
    """One group's counters (``stats.Totals``) plus the extras the web's reports show."""

    totals: stats.Totals = field(default_factory=stats.Totals)
    max_wait: float | None = None
    p90_wait: float | None = None
    calls: int = 0                                       # every call, any outcome
    talk_sum: float = 0.0                                # answered (web) calls with talk > 0
    talk_n: int = 0
    dist: list[list[int]] = field(default_factory=lambda: [[0, 0] for _ in BUCKETS])

    def summary(self, target: float, short_abandon: float) -> dict[str, Any]:
        t = self.totals
        return stats.figures(t.answered, t.abandoned, t.short, t.timeouts, t.redirected, t.within,
                             t.unans_within, t.gaps, t.answered_wait if t.answered else 0.0,
                             self.max_wait, self.p90_wait, target, short_abandon)


COUNTERS = ("answered", "abandoned", "short", "timeouts", "redirected", "within", "unans_within", "gaps",
            "answered_wait")
EXTRAS = ("calls", "talk_sum", "talk_n") + tuple(f"{x}{i}" for i in range(len(BUCKETS)) for x in "ab")


def _aggregates(c, target: float, short_abandon: float, extras: bool) -> dict[str, ColumnElement]:
    """The per-call aggregates of a group, by name (sums, except ``max_wait``)."""
    known = c.outcome.in_(KNOWN)
    ans = c.outcome.in_(stats.ANSWERED)
    w = c.wait_seconds
    out = {
        "answered": _n(ans),
        "abandoned": _n(c.outcome == "abandoned"),
        "short": _n(and_(c.outcome == "abandoned", w < short_abandon)),
        "timeouts": _n(c.outcome == "timeout"),
        "redirected": _n(c.outcome == "redirected"),
        "within": _n(and_(ans, w <= target)),
        "unans_within": _n(and_(c.outcome.in_(stats.UNANSWERED), w <= target)),
        "gaps": _n(c.gap.is_(True)),
        "answered_wait": func.sum(case((ans, func.coalesce(w, 0.0)), else_=0.0)),
        "max_wait": func.max(case((known, w))),
    }
    if extras:
        wa, wb, b = web_answered(c), web_abandoned(c), _bucket(c)
        talked = and_(wa, c.talk_seconds.is_not(None), c.talk_seconds != 0)
        out.update(calls=func.count(), talk_sum=func.sum(case((talked, c.talk_seconds), else_=0.0)),
                   talk_n=_n(talked))
        for i in range(len(BUCKETS)):
            out[f"a{i}"] = _n(and_(b == i, wa))
            out[f"b{i}"] = _n(and_(b == i, not_(wa), wb))
    return out


def grouped(session: Session, src: Subquery, keys: dict[str, ColumnElement],
            sets: Sequence[tuple[str, ...]], *, target: float, short_abandon: float,
            where: ColumnElement | None = None, extras: bool = False) -> dict[tuple[str, ...], dict[tuple, Group]]:
    """Counters per grouping set: ``{set: {key values: Group}}`` (``()`` is the whole period).

    ``keys`` names the SQL expressions the sets are made of; ``extras`` adds what the
    web's reports need besides the summary (all calls, talk time, the wait histogram).
    One scan of the calls either way: PostgreSQL groups by ``GROUPING SETS``; SQLite
    groups by all keys at once (a materialized CTE) and sums that small table per set.
    """
    c = src.c
    known = c.outcome.in_(KNOWN)
    aggs = _aggregates(c, target, short_abandon, extras)
    names = list(keys)
    out: dict[tuple[str, ...], dict[tuple, Group]] = {s_: {} for s_ in sets}
    if session.get_bind().dialect.name == "postgresql":
        w = c.wait_seconds
        q = select(*[keys[k].label(k) for k in names], *[v.label(k) for k, v in aggs.items()],
                   func.percentile_disc(0.9).within_group(w).filter(and_(known, w.is_not(None))).label("p90"))
        q = q.select_from(src)
        if names:
            q = q.add_columns(func.grouping(*[keys[k] for k in names]).label("gid"))
            q = q.group_by(func.grouping_sets(*[tuple_(*[keys[k] for k in s_]) for s_ in sets]))
        if where is not None:
            q = q.where(where)
        for m in session.execute(q).mappings():
            s_ = _set_of(m["gid"], names, sets) if names else sets[0]
            _put(out[s_], tuple(m[n] for n in s_), m, extras)
        return _nonempty(out)
    _register_aggregates(session)
    fine = select(*[keys[k].label(k) for k in names], *[v.label(k) for k, v in aggs.items()],
                  _packed(known, c.wait_seconds).label("packed")).select_from(src)
    if where is not None:
        fine = fine.where(where)
    if names:
        fine = fine.group_by(*[literal_column(k) for k in names])
    f = fine.cte("fine").prefix_with("MATERIALIZED")
    parts = []
    for n, s_ in enumerate(sets):
        part = select(literal(n).label("set_no"),
                      *[(f.c[k] if k in s_ else literal(None)).label(k) for k in names],
                      *[(func.max(f.c[k]) if k == "max_wait" else func.sum(f.c[k])).label(k) for k in aggs],
                      func.cc_p90(f.c.packed).label("p90"))
        if s_:
            part = part.group_by(*[f.c[k] for k in s_])
        parts.append(part)
    for m in session.execute(union_all(*parts)).mappings():
        s_ = sets[m["set_no"]]
        _put(out[s_], tuple(m[n] for n in s_), m, extras)
    return _nonempty(out)


def _put(groups: dict[tuple, Group], key: tuple, m, extras: bool) -> None:
    if None in key:  # calls without an entry time have no hour or day
        return
    t = stats.Totals(**{k: (m[k] or 0) for k in COUNTERS})
    t.answered_wait = float(t.answered_wait)
    g = Group(totals=t, max_wait=m["max_wait"], p90_wait=m["p90"])
    if extras:
        g.calls, g.talk_sum, g.talk_n = m["calls"] or 0, float(m["talk_sum"] or 0.0), m["talk_n"] or 0
        g.dist = [[m[f"a{i}"] or 0, m[f"b{i}"] or 0] for i in range(len(BUCKETS))]
    groups[key] = g


def _nonempty(out: dict[tuple[str, ...], dict[tuple, Group]]) -> dict[tuple[str, ...], dict[tuple, Group]]:
    if () in out and not out[()]:
        out[()][()] = Group()  # an empty period still has a (null) summary
    return out


def _set_of(gid: int, names: list[str], sets: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    """``GROUPING(a, b, ...)`` has a 1 bit for each key *not* in the row's set (first key high)."""
    present = tuple(n for i, n in enumerate(names) if not gid & (1 << (len(names) - 1 - i)))
    for s_ in sets:
        if set(s_) == set(present):
            return s_
    raise LookupError(f"grouping id {gid} matches no grouping set of {sets}")


# --- the reports --------------------------------------------------------------------------------

@dataclass(slots=True)
class PeriodFigures:
    """Everything the summary reports show for one period, from one GROUP BY."""

    whole: Group
    by_queue: dict[str, Group]
    by_hour: dict[int, Group]
    by_day: dict[str, Group]


PARTS = ("whole", "queue", "hour", "day")


def period_figures(session: Session, since: dt.datetime | None, until: dt.datetime | None, tz: ZoneInfo,
                   *, target: float, short_abandon: float, queue: str | None = None,
                   agent: str | None = None, extras: bool = False, parts: Sequence[str] = PARTS,
                   server: str | None = None) -> PeriodFigures:
    """Per queue, per local hour of day, per local day and for the whole period (those in
    ``parts``; the others stay empty): from the rollups (:mod:`.rollup_figures`), or, for one
    agent, from that agent's calls (the ``(agent, entered_at)`` index) in one scan.
    ``extras`` (talk time, histogram) are always filled from the rollups."""
    if not agent:
        from . import rollup_figures

        return rollup_figures.period_figures(session, since, until, tz, target=target, short_abandon=short_abandon,
                                             queue=queue, server=server, parts=parts)
    src = period_calls(since, until, queue, agent, server)
    hour, day = local_hour_day(session, src, tz, since, until)
    keys = {k: v for k, v in (("queue", src.c.queue), ("hour", hour), ("day", day)) if k in parts}
    sets = [(k,) if k != "whole" else () for k in PARTS if k in parts]
    g = grouped(session, src, keys, sets, target=target, short_abandon=short_abandon, extras=extras)
    whole = g.get((), {}).get(()) or Group()
    return PeriodFigures(whole, {k[0]: v for k, v in g.get(("queue",), {}).items()},
                         {int(k[0]): v for k, v in g.get(("hour",), {}).items()},
                         {str(k[0]): v for k, v in g.get(("day",), {}).items()})


def by_half_hour(session: Session, since: dt.datetime | None, until: dt.datetime | None, tz: ZoneInfo,
                 *, target: float, short_abandon: float, queue: str | None = None,
                 agent: str | None = None, server: str | None = None) -> dict[int, Group]:
    """Per local half hour of the day (0-47) over the period's days, with talk time (AHT):
    from the rollups, or one agent's calls."""
    if not agent:
        from . import rollup_figures

        return rollup_figures.by_half_hour(session, since, until, tz, target=target, short_abandon=short_abandon,
                                           queue=queue, server=server)
    src = period_calls(since, until, queue, agent, server)
    g = grouped(session, src, {"slot": local_slot(session, src, tz, since, until)}, [("slot",)],
                target=target, short_abandon=short_abandon, extras=True)
    return {int(k[0]): v for k, v in g[("slot",)].items()}


def by_agent(session: Session, since: dt.datetime | None, until: dt.datetime | None, *, target: float,
             short_abandon: float, queue: str | None = None, server: str | None = None) -> dict[str, Group]:
    """Answered calls per agent (the answer-times report's "By agent"), from the agent-day rollups."""
    from . import rollup_figures

    return rollup_figures.by_agent(session, since, until, target=target, short_abandon=short_abandon,
                                   queue=queue, server=server)


def with_agents(session: Session, since: dt.datetime | None, until: dt.datetime | None, tz: ZoneInfo, *,
                target: float, short_abandon: float, queue: str | None = None, server: str | None = None,
                parts: Sequence[str] = PARTS) -> tuple[PeriodFigures, dict[str, Group]]:
    """:func:`period_figures` and :func:`by_agent` together (the answer-times report): on
    PostgreSQL the two reads of the rollups overlap (:func:`.rollup_figures.with_agents`)."""
    from . import rollup_figures

    return rollup_figures.with_agents(session, since, until, tz, target=target, short_abandon=short_abandon,
                                      queue=queue, server=server, parts=parts)


def agent_rows(session: Session, src: Subquery, target: float) -> list[dict]:
    """The agents report: answered calls, talk and wait per agent; the name of the latest call."""
    c = src.c
    wait = func.coalesce(c.wait_seconds, 0.0)
    q = (select(c.agent, c.agent_name, func.count().label("n"),
                func.sum(func.coalesce(c.talk_seconds, 0.0)).label("talk"), func.sum(wait).label("wait"),
                _n(wait <= target).label("within"), func.max(c.entered_at).label("last"))
         .where(web_answered(c), c.agent != "").group_by(c.agent, c.agent_name))
    agents: dict[str, dict] = {}
    for r in session.execute(q):
        a = agents.setdefault(r.agent, {"n": 0, "talk": 0.0, "wait": 0.0, "within": 0, "name": "", "last": None})
        a["n"] += r.n
        a["talk"] += float(r.talk or 0.0)
        a["wait"] += float(r.wait or 0.0)
        a["within"] += r.within or 0
        if r.agent_name and (a["last"] is None or _as_dt(r.last) > a["last"]):
            a["name"], a["last"] = r.agent_name, _as_dt(r.last)
    return [{"agent": k, "name": a["name"], "answered": a["n"], "talk_seconds_total": round(a["talk"], 1),
             "talk_seconds_avg": round(a["talk"] / a["n"], 1), "wait_seconds_avg": round(a["wait"] / a["n"], 1),
             "answered_within_target": a["within"]} for k, a in sorted(agents.items())]


def abandoned_page(session: Session, src: Subquery, *, offset: int, limit: int | None) -> tuple[int, list[dict]]:
    """(how many, one page of them oldest first; ``limit`` None: all): abandoned and timed-out calls."""
    c = src.c
    cond = web_abandoned(c)
    total = session.execute(select(func.count()).select_from(src).where(cond)).scalar_one()
    q = (select(c.entered_at, c.queue, c.caller_number, c.wait_seconds, c.outcome).where(cond)
         .order_by(c.entered_at, c.id).offset(offset).limit(limit))
    return total, [dict(r._mapping) for r in session.execute(q)]


def sorted_groups(groups: dict[Any, Group], target: float, short_abandon: float,
                  key_name: str = "key", fmt=lambda k: k) -> list[dict[str, Any]]:
    """``[{key_name: fmt(key), **summary}, ...]`` in the order of ``str(fmt(key))``."""
    rows = [(fmt(k), g) for k, g in groups.items()]
    return [{key_name: k, **g.summary(target, short_abandon)}
            for k, g in sorted(rows, key=lambda kv: str(kv[0]))]


def iter_calls(session: Session, src: Subquery, columns: Iterable[str]) -> Iterable[Any]:
    """The period's calls themselves (CSV/JSON listing), streamed in entry order."""
    t = QueueCall.__table__
    q = (select(*[t.c[k] for k in columns]).where(t.c.id.in_(select(src.c.id)))
         .order_by(t.c.entered_at, t.c.id).execution_options(yield_per=2000))
    return session.execute(q)


# --- the web's report rows (from the groups above) -----------------------------------------------

def distribution(g: Group) -> list[dict]:
    """Answered and abandoned calls per wait-time bucket ``[lo, hi)``; the last is open."""
    out = []
    for i, lo in enumerate(BUCKETS):
        hi = BUCKETS[i + 1] if i + 1 < len(BUCKETS) else None
        out.append({"from_seconds": lo, "to_seconds": hi,
                    "label": f"{lo}-{hi}s" if hi is not None else f"{lo}s+",
                    "answered": g.dist[i][0], "abandoned": g.dist[i][1]})
    return out


def staffing_rows(f: PeriodFigures, *, days: int, target: float, goal: float,
                  wrap_seconds: float = 0.0) -> list[dict]:
    """Agents needed per hour of day from the average arrivals and handling time per hour."""
    from callcenter import staffing

    w = f.whole
    default_aht = (w.talk_sum / w.talk_n) if w.talk_n else 180.0
    out = []
    for hour in sorted(f.by_hour):
        g = f.by_hour[hour]
        aht = (g.talk_sum / g.talk_n if g.talk_n else default_aht) + wrap_seconds
        per_hour = g.calls / max(1, days)
        adv = staffing.agents_needed(math.ceil(per_hour), 3600.0, aht, target_seconds=target, goal=goal)
        out.append({"hour": hour, "calls_per_hour": round(per_hour, 2), "aht_seconds": round(aht, 1),
                    "traffic_erlangs": round(adv.traffic_erlangs, 2), "agents_needed": adv.agents,
                    "expected_service_level": round(adv.service_level, 3),
                    "expected_asa_seconds": round(adv.asa_seconds, 1)})
    return out


def abandoned_rows(rows: Iterable[dict], tz: ZoneInfo) -> list[dict]:
    """Rows of :func:`abandoned_page` as shown: local time, the caller's number masked."""
    from callcenter.logs import mask_number

    return [{"entered_at": utc(_as_dt(r["entered_at"])).astimezone(tz).isoformat(timespec="seconds"),
             "queue": r["queue"] or "", "caller": mask_number(r["caller_number"] or ""),
             "wait_seconds": round(float(r["wait_seconds"] or 0.0), 1), "outcome": r["outcome"]}
            for r in rows]
