"""The packed rollup rows stored uncompressed (PostgreSQL ``STORAGE EXTERNAL``).

A year's report reads every packed day row (45 MB of counters and waits for 8 queues)
and every agent block (37 MB).  Compressed (pglz, the default), the database spent more
time decompressing them than sending them: 60-95 ms of a 120-170 ms read of the days;
stored as they are, 30-40 ms.  They take three times the space (50 MB for a year of
1,000,000 calls, against 17 MB; the calls themselves take about 500 MB).  The stored rows
are rewritten so the change holds for them too (each value made anew is stored with the
column's new storage).  SQLite never compresses: nothing to do there.

Revision ID: 0999e_rollup_storage
Revises: 0999d_claim_indexes
"""
from alembic import op

revision = "0999e_rollup_storage"
down_revision = "0999d_claim_indexes"
branch_labels = None
depends_on = None

PACKED = {
    "queue_call_rollup_days": ("slots", "counts", "nwaits", "waits"),
    "queue_call_agent_rollup_blocks": ("counts", "waits"),
}


def _store(storage: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, cols in PACKED.items():
        op.execute(f"ALTER TABLE {table} " + ", ".join(f"ALTER COLUMN {c} SET STORAGE {storage}" for c in cols))
        # a value made anew (`|| ''`) is stored with the column's storage; the old ones kept theirs
        op.execute(f"UPDATE {table} SET " + ", ".join(f"{c} = {c} || ''::bytea" for c in cols))


def upgrade() -> None:
    _store("EXTERNAL")


def downgrade() -> None:
    _store("EXTENDED")
