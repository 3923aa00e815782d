"""Queue calls carry their direction; agents reserved by the dialer are tracked.

A queue call that belongs to a dial attempt (the answered patient waiting for an
agent) is outbound: campaign and attempt are stored with it, and the inbound
figures (answer-time report, wallboard, service level, Erlang C) leave it out.
``agent_reservations`` holds the queue member a progressive attempt has taken
out of inbound distribution (paused with reason ``dialer:<attempt>``) until the
attempt ends; one row per interface, so two dialer instances never take the
same agent.

Revision ID: 0920_outbound_queue_calls
Revises: 0911_dialer_agent_interface
"""
import sqlalchemy as sa
from alembic import op

revision = "0920_outbound_queue_calls"
down_revision = "0911_dialer_agent_interface"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("queue_calls") as b:
        b.add_column(sa.Column("direction", sa.String(8), nullable=False, server_default="inbound"))
        b.add_column(sa.Column("campaign_id", sa.Integer(), nullable=True))
        b.add_column(sa.Column("attempt_id", sa.Integer(), nullable=True))
    op.create_index("ix_queue_calls_direction_entered", "queue_calls", ["direction", "entered_at"])
    op.create_table(
        "agent_reservations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interface", sa.String(128), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("attempt_id", sa.Integer(), nullable=False),
        sa.Column("instance", sa.String(64), nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agent_reservations"),
        sa.UniqueConstraint("interface", name="uq_agent_reservations_interface"),
    )
    op.create_index("ix_agent_reservations_instance", "agent_reservations", ["instance"])


def downgrade() -> None:
    op.drop_index("ix_agent_reservations_instance", table_name="agent_reservations")
    op.drop_table("agent_reservations")
    op.drop_index("ix_queue_calls_direction_entered", table_name="queue_calls")
    with op.batch_alter_table("queue_calls") as b:
        b.drop_column("attempt_id")
        b.drop_column("campaign_id")
        b.drop_column("direction")
