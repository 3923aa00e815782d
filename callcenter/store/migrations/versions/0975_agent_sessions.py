"""Agents' login and pause history (``agent_sessions``) for the agent-performance report.

Before this upgrade nothing of it was stored: login and pause time start counting at the
first start of the upgraded service (the report shows no login time for earlier days,
its calls and talk time are there as before).

Revision ID: 0975_agent_sessions
Revises: 0970_call_outcome_per_call
"""
from alembic import op
import sqlalchemy as sa

revision = "0975_agent_sessions"
down_revision = "0970_call_outcome_per_call"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interface", sa.String(128), nullable=False),
        sa.Column("agent_name", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_agent_sessions"),
    )
    op.create_index("ix_agent_sessions_interface_started", "agent_sessions", ["interface", "started_at"])
    op.create_index("ix_agent_sessions_open", "agent_sessions", ["ended_at"])


def downgrade() -> None:
    op.drop_index("ix_agent_sessions_open", table_name="agent_sessions")
    op.drop_index("ix_agent_sessions_interface_started", table_name="agent_sessions")
    op.drop_table("agent_sessions")
