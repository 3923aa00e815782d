"""SQLite recounts a write's rollup marks from the marks, whatever ANALYZE last saw.

Statistics taken while the marks table was full (a bulk load marks every call: 729,034
marks in the bench's year) made SQLite scan all the calls and probe the marks for every
settle: 2.7 + 1.2 + 0.9 s a write at 1,000,000 calls.  The recount now reads the marks
first (``store.join_order.OuterFirst``: CROSS JOIN) and the calls by a named index."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select

from callcenter.queuecalls import rollups
from callcenter.queuecalls.models import QueueCall, RollupDirty
from callcenter.store import Database, migrate

STALE = [  # sqlite_stat1 as the bench's ANALYZE left it: the marks table full, the calls many
    ("queue_call_rollup_dirty", "sqlite_autoindex_queue_call_rollup_dirty_1", "729034 243012 243012 30377 563 1"),
    ("queue_calls", "ix_queue_calls_queue_entered", "1000000 125000 1"),
    ("queue_calls", "ix_queue_calls_agent_entered", "1000000 12346 1"),
    ("queue_calls", "ix_queue_calls_report", "1000000 1000000 1 1 1 1 1 1 1 1 1 1 1 1"),
    ("queue_calls", "sqlite_autoindex_queue_calls_1", "1000000 1000000 1 1 1"),
]
INDEX = {1: "ix_queue_calls_queue_entered", 3: "ix_queue_calls_agent_entered", 5: "ix_queue_calls_agent_entered"}


def test_the_recount_reads_the_marks_first_and_the_calls_by_index_under_stale_statistics(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'cc.sqlite'}")
    migrate.upgrade(db.engine)
    with db.engine.begin() as c:
        c.exec_driver_sql("ANALYZE")
        c.exec_driver_sql("DELETE FROM sqlite_stat1")
        c.exec_driver_sql("INSERT INTO sqlite_stat1 VALUES (?, ?, ?)", STALE[0])
        for row in STALE[1:]:
            c.exec_driver_sql("INSERT INTO sqlite_stat1 VALUES (?, ?, ?)", row)
    db.engine.dispose()  # the statistics are read when a connection opens
    t = dt.datetime(2026, 4, 2, 9, 3, tzinfo=dt.timezone.utc)
    with db.engine.connect() as conn:
        tr = conn.begin()
        rollups.register_functions(conn)
        conn.execute(insert(QueueCall), [dict(uniqueid="1.1", linkedid="1.1", queue="consultation", leg=1,
                                              outcome="answered", entered_at=t, wait_seconds=4.0, agent="PJSIP/1001")])
        assert {k for (k,) in conn.execute(select(RollupDirty.kind))} == {"q", "a", "g"}  # the triggers' marks
        statements = rollups._recount_statements("sqlite", rollups.settings_for(conn)).rows
        raw = conn.connection.driver_connection
        for i, index in INDEX.items():
            seen: list[str] = []
            raw.set_trace_callback(seen.append)
            conn.execute(statements[i])
            raw.set_trace_callback(None)
            sql = next(s for s in seen if s.startswith("INSERT"))
            plan = [r[3] for r in raw.execute("EXPLAIN QUERY PLAN " + sql[sql.index("SELECT"):])]
            assert plan[0] == "SCAN d", plan
            assert plan[1].startswith(f"SEARCH queue_calls USING INDEX {index} ("), plan
        tr.rollback()
    db.close()
