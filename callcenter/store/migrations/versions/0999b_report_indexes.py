"""Report indexes: the reports read a year of queue calls from an index, not from the table.

* ``ix_queue_calls_report`` replaces ``ix_queue_calls_direction_entered`` (its first two
  columns are the same, so every query that used it still does) and carries every column
  the agent, satisfaction, abandoned and staffing-plan figures read: on SQLite those
  queries are index-only (the staffing plan's 10 weeks of history: 0.6-0.9 s instead of
  2.2 s of row lookups).
* ``ix_queue_calls_agents``: the same columns, by agent first: SQLite (no hash aggregate)
  groups the agents report one agent at a time from it (``agent_queries.call_groups``), a
  year in about 1 s instead of 4-8 s sorting every call.
* ``ix_queue_calls_abandoned``: the abandoned and timed-out calls only (partial), so the
  abandoned list's count and its first page read those, in time order.

Revision ID: 0999b_report_indexes
Revises: 0998_asterisk_servers
"""
import sqlalchemy as sa
from alembic import op

revision = "0999b_report_indexes"
down_revision = "0999_queue_call_rollups"
branch_labels = None
depends_on = None

REPORT_COLUMNS = ["direction", "entered_at", "queue", "agent", "outcome", "answered_at", "wait_seconds",
                  "talk_seconds", "gap", "rating_outcome", "rating_level", "server", "agent_name"]
AGENT_COLUMNS = ["direction", "agent", "entered_at", "queue", "outcome", "answered_at", "wait_seconds",
                 "talk_seconds", "rating_outcome", "rating_level", "server", "agent_name"]
ABANDONED = "outcome IN ('abandoned', 'timeout')"


def upgrade() -> None:
    op.create_index("ix_queue_calls_report", "queue_calls", REPORT_COLUMNS)
    op.drop_index("ix_queue_calls_direction_entered", table_name="queue_calls")
    op.create_index("ix_queue_calls_agents", "queue_calls", AGENT_COLUMNS)
    op.create_index("ix_queue_calls_abandoned", "queue_calls", ["direction", "entered_at"],
                    sqlite_where=sa.text(ABANDONED), postgresql_where=sa.text(ABANDONED))


def downgrade() -> None:
    op.drop_index("ix_queue_calls_abandoned", table_name="queue_calls")
    op.drop_index("ix_queue_calls_agents", table_name="queue_calls")
    op.create_index("ix_queue_calls_direction_entered", "queue_calls", ["direction", "entered_at"])
    op.drop_index("ix_queue_calls_report", table_name="queue_calls")
