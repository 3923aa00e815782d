"""Rollups of the inbound queue calls, kept at write time, so a period report costs its days.

Two tables (:mod:`.models`): :class:`QueueCallRollup` counts the calls of one (server,
queue, 15-minute UTC slot) and :class:`QueueCallAgentRollup` the answered calls of one
(server, queue, agent, UTC day), with the very counters :func:`report_queries._aggregates`
computes, and the slot's waits sorted (exact p90 over any union of rows).

Kept exact without delta arithmetic: triggers on ``queue_calls`` (migration 0999) mark the
rows a write touches in ``queue_call_rollup_dirty`` (old and new key of an update, on every
counted column), whatever writes; :func:`settle` recounts those rows from the calls of their
slot (tens of calls, by the ``(queue, entered_at)`` index) and clears the marks.  The store
settles after every batch, in its transaction (:func:`.store.write_calls`); a report settles
what another writer left (a hand-made fix in SQL) before it reads.

The answer target and short-abandon limit are part of the counters' meaning: the settings
row says what they were counted with; :func:`check_settings` refuses others
(:class:`RollupsStale`, naming ``callcenter report rebuild-rollups``).
"""
from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import BigInteger, and_, case, cast, delete, exists, func, insert, literal_column, select, tuple_
from sqlalchemy.sql import ColumnElement

from ..store.db import MigrationRequired
from . import report_queries as rq
from . import stats
from .models import QueueCall, QueueCallAgentRollup, QueueCallRollup, RollupDirty, RollupSettings

SLOT = 900      # seconds: every real UTC offset is whole quarter hours
DAY = 86400
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


def dialect_of(conn) -> str:
    return conn.get_bind().dialect.name if hasattr(conn, "get_bind") else conn.dialect.name


def _dbapi(conn):
    """The driver's connection of a Session or a Connection (SQLite: to register functions)."""
    c = conn.connection() if hasattr(conn, "get_bind") else conn
    return c.connection.driver_connection


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


class _Cat:
    """SQLite aggregate: the concatenation of blobs (the waits of a union of rollup rows)."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def step(self, b: bytes | None) -> None:
        if b:
            self.parts.append(b)

    def finalize(self) -> bytes:
        return b"".join(self.parts)


def register_functions(conn) -> None:
    """``cc_waits`` and ``cc_cat`` on a SQLite connection (no-op elsewhere)."""
    if dialect_of(conn) == "sqlite":
        raw = _dbapi(conn)
        raw.create_aggregate("cc_waits", 1, _Waits)
        raw.create_aggregate("cc_cat", 1, _Cat)


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


def concat(dialect: str, col: ColumnElement) -> ColumnElement:
    if dialect == "postgresql":
        return func.coalesce(func.string_agg(col, literal_column("''::bytea")), literal_column("''::bytea"))
    return func.cc_cat(col)


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
    q = select(*cols, *[v.label(k) for k, v in aggs.items()], packed_waits(dialect, c).label("waits"))
    q = q.where(c.direction == "inbound", *where)
    return q.group_by(*([c.server] if by_server else []), c.queue, slot)


def agent_counts(dialect: str, settings: Settings, *, where: Iterable[ColumnElement] = (),
                 by_server: bool = True):
    """The same per (server, queue, agent, UTC day) over answered calls with an agent: the
    definition of a :class:`QueueCallAgentRollup` row (``report_queries.by_agent``'s calls)."""
    c = QueueCall.__table__.c
    aggs = rq._aggregates(c, settings.answer_target, settings.short_abandon, False)
    day = slot_of(dialect, c.entered_at, DAY)
    cols = ([c.server] if by_server else []) + [c.queue, c.agent, day.label("day")]
    q = select(*cols, *[v.label(k) for k, v in aggs.items()], packed_waits(dialect, c).label("waits"))
    q = q.where(c.direction == "inbound", c.outcome.in_(stats.ANSWERED), c.agent != "", *where)
    return q.group_by(*([c.server] if by_server else []), c.queue, c.agent, day)


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

def rebuild(conn, settings: Settings) -> tuple[int, int]:
    """Recount every rollup from the calls with ``settings`` (one transaction: the caller's);
    returns (slot rows, agent-day rows)."""
    d = dialect_of(conn)
    register_functions(conn)
    for t in (QueueCallRollup, QueueCallAgentRollup, RollupDirty):
        conn.execute(delete(t))
    _save_settings(conn, settings)
    c = QueueCall.__table__.c
    q = slot_counts(d, settings, where=[c.entered_at.is_not(None)])
    conn.execute(insert(QueueCallRollup).from_select(_columns(q), q))
    q = agent_counts(d, settings, where=[c.entered_at.is_not(None)])
    conn.execute(insert(QueueCallAgentRollup).from_select(_columns(q), q))
    return (conn.execute(select(func.count()).select_from(QueueCallRollup)).scalar_one(),
            conn.execute(select(func.count()).select_from(QueueCallAgentRollup)).scalar_one())


def _slot_start(dialect: str, epoch: ColumnElement) -> ColumnElement:
    """Epoch seconds as what ``entered_at`` compares with (SQLite: UTC text; the stored text's
    fraction sorts it after the whole second, so ``>=``/``<`` bounds stay exact)."""
    if dialect == "postgresql":
        return func.to_timestamp(epoch)
    return func.datetime(epoch, "unixepoch")


_RECOUNT: dict[tuple[str, Settings], tuple] = {}


def _recount_statements(dialect: str, settings: Settings) -> tuple:
    """(delete, insert) of the dirty slot rows and of the dirty agent-day rows: each one
    statement over the marks joined to their calls (built once: building costs more than
    running)."""
    key = (dialect, settings)
    if key in _RECOUNT:
        return _RECOUNT[key]
    c = QueueCall.__table__.c
    d = RollupDirty.__table__.alias("d")
    r, ar = QueueCallRollup.__table__, QueueCallAgentRollup.__table__
    marked_q = select(d.c.server, d.c.queue, d.c.slot).where(d.c.kind == "q")
    marked_a = select(d.c.server, d.c.queue, d.c.agent, d.c.slot).where(d.c.kind == "a")
    q = slot_counts(dialect, settings).join_from(QueueCall.__table__, d, and_(
        d.c.kind == "q", d.c.server == c.server, d.c.queue == c.queue,
        c.entered_at >= _slot_start(dialect, d.c.slot), c.entered_at < _slot_start(dialect, d.c.slot + SLOT)))
    a = agent_counts(dialect, settings).join_from(QueueCall.__table__, d, and_(
        d.c.kind == "a", d.c.server == c.server, d.c.queue == c.queue, d.c.agent == c.agent,
        c.entered_at >= _slot_start(dialect, d.c.slot), c.entered_at < _slot_start(dialect, d.c.slot + DAY)))
    out = (delete(r).where(tuple_(r.c.server, r.c.queue, r.c.slot).in_(marked_q)),
           insert(r).from_select(_columns(q), q),
           delete(ar).where(tuple_(ar.c.server, ar.c.queue, ar.c.agent, ar.c.day).in_(marked_a)),
           insert(ar).from_select(_columns(a), a))
    _RECOUNT[key] = out
    return out


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
    for stmt in _recount_statements(d, settings):
        conn.execute(stmt)
    conn.execute(delete(RollupDirty))
    return len(marks)


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
                           ("server", "queue", "agent", "day"))):
        names = _columns(q)
        want = {tuple(m[k] for k in key): _norm(m, names) for m in conn.execute(q).mappings()}
        t = table.__table__
        have = {tuple(m[k] for k in key): _norm(m, names)
                for m in conn.execute(select(*[t.c[n] for n in names])).mappings()}
        for k in sorted(set(want) | set(have), key=str):
            a, b = want.get(k), have.get(k)
            if a is None or b is None or any(not _close(x, y) for x, y in zip(a, b)):
                out.append((table.__tablename__, k))
    return out


def _norm(m, names: list[str]) -> tuple:
    return tuple(bytes(m[n]) if n == "waits" else m[n] for n in names)


def _close(x, y) -> bool:
    if isinstance(x, float) or isinstance(y, float):
        return x is not None and y is not None and abs(float(x) - float(y)) <= 1e-9 * max(1.0, abs(float(x)))
    return x == y
