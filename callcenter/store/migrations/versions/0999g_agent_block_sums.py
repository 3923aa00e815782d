"""Agent blocks hold their 16 days' counters added up, not run together.

A ``queue_call_agent_rollup_blocks`` row was its agent-day rows packed: 16 ``counts``
records (136 bytes each) a report added up.  A year's "By agent" (80 agents, 8 queues) sent
31 MB of them from the database, which concatenated them on one backend while the client
waited.  A block's ``counts`` is now one record counted from the block's calls
(``rollups.block_counts``; its waits sorted), so the same read sends 2 MB of counters beside
the waits.  The tables' shape does not change; the existing blocks are recounted here with
the settings the rollups were counted with (their settings row), as ``callcenter report
rebuild-rollups`` would.  Downgrade packs the day rows again.

Revision ID: 0999g_agent_block_sums
Revises: 0999f_call_group_rollups
"""
from alembic import op

revision = "0999g_agent_block_sums"
down_revision = "0999f_call_group_rollups"
branch_labels = None
depends_on = None

BLOCK = 16 * 86400


def upgrade() -> None:
    # the counting is the code's own, with the settings the other rollups were counted with
    from callcenter.queuecalls import rollups

    bind = op.get_bind()
    settings = rollups.stored_settings(bind)
    if settings is not None:  # none: no rollups yet, the start-up's check counts them all
        rollups.register_functions(bind)
        rollups.rebuild_agent_blocks(bind, settings)


def downgrade() -> None:
    """The blocks as before: each its day rows' ``counts`` and ``waits`` run together."""
    pg = op.get_bind().dialect.name == "postgresql"
    concat = ((lambda c: f"coalesce(string_agg({c}, ''::bytea), ''::bytea)") if pg else
              (lambda c: f"coalesce(cast(group_concat({c}, '') as blob), X'')"))
    op.execute("DELETE FROM queue_call_agent_rollup_blocks")
    op.execute(f"INSERT INTO queue_call_agent_rollup_blocks (server, queue, agent, block, counts, waits) "
               f"SELECT server, queue, agent, day - day % {BLOCK}, {concat('counts')}, {concat('waits')} "
               f"FROM queue_call_agent_rollups GROUP BY server, queue, agent, day - day % {BLOCK}")
