"""The period reports' figures from the rollups (:mod:`.rollups`): cost grows with the days.

A period ``[since, until)`` is its whole 15-minute slots, read from ``queue_call_rollups``,
and the parts of a slot at either end, counted from the calls with the same definition
(:func:`.rollups.slot_counts`; a report of local days has none), whole UTC days from the
packed day rows.  One SELECT hands back the parts run together per queue (a year of 8
queues: 2,920 day rows and a few hundred others, as 8 rows: :func:`_part_rows`); numpy
adds the rows up per grouping set, one ``bincount`` per counter.  A slot maps to its
local hour, half hour and day by the zone's UTC offset at its start (the offsets
of the period, :func:`report_queries.offsets`); every real zone changes offset on a
quarter hour, a zone that does not is refused (:class:`ZoneNotQuarterHours`).  The exact
nearest-rank p90 of a group is one ``numpy.partition`` of its waits.  Every numpy call
is short (a few ms for a million values), so the web's event loop is never held up.

"By agent" reads ``queue_call_agent_rollups`` (UTC days) likewise.
"""
from __future__ import annotations

import datetime as dt
import itertools
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Integer, func, literal_column, select, union_all
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from . import report_queries as rq
from . import rollups, stats
from .models import QueueCall, QueueCallAgentRollup, QueueCallAgentRollupBlock, QueueCallRollup, QueueCallRollupDay
from .rollups import BLOCK, DAY, FLOATS, INTS, LAYOUT, SLOT


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


def key_filters(c, queue: str | None, server: str | None) -> list[ColumnElement]:
    out = []
    if queue:
        out.append(c.queue == queue)
    if server is not None:
        out.append(c.server == server)
    return out


def whole_units(size: int, a: int | None, b: int | None) -> tuple[int | None, int | None, list[tuple[int, int]]]:
    """Slots ``[a, b)`` (None: open) as whole ``size`` units ``[da, db)`` and the slot ranges
    at either end outside them."""
    da = None if a is None else math.ceil(a / size) * size
    db = None if b is None else math.floor(b / size) * size
    if da is not None and db is not None and da >= db:
        return 0, 0, [(a, b)]
    ends = []
    if a is not None and a < da:
        ends.append((a, da))
    if b is not None and db < b:
        ends.append((db, b))
    return da, db, ends


def in_range(col, a: int | None, b: int | None) -> list[ColumnElement]:
    return ([] if a is None else [col >= a]) + ([] if b is None else [col < b])


def _packed(d: str, by, slot, counts, waits):
    """A part of the period in the one shape: (by, slots, counts, nwaits, waits)."""
    n = func.length(waits) / literal_column("8", Integer)
    return select(by, rollups.int64s(d, func.coalesce(slot, -1)), counts, rollups.int32s(d, n), waits)


def _part_rows(session: Session, parts: list, *, large: bool = False):
    """The period's parts run together per ``by`` value (a queue, an agent): one row per value
    with each packed column concatenated in the same row order, so a year is a few rows of a
    few MB each.  PostgreSQL concatenates (:func:`.rollups.concat`; thousands of rows fewer
    to send and to make Python objects of) unless the rows are ``large`` (the queues' days,
    13-16 kB each): those it sends in order of ``by`` and they are joined here as they come,
    a value at a time (a year's 2,920 days: 0.11-0.13 s instead of 0.15-0.17 s, the database
    neither copying 45 MB into 8 values nor spilling its hash table to disk; the agents'
    15,000 small rows take twice as long that way).  SQLite runs in this process, where its
    ``group_concat`` copies more than ``bytes.join`` does, so its rows are joined here, each
    value's rows dropped once joined."""
    stmt = parts[0] if len(parts) == 1 else union_all(*parts)
    d = rollups.dialect_of(session)
    if d == "postgresql":
        u = stmt.subquery("parts")
        by, *packed = list(u.c)
        if not large:
            yield from _binary_rows(session, select(by, *[rollups.concat(d, c) for c in packed]).group_by(by))
            return
        for value, rows in itertools.groupby(_binary_rows(session, select(u).order_by(by)), key=lambda r: r[0]):
            yield (value, *[b"".join(col) for col in zip(*(r[1:] for r in rows))])
        return
    rows: dict = {}
    for row in session.execute(stmt):
        rows.setdefault(row[0], []).append(row[1:])
    for by in list(rows):
        yield (by, *[b"".join(col) for col in zip(*rows.pop(by))])


def _binary_rows(session: Session, stmt):
    """The rows of ``stmt`` on PostgreSQL, one at a time: fetched in binary (the packed values
    as they are, not as hex text: a third of the time and half the memory) and streamed (the
    driver holds one row, not the whole result beside its Python copy), on the session's
    connection."""
    conn = session.connection()
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    with conn.connection.driver_connection.cursor(binary=True) as cur:
        yield from cur.stream(str(compiled), compiled.params)


def _raw_parts(d: str, counted, by: str, key: str, since, until, edges, queue, server) -> list:
    c = QueueCall.__table__.c
    out = []
    ranges = [[c.entered_at >= lo, c.entered_at < hi] for lo, hi in edges]
    if since is None and until is None:  # an open period counts the calls without an entry time too
        ranges.append([c.entered_at.is_(None)])
    for where in ranges:
        sub = counted(where=[*where, *key_filters(c, queue, server)]).subquery()
        out.append(_packed(d, sub.c[by], sub.c[key], sub.c.counts, sub.c.waits))
    return out


def _slot_rows(session, st, since, until, queue, server):
    """The period's slots, one row per queue (:func:`_part_rows`): packed days for its whole UTC
    days, slot rows for the rest of its whole slots, and the calls for the parts of a slot at
    its ends."""
    d = rollups.dialect_of(session)
    r, rd = QueueCallRollup.__table__.c, QueueCallRollupDay.__table__.c
    a, b, edges = split(since, until, SLOT)
    parts = []
    if a is None or b is None or a < b:
        da, db, ends = whole_units(DAY, a, b)
        if da is None or db is None or da < db:
            parts.append(select(rd.queue, rd.slots, rd.counts, rd.nwaits, rd.waits)
                         .where(*in_range(rd.day, da, db), *key_filters(rd, queue, server)))
        for lo, hi in ends:
            parts.append(_packed(d, r.queue, r.slot, r.counts, r.waits)
                         .where(*in_range(r.slot, lo, hi), *key_filters(r, queue, server)))
    parts += _raw_parts(d, lambda where: rollups.slot_counts(d, st, by_server=False, where=where), "queue", "slot",
                        since, until, edges, queue, server)
    return _part_rows(session, parts, large=True)


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


def local_epochs(slots: np.ndarray, tz: ZoneInfo, lo: dt.datetime, hi: dt.datetime) -> np.ndarray:
    """Each slot start + the zone's UTC offset at it (epoch seconds of local wall time)."""
    spans = rq.offsets(tz, lo, hi)
    for i, (start, off) in enumerate(spans):
        if off % SLOT or (i and int(start.timestamp()) % SLOT):
            raise ZoneNotQuarterHours(f"time zone {tz.key}: UTC offset {off:+d} s from {start.isoformat()} is not "
                                      "whole quarter hours; the rollups cannot split its local hours")
    starts = np.array([int(start.timestamp()) for start, _ in spans[1:]], dtype=np.int64)
    offs = np.array([off for _, off in spans], dtype=np.int64)
    return slots + offs[np.searchsorted(starts, slots, side="right")]


class _Part:
    """One label's rows as arrays, counters transposed (a counter's values contiguous: a
    ``bincount`` per counter reads them in order): ``ints`` 28 × n int32, ``sums`` 2 × n
    (answered wait, talk), ``maxes`` n, ``slots`` n (-1: none), ``nwaits`` n, and the waits
    of every row in row order."""

    __slots__ = ("slots", "ints", "sums", "maxes", "nwaits", "waits")

    def __init__(self, slots: bytes, counts: bytes, nwaits: bytes, waits: bytes):
        packed = np.frombuffer(counts, dtype=LAYOUT)
        self.ints = np.ascontiguousarray(packed["i"].T, dtype=np.int32)
        f = packed["f"]
        self.sums = np.ascontiguousarray(f[:, :2].T, dtype=np.float64)
        self.maxes = f[:, 2].astype(np.float64)
        self.slots = np.frombuffer(slots, dtype=">i8").astype(np.int64)
        self.nwaits = np.frombuffer(nwaits, dtype=">i4").astype(np.int64)
        self.waits = np.frombuffer(waits, dtype=">f8").astype(np.float64)


class _Table:
    """The period's rows per label (the queue the SQL grouped by), converted as each label's
    row arrives so the packed bytes of one label at a time are held beside the arrays.

    Every grouping is a ``bincount`` per counter over the rows' group numbers (any number
    of groups, one pass each), a ``fmax.at`` for the longest wait, and one radix sort of
    16-bit group numbers of the waits for the exact p90s; every numpy call is short."""

    def __init__(self, rows):
        """``rows``: ``(label, slots, counts, nwaits, waits)``, each packed (:func:`_part_rows`)."""
        self.labels: list = []
        self.parts: list[_Part] = []
        for label, *packed in rows:
            self.labels.append(label)
            self.parts.append(_Part(*(bytes(p) for p in packed)))
        self.n = sum(len(p.slots) for p in self.parts)

    def whole(self) -> rq.Group:
        return self._group_of(self.parts)

    def by_label(self) -> dict:
        return {label: self._group_of([p]) for label, p in zip(self.labels, self.parts)}

    @staticmethod
    def _group_of(parts: list[_Part]) -> rq.Group:
        ints = sum((p.ints.sum(axis=1, dtype=np.int64) for p in parts), np.zeros(len(INTS), np.int64))
        sums = sum((p.sums.sum(axis=1) for p in parts), np.zeros(2))
        v = dict(zip(INTS, ints.tolist()))
        v.update(zip(FLOATS[:2], sums.tolist()))
        mx = float(np.fmax.reduce([math.nan] + [np.fmax.reduce(p.maxes) for p in parts if len(p.maxes)]))
        waits = parts[0].waits if len(parts) == 1 else np.concatenate([np.zeros(0)] + [p.waits for p in parts])
        return _group(v, None if math.isnan(mx) else mx, p90(waits))

    def by_slot_key(self, key_of) -> dict:
        """``{key: Group}`` with the rows grouped by ``key_of(slot starts)`` (an integer array;
        rows without a slot left out)."""
        if not self.n:
            return {}
        slots = np.concatenate([p.slots for p in self.parts])
        known = slots >= 0
        if not known.any():
            return {}
        # keys are hours, half hours or days: a small range of integers, numbered from the
        # smallest (no sort, as np.unique would); groups no row falls in are left out below
        keys = key_of(slots[known])
        first = int(keys.min())
        code = keys - first
        g = int(code.max()) + 1
        labels = np.arange(first, first + g)
        codes = np.full(len(slots), -1, dtype=np.int64)
        codes[known] = code
        present = np.bincount(code, minlength=g) > 0
        gi = np.zeros((len(INTS), g))
        gs = np.zeros((2, g))
        gm = np.full(g, math.nan)
        vcodes, vals, at = [], [], 0
        for p in self.parts:
            c = codes[at:at + len(p.slots)]
            at += len(p.slots)
            keep = c >= 0
            ints, sums, maxes, cc = ((p.ints, p.sums, p.maxes, c) if keep.all() else
                                     (p.ints[:, keep], p.sums[:, keep], p.maxes[keep], c[keep]))
            for j in range(len(INTS)):
                gi[j] += np.bincount(cc, weights=ints[j], minlength=g)
            for j in range(2):
                gs[j] += np.bincount(cc, weights=sums[j], minlength=g)
            np.fmax.at(gm, cc, maxes)
            vc = np.repeat(c, p.nwaits)
            vkeep = vc >= 0
            vcodes.append(vc[vkeep])
            vals.append(p.waits[vkeep])
        small = (lambda x: x.astype(np.int16)) if g < 32767 else (lambda x: x)
        vc = small(np.concatenate(vcodes))
        vals = np.concatenate(vals)[np.argsort(vc, kind="stable")]
        ends = np.cumsum(np.bincount(vc, minlength=g))
        out = {}
        ints_of, sums_of = np.rint(gi).astype(np.int64).T.tolist(), gs.T.tolist()
        for i, label in enumerate(labels.tolist()):
            if not present[i]:
                continue
            v = dict(zip(INTS, ints_of[i]))
            v.update(zip(FLOATS[:2], sums_of[i]))
            lo = ends[i - 1] if i else 0
            out[label] = _group(v, None if math.isnan(gm[i]) else float(gm[i]), p90(vals[lo:ends[i]]))
        return out


CHUNK_VALUES = 1 << 17  # waits grouped per numpy call


def _by_code(codes: np.ndarray, values: np.ndarray, groups: int) -> list[np.ndarray]:
    """``values`` per group (``codes`` 0 .. ``groups`` - 1), :data:`CHUNK_VALUES` at a time: a
    stable radix sort of each chunk's group numbers, the pieces of a group run together after.
    One sort of a year's million waits held the interpreter lock 20-30 ms on a busy machine."""
    pieces: list[list[np.ndarray]] = [[] for _ in range(groups)]
    for a in range(0, len(codes), CHUNK_VALUES):
        c = codes[a:a + CHUNK_VALUES]
        ordered = values[a:a + CHUNK_VALUES][np.argsort(c, kind="stable")]
        counts = np.bincount(c, minlength=groups)
        ends = np.cumsum(counts).tolist()
        for i in np.flatnonzero(counts).tolist():
            pieces[i].append(ordered[ends[i] - int(counts[i]):ends[i]])
    return [np.concatenate(p) if len(p) > 1 else p[0] if p else values[:0] for p in pieces]


def p90(waits: np.ndarray) -> float | None:
    """Nearest-rank 90th percentile (``stats.percentile``) of the waits, exactly."""
    n = len(waits)
    if not n:
        return None
    k = max(1, math.ceil(90 / 100 * n))
    return float(np.partition(waits, k - 1)[k - 1])


_TOTALS = tuple(k for k in rq.COUNTERS if k != "answered_wait")
_DIST = tuple((f"a{i}", f"b{i}") for i in range(len(rq.BUCKETS)))


def _group(v: dict, max_wait: float | None, p90_wait: float | None) -> rq.Group:
    t = stats.Totals(**{k: int(v[k]) for k in _TOTALS}, answered_wait=float(v["answered_wait"]))
    g = rq.Group(totals=t, max_wait=max_wait, p90_wait=p90_wait)
    g.calls, g.talk_sum, g.talk_n = int(v["calls"]), float(v["talk_sum"]), int(v["talk_n"])
    g.dist = [[int(v[a]), int(v[b])] for a, b in _DIST]
    return g


def _by_local(t: _Table, session: Session, tz: ZoneInfo, since, until, fn) -> dict:
    """Groups by ``fn(local epoch seconds)`` of the slots."""
    span = _span(session, since, until)
    if span is None:
        return {}
    return t.by_slot_key(lambda slots: fn(local_epochs(slots, tz, *span)))


_TABLES = "rollup_figures.period_table"


def _period_table(session: Session, since, until, target: float, short_abandon: float, queue: str | None,
                  server: str | None) -> _Table:
    """The period's slot rows as a :class:`_Table`, read once per transaction: the page's
    period figures and its half hours are two reports over the same rows (a year: 0.3-0.8 s
    to read and unpack, and the per-slot sums the groupings share)."""
    rollups.check_settings(session, target, short_abandon)
    if rollups.settle(session):  # calls changed in this transaction: what was read is stale
        for k in [k for k in session.info if isinstance(k, tuple) and k[0] == _TABLES]:
            del session.info[k]
    rollups.register_functions(session)
    st = rollups.Settings(float(target), float(short_abandon))
    key = (_TABLES, since, until, st, queue, server)
    if key not in session.info:
        session.info[key] = _Table(_slot_rows(session, st, since, until, queue, server))
    return session.info[key]


def _day(n: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=int(n))).isoformat()


def period_figures(session: Session, since, until, tz: ZoneInfo, *, target: float, short_abandon: float,
                   queue: str | None, server: str | None, parts: Sequence[str]) -> rq.PeriodFigures:
    """:func:`report_queries.period_figures` (no agent filter) from the rollups."""
    t = _period_table(session, since, until, target, short_abandon, queue, server)
    whole = t.whole() if "whole" in parts else None
    by_queue = t.by_label() if "queue" in parts else {}
    by_hour = _by_local(t, session, tz, since, until, lambda e: (e % DAY) // 3600) if "hour" in parts else {}
    by_day = _by_local(t, session, tz, since, until, lambda e: e // DAY) if "day" in parts else {}
    return rq.PeriodFigures(whole or rq.Group(), by_queue, {int(k): v for k, v in by_hour.items()},
                            {_day(k): v for k, v in by_day.items()})


def by_half_hour(session: Session, since, until, tz: ZoneInfo, *, target: float, short_abandon: float,
                 queue: str | None, server: str | None) -> dict[int, rq.Group]:
    """:func:`report_queries.by_half_hour` (no agent filter) from the rollups."""
    t = _period_table(session, since, until, target, short_abandon, queue, server)
    halves = _by_local(t, session, tz, since, until, lambda e: (e % DAY) // 1800)
    return {int(k): v for k, v in halves.items()}


def with_agents(session: Session, since, until, tz: ZoneInfo, *, target: float, short_abandon: float,
                queue: str | None, server: str | None,
                parts: Sequence[str]) -> tuple[rq.PeriodFigures, dict[str, rq.Group]]:
    """:func:`period_figures` and :func:`by_agent` of one period.  On PostgreSQL the agents'
    read runs on a second connection while this one reads the slots, so the database's two
    reads (each one backend concatenating and sending packed rows) overlap instead of
    following each other; the client adds up the slots meanwhile.  Both are READ COMMITTED
    statements, as the two reads one after the other were.  Not when this transaction
    recounted marked rows (:func:`.rollups.settle`), nor when the session is bound to one
    connection rather than an engine (a caller's own transaction): the other connection would
    not see what this transaction wrote."""
    rollups.check_settings(session, target, short_abandon)
    settled = rollups.settle(session)
    figures = lambda: period_figures(session, since, until, tz, target=target,  # noqa: E731
                                     short_abandon=short_abandon, queue=queue, server=server, parts=parts)
    engine = session.get_bind()
    if rollups.dialect_of(session) != "postgresql" or settled or not isinstance(engine, Engine):
        f = figures()
        return f, by_agent(session, since, until, target=target, short_abandon=short_abandon, queue=queue,
                           server=server)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-agents") as pool:
        agents = pool.submit(_agents_apart, engine, since, until, target, short_abandon, queue, server)
        f = figures()
        return f, agents.result()


def _agents_apart(engine, since, until, target: float, short_abandon: float, queue: str | None,
                  server: str | None) -> dict[str, rq.Group]:
    """:func:`by_agent` in a transaction of its own connection."""
    with Session(engine) as s, s.begin():
        return by_agent(s, since, until, target=target, short_abandon=short_abandon, queue=queue, server=server)


def by_agent(session: Session, since, until, *, target: float, short_abandon: float, queue: str | None,
             server: str | None) -> dict[str, rq.Group]:
    """Answered calls per agent (``report_queries.by_agent``) from the agent-day rollups."""
    st = ready(session, target, short_abandon)
    d = rollups.dialect_of(session)
    r = QueueCallAgentRollup.__table__.c
    c = QueueCall.__table__.c
    a, b, edges = split(since, until, DAY)
    rb = QueueCallAgentRollupBlock.__table__.c
    parts = []
    if a is None or b is None or a < b:
        ba, bb, ends = whole_units(BLOCK, a, b)
        if ba is None or bb is None or ba < bb:
            parts.append(select(rb.agent, rb.counts, rb.waits).where(*in_range(rb.block, ba, bb),
                                                                    *key_filters(rb, queue, server)))
        for lo, hi in ends:
            parts.append(select(r.agent, r.counts, r.waits).where(*in_range(r.day, lo, hi), *key_filters(r, queue, server)))
    ranges = [[c.entered_at >= lo, c.entered_at < hi] for lo, hi in edges]
    if since is None and until is None:  # an open period counts the calls without an entry time too
        ranges.append([c.entered_at.is_(None)])
    for where in ranges:
        sub = rollups.agent_counts(d, st, by_server=False, where=[*where, *key_filters(c, queue, server)]).subquery()
        parts.append(select(sub.c.agent, sub.c.counts, sub.c.waits))
    out = {}
    for agent, counts, waits in _part_rows(session, parts):  # tens of agents, each one row
        packed = np.frombuffer(bytes(counts), dtype=LAYOUT)
        v = dict(zip(INTS, packed["i"].sum(axis=0, dtype=np.int64).tolist()))
        f = packed["f"]
        v.update(zip(FLOATS[:2], f[:, :2].sum(axis=0, dtype=np.float64).tolist()))
        mx = float(np.fmax.reduce(f[:, 2])) if len(f) else math.nan
        out[agent] = _group(v, None if math.isnan(mx) else mx, p90(np.frombuffer(bytes(waits), dtype=">f8")))
    return out
