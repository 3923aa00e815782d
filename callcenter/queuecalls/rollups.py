"""Rollups of the inbound queue calls, kept at write time, so a period report costs its days.

Two tables (:mod:`.models`): :class:`QueueCallRollup` counts the calls of one (server,
queue, 15-minute UTC slot) and :class:`QueueCallAgentRollup` the answered calls of one
(server, queue, agent, UTC day), with the very counters :func:`report_queries._aggregates`
computes, and the slot's waits sorted (exact p90 over any union of rows).  A third,
:class:`QueueCallGroupRollup` (server, queue, agent, UTC day; migration 0999e), counts what
the agents and satisfaction reports add up (:mod:`.call_groups`), in plain columns.

Kept exact without delta arithmetic: triggers on ``queue_calls`` (migration 0999) mark the
rows a write touches in ``queue_call_rollup_dirty`` (old and new key of an update, on every
counted column), whatever writes; :func:`settle` recounts those rows from the calls of their
slot (tens of calls, by the ``(queue, entered_at)`` index) and clears the marks.  The store
settles after every batch, in its transaction (:func:`.store.write_calls`; on SQLite a batch
of new calls only is counted alone and added to the rows, :mod:`.rollup_adds`); a report
settles what another writer left (a hand-made fix in SQL) before it reads.

The answer target and short-abandon limit are part of the counters' meaning: the settings
row says what they were counted with; :func:`check_settings` refuses others
(:class:`RollupsStale`, naming ``callcenter report rebuild-rollups``).
"""
from __future__ import annotations

import datetime as dt
import itertools
import math
import struct
from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple

import numpy as np
from sqlalchemy import (BigInteger, Float, Integer, LargeBinary, and_, case, cast, delete, exists, func, insert, literal_column,
                        select, tuple_)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, Select

from ..store.db import MigrationRequired
from ..store.join_order import OuterFirst
from . import report_queries as rq
from . import stats
from . import call_groups
from .models import (QueueCall, QueueCallAgentRollup, QueueCallAgentRollupBlock, QueueCallGroupRollup,
                     QueueCallGroupRollupBlock, QueueCallRollup, QueueCallRollupDay, RollupDirty, RollupSettings)

SLOT = 900      # seconds: every real UTC offset is whole quarter hours
DAY = 86400
BLOCK = 16 * DAY  # an agent's days are packed per block
# ``counts``: these 28 counters as big-endian int32, then these 3 as float64 (max_wait NaN: none)
INTS = ("answered", "abandoned", "short", "timeouts", "redirected", "within", "unans_within", "gaps", "calls",
        "talk_n") + tuple(f"{x}{i}" for x in "ab" for i in range(len(rq.BUCKETS)))
FLOATS = ("answered_wait", "talk_sum", "max_wait")
LAYOUT = np.dtype([("i", ">i4", (len(INTS),)), ("f", ">f8", (len(FLOATS),))])
_PACK = struct.Struct(f">{len(INTS)}i{len(FLOATS)}d")
REBUILD_COMMAND = "callcenter report rebuild-rollups"
# the columns of queue_calls a rollup counts: an UPDATE of any of them marks the rollup dirty
COUNTED = ("server", "queue", "entered_at", "direction", "outcome", "wait_seconds", "gap", "agent",
           "talk_seconds", "answered_at")


class RollupsStale(MigrationRequired):
    """The rollups were counted with other report settings than the running configuration's
    (or not at all): rebuild them before reporting."""


@dataclass(frozen=True)
class Settings:
    """What the rollups' counters depend on."""

    answer_target: float
    short_abandon: float


def _connection(conn: "Session | Connection") -> Connection:
    """The Connection of a Session (the writer's and the reports') or a Connection (migrations)."""
    if isinstance(conn, Session):
        return conn.connection()
    if isinstance(conn, Connection):
        return conn
    raise TypeError(f"rollups need a SQLAlchemy Session or Connection, not {type(conn).__name__}")


def dialect_of(conn: "Session | Connection") -> str:
    if isinstance(conn, Session):
        return conn.get_bind().dialect.name   # without beginning a transaction
    return _connection(conn).dialect.name


def _dbapi(conn: "Session | Connection"):
    """The driver's connection (SQLite: to register functions)."""
    return _connection(conn).connection.driver_connection


class _Waits:
    """SQLite aggregate: a group's waits, sorted, as big-endian float64 (PostgreSQL:
    ``string_agg(float8send(w) ORDER BY w)``, the same bytes)."""

    __slots__ = ("v",)

    def __init__(self) -> None:
        self.v: list[float] = []

    def step(self, w: float | None) -> None:
        if w is not None:
            self.v.append(float(w))

    def finalize(self) -> bytes:
        self.v.sort()
        return struct.pack(f">{len(self.v)}d", *self.v)


def _pack(*v) -> bytes:
    n = len(INTS)
    return _PACK.pack(*[int(x or 0) for x in v[:n]], float(v[n] or 0.0), float(v[n + 1] or 0.0),
                      math.nan if v[n + 2] is None else float(v[n + 2]))


def register_functions(conn) -> None:
    """``cc_waits``, ``cc_counts``, ``cc_i64`` and ``cc_i32`` on a SQLite connection (no-op
    elsewhere: PostgreSQL has ``string_agg``, ``int8send``, ``float8send``)."""
    if dialect_of(conn) == "sqlite":
        raw = _dbapi(conn)
        raw.create_aggregate("cc_waits", 1, _Waits)
        raw.create_function("cc_counts", len(INTS) + len(FLOATS), _pack, deterministic=True)
        raw.create_function("cc_i64", 1, lambda v: struct.pack(">q", int(v)), deterministic=True)
        raw.create_function("cc_i32", 1, lambda v: struct.pack(">i", int(v)), deterministic=True)


def int64s(dialect: str, col: ColumnElement) -> ColumnElement:
    """One integer as 8 big-endian bytes (to be run together with :func:`concat`)."""
    return func.int8send(cast(col, BigInteger)) if dialect == "postgresql" else func.cc_i64(col)


def int32s(dialect: str, col: ColumnElement) -> ColumnElement:
    return func.int4send(cast(col, Integer)) if dialect == "postgresql" else func.cc_i32(col)


def slot_of(dialect: str, col: ColumnElement, size: int) -> ColumnElement:
    """The start (epoch seconds) of the ``size``-second UTC slot of ``col`` as SQL."""
    n = literal_column(str(int(size)), BigInteger)  # literals: PostgreSQL matches GROUP BY by text
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", col) / n), BigInteger) * n
    return cast(func.strftime("%s", col), BigInteger) // n * n


def packed_waits(dialect: str, c) -> ColumnElement:
    """The group's waits of known-outcome calls, sorted, big-endian float64 (never NULL)."""
    w = c.wait_seconds
    keep = and_(c.outcome.in_(rq.KNOWN), w.is_not(None))
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import aggregate_order_by

        agg = func.string_agg(func.float8send(w), aggregate_order_by(literal_column("''::bytea"), w)).filter(keep)
        return func.coalesce(agg, literal_column("''::bytea"))
    return func.cc_waits(case((keep, w)))


def packed_counts(dialect: str, aggs: dict[str, ColumnElement]) -> ColumnElement:
    """The group's counters as one ``counts`` value (:data:`LAYOUT`), in the database."""
    if dialect == "postgresql":
        parts = [func.int4send(cast(func.coalesce(aggs[k], 0), Integer)) for k in INTS]
        parts += [func.float8send(cast(func.coalesce(aggs[k], 0.0), Float)) for k in FLOATS[:2]]
        parts.append(func.float8send(func.coalesce(cast(aggs["max_wait"], Float), literal_column("'NaN'::float8"))))
        out = parts[0]
        for p in parts[1:]:
            out = out.op("||")(p)
        return out
    return func.cc_counts(*[aggs[k] for k in INTS + FLOATS])


def unpack_counts(b: bytes) -> dict[str, float]:
    """A ``counts`` value by name (max_wait None when no call had a known wait)."""
    v = _PACK.unpack(bytes(b))
    out = dict(zip(INTS + FLOATS, v))
    if math.isnan(out["max_wait"]):
        out["max_wait"] = None
    return out


def concat(dialect: str, col: ColumnElement) -> ColumnElement:
    """A group's bytes values run together, in the database's C (every aggregate of one group
    sees its rows in the same order, so the i-th piece of each belongs to the same row;
    SQLite's ``group_concat`` keeps every byte, NULs included, and the cast makes it a BLOB)."""
    if dialect == "postgresql":
        return func.coalesce(func.string_agg(col, literal_column("''::bytea")), literal_column("''::bytea"))
    return func.coalesce(cast(func.group_concat(col, ""), LargeBinary), literal_column("X''"))


def day_rows(dialect: str, where: Iterable[ColumnElement] = (), join=None):
    """``SELECT server, queue, day, slots, counts, nwaits, waits`` packing slot rows per UTC
    day: the definition of a :class:`QueueCallRollupDay` row."""
    r = QueueCallRollup.__table__.c
    n = literal_column(str(DAY), BigInteger)
    day = r.slot - r.slot % n
    q = select(r.server, r.queue, day.label("day"), concat(dialect, int64s(dialect, r.slot)).label("slots"),
               concat(dialect, r.counts).label("counts"),
               concat(dialect, int32s(dialect, func.length(r.waits) / literal_column("8", Integer))).label("nwaits"),
               concat(dialect, r.waits).label("waits"))
    if join is not None:
        q = q.join_from(QueueCallRollup.__table__, *join)
    return q.where(*where).group_by(r.server, r.queue, day)


def unpack(b: bytes | None) -> list[float]:
    """The waits of a rollup row (tests, tools)."""
    b = bytes(b or b"")
    return list(struct.unpack(f">{len(b) // 8}d", b))


def slot_counts(dialect: str, settings: Settings, *, where: Iterable[ColumnElement] = (),
                by_server: bool = True):
    """``SELECT [server,] queue, slot, <counters>, waits`` grouped per 15-minute slot, over the
    inbound calls matching ``where``: the one definition of a :class:`QueueCallRollup` row
    (rebuild, settle, and a report's partial slots at its period's edges)."""
    c = QueueCall.__table__.c
    aggs = rq._aggregates(c, settings.answer_target, settings.short_abandon, True)
    slot = slot_of(dialect, c.entered_at, SLOT)  # grouped by itself: literals only, so PostgreSQL matches it
    cols = ([c.server] if by_server else []) + [c.queue, slot.label("slot")]
    q = select(*cols, packed_counts(dialect, aggs).label("counts"), packed_waits(dialect, c).label("waits"))
    q = q.where(c.direction == "inbound", *where)
    return q.group_by(*([c.server] if by_server else []), c.queue, slot)


def agent_counts(dialect: str, settings: Settings, *, where: Iterable[ColumnElement] = (),
                 by_server: bool = True, size: int = DAY):
    """The same per (server, queue, agent, UTC day) over answered calls with an agent: the
    definition of a :class:`QueueCallAgentRollup` row (``report_queries.by_agent``'s calls);
    ``size=BLOCK``: per 16 days, a :class:`QueueCallAgentRollupBlock` row (column ``block``)."""
    c = QueueCall.__table__.c
    aggs = rq._aggregates(c, settings.answer_target, settings.short_abandon, True)
    unit = slot_of(dialect, c.entered_at, size)
    cols = ([c.server] if by_server else []) + [c.queue, c.agent, unit.label("block" if size == BLOCK else "day")]
    q = select(*cols, packed_counts(dialect, aggs).label("counts"), packed_waits(dialect, c).label("waits"))
    q = q.where(c.direction == "inbound", c.outcome.in_(stats.ANSWERED), c.agent != "", *where)
    return q.group_by(*([c.server] if by_server else []), c.queue, c.agent, unit)


def block_counts(dialect: str, settings: Settings, *, where: Iterable[ColumnElement] = ()):
    """``SELECT server, queue, agent, block, counts, waits``: an agent's answered calls of 16 UTC
    days counted as one (one ``counts`` record, the block's waits sorted), the definition of a
    :class:`QueueCallAgentRollupBlock` row.  Counted from the calls, not packed from the day
    rows: a report adds up one record per block instead of 16 (a year of 80 agents in 8 queues:
    2 MB of counters to send instead of 31)."""
    return agent_counts(dialect, settings, where=where, size=BLOCK)


def _columns(q) -> list[str]:
    return [col.name for col in q.selected_columns]


def _ts(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc)


# --- settings -----------------------------------------------------------------------------------

def stored_settings(conn) -> Settings | None:
    row = conn.execute(select(RollupSettings.answer_target_seconds, RollupSettings.short_abandon_seconds)
                       .where(RollupSettings.id == 1)).first()
    return None if row is None else Settings(float(row[0]), float(row[1]))


def settings_for(conn) -> Settings:
    """What the stored rollups were counted with; :class:`RollupsStale` when nothing says."""
    s = stored_settings(conn)
    if s is None:
        raise RollupsStale(f"the queue-call rollups have no settings row; run: {REBUILD_COMMAND}")
    return s


def check_settings(conn, answer_target: float, short_abandon: float) -> None:
    """Raise :class:`RollupsStale` unless the rollups were counted with these settings."""
    s = settings_for(conn)
    want = Settings(float(answer_target), float(short_abandon))
    if s != want:
        raise RollupsStale(
            f"the queue-call rollups were counted with answer target {s.answer_target:g} s and short "
            f"abandon {s.short_abandon:g} s, the configuration says {want.answer_target:g} s and "
            f"{want.short_abandon:g} s; run: {REBUILD_COMMAND}")


def check_at_start(conn, answer_target: float, short_abandon: float) -> None:
    """At start-up: as :func:`check_settings`, but a database without calls takes the running
    settings (there is nothing to recount)."""
    want = Settings(float(answer_target), float(short_abandon))
    if stored_settings(conn) == want:
        return
    if conn.execute(select(exists().where(QueueCall.id.is_not(None)))).scalar():
        check_settings(conn, answer_target, short_abandon)
    rebuild(conn, want)


def _save_settings(conn, s: Settings) -> None:
    conn.execute(delete(RollupSettings))
    conn.execute(insert(RollupSettings).values(id=1, answer_target_seconds=s.answer_target,
                                               short_abandon_seconds=s.short_abandon))


# --- keeping them -------------------------------------------------------------------------------

def rebuild(conn, settings: Settings, *, groups: bool = True) -> tuple[int, int]:
    """Recount every rollup from the calls with ``settings`` (one transaction: the caller's);
    returns (slot rows, agent-day rows).  ``groups=False``: all but the call-group rollups
    (migration 0999, which runs before 0999e creates their tables)."""
    d = dialect_of(conn)
    register_functions(conn)
    for t in (QueueCallRollup, QueueCallRollupDay, QueueCallAgentRollup, RollupDirty):
        conn.execute(delete(t))
    _save_settings(conn, settings)
    c = QueueCall.__table__.c
    q = slot_counts(d, settings, where=[c.entered_at.is_not(None)])
    conn.execute(insert(QueueCallRollup).from_select(_columns(q), q))
    q = day_rows(d)
    conn.execute(insert(QueueCallRollupDay).from_select(_columns(q), q))
    q = agent_counts(d, settings, where=[c.entered_at.is_not(None)])
    conn.execute(insert(QueueCallAgentRollup).from_select(_columns(q), q))
    rebuild_agent_blocks(conn, settings)
    if groups:
        rebuild_groups(conn, settings)
    return (conn.execute(select(func.count()).select_from(QueueCallRollup)).scalar_one(),
            conn.execute(select(func.count()).select_from(QueueCallAgentRollup)).scalar_one())


def rebuild_agent_blocks(conn, settings: Settings) -> None:
    """Recount the agents' 16-day blocks from the calls (migration 0999g: a block was its
    days' records run together, it is now their sum)."""
    d = dialect_of(conn)
    c = QueueCall.__table__.c
    conn.execute(delete(QueueCallAgentRollupBlock))
    q = block_counts(d, settings, where=[c.entered_at.is_not(None)])
    conn.execute(insert(QueueCallAgentRollupBlock).from_select(_columns(q), q))


def rebuild_groups(conn, settings: Settings) -> None:
    """Recount the agents' and satisfaction reports' rollups (:mod:`.call_groups`) from the calls."""
    d = dialect_of(conn)
    c = QueueCall.__table__.c
    for t in (QueueCallGroupRollup, QueueCallGroupRollupBlock):
        conn.execute(delete(t))
    q = call_groups.group_counts(d, settings.answer_target, where=[c.entered_at.is_not(None)])
    conn.execute(insert(QueueCallGroupRollup).from_select(_columns(q), q))
    q = call_groups.block_sums()
    conn.execute(insert(QueueCallGroupRollupBlock).from_select(_columns(q), q))


def _slot_start(dialect: str, epoch: ColumnElement) -> ColumnElement:
    """Epoch seconds as what ``entered_at`` compares with (SQLite: UTC text; the stored text's
    fraction sorts it after the whole second, so ``>=``/``<`` bounds stay exact)."""
    if dialect == "postgresql":
        return func.to_timestamp(epoch)
    return func.datetime(epoch, "unixepoch")


_RECOUNT: dict[tuple[str, Settings], tuple] = {}


def _of_marked_calls(counts: Select, dialect: str, d, kind: str, span: int) -> Select:
    """``counts`` over the calls of the marks of ``kind`` (a queue's slot ``q``: its
    ``span`` seconds; an agent's day ``a``/``g``: also that agent).  The marks are read
    first and their calls by a named index, whatever SQLite's statistics say
    (:mod:`callcenter.store.join_order`)."""
    c = QueueCall.__table__.c
    on = [d.c.kind == kind, d.c.server == c.server, d.c.queue == c.queue]
    if kind != "q":
        on.append(d.c.agent == c.agent)
    on += [c.entered_at >= _slot_start(dialect, d.c.slot), c.entered_at < _slot_start(dialect, d.c.slot + span)]
    index = "ix_queue_calls_queue_entered" if kind == "q" else "ix_queue_calls_agent_entered"
    return counts.select_from(OuterFirst(d, QueueCall.__table__, and_(*on))).with_hint(
        QueueCall.__table__, f"INDEXED BY {index}", "sqlite")


class Recount(NamedTuple):
    """A settle's statements: ``rows``, the (delete, insert) of the marked slot, agent-day and
    group rows, each over the marks joined to their calls; ``packing``, what is built from
    those rows, not the calls (the marked days packed, the agents' and groups' blocks summed:
    :func:`repack`)."""

    rows: tuple
    packing: tuple


def _recount_statements(dialect: str, settings: Settings) -> Recount:
    """The :class:`Recount` of the marked rows (built once: building costs more than running)."""
    key = (dialect, settings)
    if key in _RECOUNT:
        return _RECOUNT[key]
    d = RollupDirty.__table__.alias("d")
    r, ar = QueueCallRollup.__table__, QueueCallAgentRollup.__table__
    marked_q = select(d.c.server, d.c.queue, d.c.slot).where(d.c.kind == "q")
    marked_a = select(d.c.server, d.c.queue, d.c.agent, d.c.slot).where(d.c.kind == "a")
    q = _of_marked_calls(slot_counts(dialect, settings), dialect, d, "q", SLOT)
    a = _of_marked_calls(agent_counts(dialect, settings), dialect, d, "a", DAY)
    n = literal_column(str(DAY), BigInteger)
    days = select(d.c.server, d.c.queue, (d.c.slot - d.c.slot % n).label("day")).where(d.c.kind == "q").distinct()
    rd = QueueCallRollupDay.__table__
    m = days.subquery("m")
    packed = day_rows(dialect, join=(m, and_(m.c.server == r.c.server, m.c.queue == r.c.queue, r.c.slot >= m.c.day,
                                             r.c.slot < m.c.day + n)))
    nb = literal_column(str(BLOCK), BigInteger)
    blocks = (select(d.c.server, d.c.queue, d.c.agent, (d.c.slot - d.c.slot % nb).label("block"))
              .where(d.c.kind == "a").distinct())
    ab = QueueCallAgentRollupBlock.__table__
    mb = blocks.subquery("mb")
    # the marked blocks' day rows (just recounted), to be added up here (:func:`sum_block`)
    block_days = (select(ar.c.server, ar.c.queue, ar.c.agent, mb.c.block, ar.c.counts, ar.c.waits)
                  .join_from(ar, mb, and_(mb.c.server == ar.c.server, mb.c.queue == ar.c.queue,
                                          mb.c.agent == ar.c.agent, ar.c.day >= mb.c.block,
                                          ar.c.day < mb.c.block + nb))
                  .order_by(ar.c.server, ar.c.queue, ar.c.agent, mb.c.block))
    # the agents' and satisfaction reports' rows ("g" marks: any outcome, ratings, names)
    gr, gb = QueueCallGroupRollup.__table__, QueueCallGroupRollupBlock.__table__
    marked_g = select(d.c.server, d.c.queue, d.c.agent, d.c.slot).where(d.c.kind == "g")
    g = _of_marked_calls(call_groups.group_counts(dialect, settings.answer_target), dialect, d, "g", DAY)
    gblocks = (select(d.c.server, d.c.queue, d.c.agent, (d.c.slot - d.c.slot % nb).label("block"))
               .where(d.c.kind == "g").distinct())
    mg = gblocks.subquery("mg")
    packed_g = call_groups.block_sums(join=(mg, and_(mg.c.server == gr.c.server, mg.c.queue == gr.c.queue,
                                                     mg.c.agent == gr.c.agent, gr.c.day >= mg.c.block,
                                                     gr.c.day < mg.c.block + nb)))
    out = Recount(
        rows=(delete(r).where(tuple_(r.c.server, r.c.queue, r.c.slot).in_(marked_q)),
              insert(r).from_select(_columns(q), q),
              delete(ar).where(tuple_(ar.c.server, ar.c.queue, ar.c.agent, ar.c.day).in_(marked_a)),
              insert(ar).from_select(_columns(a), a),
              delete(gr).where(tuple_(gr.c.server, gr.c.queue, gr.c.agent, gr.c.day).in_(marked_g)),
              insert(gr).from_select(_columns(g), g)),
        packing=(delete(rd).where(tuple_(rd.c.server, rd.c.queue, rd.c.day).in_(days)),
                 insert(rd).from_select(_columns(packed), packed),
                 delete(ab).where(tuple_(ab.c.server, ab.c.queue, ab.c.agent, ab.c.block).in_(blocks)),
                 block_days,
                 delete(gb).where(tuple_(gb.c.server, gb.c.queue, gb.c.agent, gb.c.block).in_(gblocks)),
                 insert(gb).from_select(_columns(packed_g), packed_g)))
    _RECOUNT[key] = out
    return out


def repack(conn, dialect: str, settings: Settings) -> None:
    """A settle's steps after the recount of the marked rows: their days packed again, their
    agents' and groups' blocks summed again (:mod:`.rollup_adds` writes the rows otherwise)."""
    for stmt in _recount_statements(dialect, settings).packing:
        run_recount_statement(conn, stmt)


def settle(conn) -> int:
    """Recount the rollup rows the triggers marked dirty and clear the marks (the caller's
    transaction); returns how many were marked.  Cheap when none are: one SELECT.

    On PostgreSQL the marks are locked first: a concurrent settle of the same marks (another
    server's writer meeting a mark left by a hand-made fix) waits, then finds them gone."""
    marks = conn.execute(select(RollupDirty.kind).with_for_update()).all()
    if not marks:
        return 0
    settings = settings_for(conn)
    d = dialect_of(conn)
    register_functions(conn)
    for stmt in _recount_statements(d, settings).rows:  # the rows first: the packing reads them
        run_recount_statement(conn, stmt)
    repack(conn, d, settings)
    conn.execute(delete(RollupDirty))
    return len(marks)


def run_recount_statement(conn, stmt) -> None:
    """One of :func:`_recount_statements` (the Select: the marked agent blocks' day rows, each
    block their sum)."""
    if isinstance(stmt, Select):
        rows = conn.execute(stmt).all()
        blocks = [sum_block(*key, [r[4:] for r in days])
                  for key, days in itertools.groupby(rows, key=lambda r: tuple(r[:4]))]
        if blocks:
            conn.execute(insert(QueueCallAgentRollupBlock), blocks)
    else:
        conn.execute(stmt)


def sum_block(server: str, queue: str, agent: str, block: int, days: list) -> dict[str, Any]:
    """A :class:`QueueCallAgentRollupBlock` row from its day rows' ``(counts, waits)``
    (:func:`add_up`), as :func:`block_counts` counts them from the calls.  The writer's way:
    16 small rows in hand instead of 16 days of the agent's calls read again (20 blocks: 1-3 ms
    instead of 25)."""
    counts, waits = add_up(days)
    return {"server": server, "queue": queue, "agent": agent, "block": int(block), "counts": counts, "waits": waits}


def add_up(parts: list) -> tuple[bytes, bytes]:
    """Rows' ``(counts, waits)`` as one row of their calls together: the counters added up,
    the longest wait the longest, the waits merged and sorted (the sums of seconds may differ
    from a count of the calls in the last bits: added in another order)."""
    packed = np.frombuffer(b"".join(bytes(c) for c, _ in parts), dtype=LAYOUT)
    f = packed["f"]
    longest = float(np.fmax.reduce(f[:, 2])) if len(f) else math.nan
    counts = _PACK.pack(*packed["i"].sum(axis=0, dtype=np.int64).tolist(), *f[:, :2].sum(axis=0).tolist(), longest)
    waits = np.sort(np.frombuffer(b"".join(bytes(w) for _, w in parts), dtype=">f8"))
    return counts, waits.astype(">f8").tobytes()


def differences(conn) -> list[tuple[str, Any]]:
    """The rollup rows a rebuild would change (empty: the kept ones are exact).  Compares every
    row, the waits bytes exactly; sums of seconds to 1e-9 (the calls may be added in another
    order)."""
    settings = settings_for(conn)
    d = dialect_of(conn)
    register_functions(conn)
    c = QueueCall.__table__.c
    out: list[tuple[str, Any]] = []
    for table, q, key in ((QueueCallRollup, slot_counts(d, settings, where=[c.entered_at.is_not(None)]),
                           ("server", "queue", "slot")),
                          (QueueCallAgentRollup, agent_counts(d, settings, where=[c.entered_at.is_not(None)]),
                           ("server", "queue", "agent", "day")),
                          (QueueCallAgentRollupBlock, block_counts(d, settings, where=[c.entered_at.is_not(None)]),
                           ("server", "queue", "agent", "block"))):
        names = _columns(q)
        want = {tuple(m[k] for k in key): _norm(m, names) for m in conn.execute(q).mappings()}
        t = table.__table__
        have = {tuple(m[k] for k in key): _norm(m, names)
                for m in conn.execute(select(*[t.c[n] for n in names])).mappings()}
        for k in sorted(set(want) | set(have), key=str):
            a, b = want.get(k), have.get(k)
            if a is None or b is None or any(not _close(x, y) for x, y in zip(a, b)):
                out.append((table.__tablename__, k))
    # a packed day holds exactly its slot rows (in any order)
    slots: dict[tuple, set] = {}
    for m in conn.execute(select(QueueCallRollup.__table__)).mappings():
        slots.setdefault((m["server"], m["queue"], m["slot"] - m["slot"] % DAY), set()).add(
            (m["slot"], bytes(m["counts"]), bytes(m["waits"])))
    days: dict[tuple, set] = {}
    for m in conn.execute(select(QueueCallRollupDay.__table__)).mappings():
        days[(m["server"], m["queue"], m["day"])] = set(unpack_day(m))
    for k in sorted(set(slots) | set(days), key=str):
        if slots.get(k) != days.get(k):
            out.append((QueueCallRollupDay.__tablename__, k))
    # the agents' and satisfaction reports' rows: each a recount of its calls, each block its days
    for table, q, key in ((QueueCallGroupRollup, call_groups.group_counts(
                               d, settings.answer_target, where=[c.entered_at.is_not(None)]),
                           ("server", "queue", "agent", "day")),
                          (QueueCallGroupRollupBlock, call_groups.block_sums(), ("server", "queue", "agent", "block"))):
        names = _columns(q)
        want = {tuple(m[k] for k in key): tuple(m[n] for n in names) for m in conn.execute(q).mappings()}
        t = table.__table__
        have = {tuple(m[k] for k in key): tuple(m[n] for n in names)
                for m in conn.execute(select(*[t.c[n] for n in names])).mappings()}
        for k in sorted(set(want) | set(have), key=str):
            a, b = want.get(k), have.get(k)
            if a is None or b is None or any(not _close(x, y) for x, y in zip(a, b)):
                out.append((table.__tablename__, k))
    return out


def unpack_day(m) -> list[tuple[int, bytes, bytes]]:
    """A packed day's slot rows: ``[(slot, counts, waits), ...]``."""
    slots = struct.unpack(f">{len(m['slots']) // 8}q", bytes(m["slots"]))
    nwaits = struct.unpack(f">{len(slots)}i", bytes(m["nwaits"]))
    counts, waits, out, at = bytes(m["counts"]), bytes(m["waits"]), [], 0
    for i, (slot, n) in enumerate(zip(slots, nwaits)):
        out.append((slot, counts[i * LAYOUT.itemsize:(i + 1) * LAYOUT.itemsize], waits[at:at + 8 * n]))
        at += 8 * n
    return out


def _norm(m, names: list[str]) -> tuple:
    out = []
    for n in names:
        if n == "counts":
            out.extend(unpack_counts(m[n]).values())
        else:
            out.append(bytes(m[n]) if n == "waits" else m[n])
    return tuple(out)


def _close(x, y) -> bool:
    if isinstance(x, float) or isinstance(y, float):
        return x is not None and y is not None and abs(float(x) - float(y)) <= 1e-9 * max(1.0, abs(float(x)))
    return x == y
