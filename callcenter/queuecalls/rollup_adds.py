"""A write of new calls adds them to the rollups instead of recounting the slots they land in.

:func:`.rollups.settle` recounts every marked row from all the calls of its slot (or agent's
day): exact whatever wrote, but the cost grows with the slot (the AMI ingest bench: one slot
holding every call, 20-60 ms a write).  When the rows were exact before a transaction and the
transaction only inserts calls, a recount of a row is the row plus what the new calls count
(the definitions are sums, a greatest, and the sorted union of waits: :func:`.rollups.add_up`),
so the writer counts the new calls alone (by their ids) and adds them; the days, blocks and
marks then go as in a settle.  ``tests/queuecalls/test_rollup_adds.py`` compares with a rebuild.

"Exact before and nothing else changes" holds when :func:`begin` says so: on SQLite, with
nothing marked once the write lock is taken (a DELETE of no row: no other writer can change a
call or mark a row until the commit).  On PostgreSQL a concurrent transaction (a hand-made
fix) could commit calls and a mark of the same row between the check and the insert, and the
marks cannot tell whose: the writer recounts there (:func:`.rollups.settle`).
"""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import Integer, bindparam, delete, false, insert, select, tuple_

from . import call_groups, rollups
from .models import QueueCall, QueueCallAgentRollup, QueueCallGroupRollup, QueueCallRollup, RollupDirty

CHUNK = 1000  # ids a statement (SQLite binds at most 32,766 values)
_STATEMENTS: dict[tuple, tuple] = {}


def begin(conn) -> bool:
    """May the calls this transaction is about to insert be added (:func:`add`)?  On SQLite
    the write lock is taken here, then yes when no row is marked (another writer's change
    would be marked); elsewhere no."""
    if rollups.dialect_of(conn) != "sqlite":
        return False
    conn.execute(delete(RollupDirty).where(false()))  # takes the write lock: nothing else writes until commit
    return conn.execute(select(RollupDirty.kind).limit(1)).first() is None


def _statements(dialect: str, settings: rollups.Settings, ranged: bool = False) -> tuple:
    """Per rollup table: (the table, its key's length, the new calls' rows by id, the
    table's marked rows, the deletion of those, the rows' column names); built once
    (building costs more than running).  ``ranged``: the new calls are the ids ``lo`` to
    ``hi`` (an ``IN`` list is rendered again at every run: a fifth of the adds' time)."""
    key = (dialect, settings, ranged)
    if key in _STATEMENTS:
        return _STATEMENTS[key]
    c = QueueCall.__table__.c
    chosen = (c.id.between(bindparam("lo", type_=Integer), bindparam("hi", type_=Integer)) if ranged
              else c.id.in_(bindparam("ids", expanding=True)))
    new = [chosen, c.entered_at.is_not(None)]
    d = RollupDirty.__table__.c
    out = []
    for table, kind, keys, counted in (
            (QueueCallRollup, "q", ("server", "queue", "slot"), rollups.slot_counts(dialect, settings, where=new)),
            (QueueCallAgentRollup, "a", ("server", "queue", "agent", "day"),
             rollups.agent_counts(dialect, settings, where=new)),
            (QueueCallGroupRollup, "g", ("server", "queue", "agent", "day"),
             call_groups.group_counts(dialect, settings.answer_target, where=new))):
        t = table.__table__
        marked = select(*[d[k] for k in ("server", "queue", "agent", "slot") if k != "agent" or kind != "q"]).where(
            d.kind == kind)
        these = tuple_(*[t.c[k] for k in keys]).in_(marked)
        names = [col.name for col in counted.selected_columns]
        out.append((table, len(keys), counted, select(*[t.c[n] for n in names]).where(these), delete(t).where(these),
                    names))
    _STATEMENTS[key] = tuple(out)
    return _STATEMENTS[key]


def add(conn, ids: Iterable[int]) -> int:
    """Add the calls ``ids`` (inserted by this transaction, after :func:`begin` said yes) to
    every rollup, and clear the marks their insert made; returns how many there were."""
    ids = list(ids)
    marks = conn.execute(select(RollupDirty.kind)).all()
    if not marks:
        return 0
    settings = rollups.settings_for(conn)
    d = rollups.dialect_of(conn)
    rollups.register_functions(conn)
    # one INSERT's rows under the write lock are consecutive ids: then they are a range
    # (distinct integers, as many as the span holds), else the ids in chunks
    lo, hi = (min(ids), max(ids)) if ids else (0, -1)
    ranged = bool(ids) and hi - lo + 1 == len(set(ids)) == len(ids)
    runs = [{"lo": lo, "hi": hi}] if ranged else [
        {"ids": ids[i:i + CHUNK]} for i in range(0, len(ids), CHUNK)]
    for table, nkeys, counted, old, gone, names in _statements(d, settings, ranged):
        parts: dict[tuple, list] = {}
        for row in conn.execute(old):
            parts.setdefault(tuple(row[:nkeys]), []).append(row[nkeys:])
        for params in runs:
            for row in conn.execute(counted, params):
                parts.setdefault(tuple(row[:nkeys]), []).append(row[nkeys:])
        conn.execute(gone)
        rows = [dict(zip(names, (*key, *_sum(table, rs)))) for key, rs in parts.items()]
        if rows:
            conn.execute(insert(table), rows)
    rollups.repack(conn, d, settings)
    conn.execute(delete(RollupDirty))
    return len(marks)


def _sum(table, parts: list) -> tuple:
    """The columns (after the key) of one row counting the calls of ``parts`` (rows of it)."""
    if len(parts) == 1:
        return tuple(parts[0])
    if table is not QueueCallGroupRollup:
        return rollups.add_up(parts)
    out = []
    for i, name in enumerate(call_groups.COLUMNS):
        values = [p[i] for p in parts]
        if name == "agent_name":  # the greatest, as SQL's max: NULLs aside
            named = [v for v in values if v is not None]
            out.append(max(named) if named else None)
        else:
            out.append(sum(values))
    return tuple(out)
