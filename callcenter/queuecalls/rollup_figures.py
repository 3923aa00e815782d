"""The period reports' figures from the rollups (:mod:`.rollups`): cost grows with the days.

A period ``[since, until)`` is its whole 15-minute slots, read from ``queue_call_rollups``,
and the parts of a slot at either end, counted from the calls with the same definition
(:func:`.rollups.slot_counts`; a report of local days has none), whole UTC days from the
packed day rows.  One SELECT hands back the parts (a year of 8 queues: 2,920 day rows and a
few hundred others, each a few packed values); numpy adds them up per slot once, then per
grouping set.  A slot maps
to its local hour, half hour and day by the zone's UTC offset at its start (the offsets
of the period, :func:`report_queries.offsets`); every real zone changes offset on a
quarter hour, a zone that does not is refused (:class:`ZoneNotQuarterHours`).  The exact
nearest-rank p90 of a group is one ``numpy.partition`` of its waits.  Every numpy call
is short (a few ms for a million values), so the web's event loop is never held up.

"By agent" reads ``queue_call_agent_rollups`` (UTC days) likewise.
"""
from __future__ import annotations

import datetime as dt
import math
from typing import Sequence
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Integer, func, literal_column, select, union_all
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


def _part_rows(session: Session, parts: list) -> dict:
    """The period's parts (a few thousand rows for a year), per ``by`` value in the order they
    come: grouped here, not by the database, which would hold them all twice to run them
    together."""
    out: dict = {}
    for row in _binary_rows(session, parts[0] if len(parts) == 1 else union_all(*parts)):
        out.setdefault(row[0], []).append(row[1:])
    return out


FETCH_ROWS = 128  # PostgreSQL rows turned into Python values per driver call (see _binary_rows)


def _binary_rows(session: Session, stmt) -> list[tuple]:
    """The rows of ``stmt``; on PostgreSQL fetched in binary (the packed values as they are, not
    as hex text: a third of the time and half the memory), on the session's connection, and
    :data:`FETCH_ROWS` at a time: the driver turns a fetch's rows into Python values in one C
    call that holds the interpreter lock, and a year's 2,920 day rows as one ``fetchall`` held
    it 9-31 ms (the web's event loop waits meanwhile); 128 at a time, under 0.5 ms each."""
    if rollups.dialect_of(session) != "postgresql":
        return session.execute(stmt).all()
    conn = session.connection()
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    out: list[tuple] = []
    with conn.connection.driver_connection.cursor(binary=True) as cur:
        cur.execute(str(compiled), compiled.params)
        while rows := cur.fetchmany(FETCH_ROWS):
            out.extend(rows)
    return out


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


def _slot_rows(session, st, since, until, queue, server) -> dict:
    """The period's slots per queue: packed days for its whole UTC days, slot rows for the rest
    of its whole slots, and the calls for the parts of a slot at its ends."""
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
    return _part_rows(session, parts)


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


CHUNK_PARTS = 256  # packed parts unpacked per numpy call (a year's day rows: 2,920, 38 MB of counters)


def _counters(parts: list) -> tuple[np.ndarray, np.ndarray]:
    """The parts' ``counts`` as (n × 28 int32, n × 3 float64), :data:`CHUNK_PARTS` parts at a
    time: unpacked at once, a year's counters were two C calls (joining 38 MB, byte-swapping
    7.6 million int32) that held the interpreter lock 33-55 ms each on a busy machine, and the
    web's event loop waits meanwhile."""
    n = sum(len(p[1]) for p in parts) // LAYOUT.itemsize
    ints, floats = np.empty((n, len(INTS)), np.int32), np.empty((n, len(FLOATS)), np.float64)
    at = 0
    for i in range(0, len(parts), CHUNK_PARTS):
        packed = np.frombuffer(b"".join(p[1] for p in parts[i:i + CHUNK_PARTS]), dtype=LAYOUT)
        ints[at:at + len(packed)] = packed["i"]
        floats[at:at + len(packed)] = packed["f"]
        at += len(packed)
    return ints, floats


class _Table:
    """The period's rows as arrays: per row its group (``label``), slot (-1: none), counters
    (n × 28 int32, n × 3 float64) and number of waits; the waits of every row in row order."""

    def __init__(self, groups: dict):
        """``groups``: ``{label: [(slots, counts, nwaits, waits), ...]}`` (each part packed)."""
        self.labels = list(groups)
        parts = [p for rows in groups.values() for p in rows]
        of_label = [i for i, rows in enumerate(groups.values()) for _ in rows]
        self.slots = np.frombuffer(b"".join(p[0] for p in parts), dtype=">i8").astype(np.int64)
        self.label = np.repeat(np.array(of_label, dtype=np.int64), [len(p[0]) // 8 for p in parts])
        self.ints, self.floats = _counters(parts)
        self.nwaits = np.frombuffer(b"".join(p[2] for p in parts), dtype=">i4").astype(np.int64)
        self._waits = np.frombuffer(b"".join(p[3] for p in parts), dtype=">f8").astype(np.float64)
        per_label = np.bincount(np.array(of_label, dtype=np.int64), weights=[len(p[3]) // 8 for p in parts],
                                minlength=len(self.labels)).astype(np.int64) if parts else np.zeros(0, np.int64)
        ends = np.cumsum(per_label)
        self.waits_of = [self._waits[e - n:e] for e, n in zip(ends.tolist(), per_label.tolist())]
        self.n = len(self.slots)
        self._slots: tuple | None = None

    def waits(self) -> np.ndarray:
        return self._waits

    def whole(self) -> rq.Group:
        v = dict(zip(INTS, self.ints.sum(axis=0, dtype=np.int64).tolist()))
        v.update(zip(FLOATS[:2], self.floats[:, :2].sum(axis=0).tolist()))
        mx = float(np.fmax.reduce(self.floats[:, 2])) if self.n else math.nan
        return _group(v, None if math.isnan(mx) else mx, p90(self.waits()))

    def by_label(self) -> dict:
        """One group per label (the queue the SQL grouped by)."""
        out = {}
        for i, label in enumerate(self.labels):
            keep = self.label == i
            v = dict(zip(INTS, self.ints[keep].sum(axis=0, dtype=np.int64).tolist()))
            v.update(zip(FLOATS[:2], self.floats[keep, :2].sum(axis=0).tolist()))
            mx = np.fmax.reduce(self.floats[keep, 2]) if keep.any() else math.nan
            out[label] = _group(v, None if math.isnan(mx) else float(mx), p90(self.waits_of[i]))
        return out

    def _per_slot(self) -> tuple:
        """The rows added up per slot (every queue), once: (slots, ints, sums, maxes, the slot
        index of each wait)."""
        if self._slots is None:
            uniq, inv = np.unique(self.slots, return_inverse=True)
            n = len(uniq)
            ints = np.stack([np.bincount(inv, weights=self.ints[:, j], minlength=n) for j in range(len(INTS))], axis=1)
            sums = np.stack([np.bincount(inv, weights=self.floats[:, j], minlength=n) for j in range(2)], axis=1)
            o = np.argsort(inv, kind="stable")
            starts = np.flatnonzero(np.r_[True, inv[o][1:] != inv[o][:-1]])
            maxes = np.fmax.reduceat(self.floats[o, 2], starts)
            self._slots = (uniq, ints, sums, maxes, np.repeat(inv, self.nwaits))
        return self._slots

    def by_slot_key(self, key_of) -> dict:
        """``{key: Group}`` with the slots grouped by ``key_of(slot starts)`` (an integer array;
        rows without a slot left out).  Short numpy calls only: a bincount per counter over the
        slots, a radix sort of 16-bit group numbers of the waits."""
        if not self.n:
            return {}
        uniq, ints, sums, maxes, value_slot = self._per_slot()
        known = uniq >= 0
        if not known.any():
            return {}
        labels, code = np.unique(key_of(uniq[known]), return_inverse=True)
        g = len(labels)
        codes = np.full(len(uniq), -1, dtype=np.int64)
        codes[known] = code
        k = np.flatnonzero(known)
        gi = np.stack([np.bincount(code, weights=ints[k, j], minlength=g) for j in range(len(INTS))], axis=1)
        gs = np.stack([np.bincount(code, weights=sums[k, j], minlength=g) for j in range(2)], axis=1)
        small = (lambda x: x.astype(np.int16)) if g < 32767 else (lambda x: x)
        o = np.argsort(small(code), kind="stable")
        starts = np.flatnonzero(np.r_[True, code[o][1:] != code[o][:-1]])
        gm = np.fmax.reduceat(maxes[k][o], starts)
        vcode = codes[value_slot]
        vkeep = vcode >= 0
        waits = _by_code(small(vcode[vkeep]), self.waits()[vkeep], g)
        out = {}
        for i, label in enumerate(labels.tolist()):
            v = dict(zip(INTS, (int(x) for x in gi[i])))
            v.update(zip(FLOATS[:2], gs[i].tolist()))
            out[label] = _group(v, None if math.isnan(gm[i]) else float(gm[i]), p90(waits[i]))
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


def _group(v: dict, max_wait: float | None, p90_wait: float | None) -> rq.Group:
    t = stats.Totals(**{k: int(v[k]) for k in rq.COUNTERS if k != "answered_wait"},
                     answered_wait=float(v["answered_wait"]))
    g = rq.Group(totals=t, max_wait=max_wait, p90_wait=p90_wait)
    g.calls, g.talk_sum, g.talk_n = int(v["calls"]), float(v["talk_sum"]), int(v["talk_n"])
    g.dist = [[int(v[f"a{i}"]), int(v[f"b{i}"])] for i in range(len(rq.BUCKETS))]
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
    for agent, rows in _part_rows(session, parts).items():  # tens of agents: a few numpy calls each
        packed = np.frombuffer(b"".join(r[0] for r in rows), dtype=LAYOUT)
        v = dict(zip(INTS, packed["i"].sum(axis=0, dtype=np.int64).tolist()))
        f = packed["f"].astype(np.float64)
        v.update(zip(FLOATS[:2], f[:, :2].sum(axis=0).tolist()))
        mx = float(np.fmax.reduce(f[:, 2])) if len(f) else math.nan
        waits = np.frombuffer(b"".join(r[1] for r in rows), dtype=">f8").astype(np.float64)
        out[agent] = _group(v, None if math.isnan(mx) else mx, p90(waits))
    return out
