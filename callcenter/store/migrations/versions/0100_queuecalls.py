"""Queue calls and AMI outages.

Revision ID: 0100_queuecalls
Revises: 0001_base
"""
from alembic import op
import sqlalchemy as sa

revision = "0100_queuecalls"
down_revision = "0001_base"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uniqueid", sa.String(64), nullable=False),
        sa.Column("linkedid", sa.String(64), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("leg", sa.Integer(), nullable=False),
        sa.Column("caller_number", sa.String(32), nullable=False),
        sa.Column("caller_name", sa.String(128), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("wait_seconds", sa.Float(), nullable=True),
        sa.Column("agent", sa.String(128), nullable=False),
        sa.Column("agent_name", sa.String(128), nullable=False),
        sa.Column("talk_seconds", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("within_target", sa.Boolean(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("ivr_session_id", sa.Integer(), nullable=True),
        sa.Column("gap", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_queue_calls"),
        sa.UniqueConstraint("uniqueid", "queue", "leg", name="uq_queue_calls_key"),
    )
    op.create_index("ix_queue_calls_entered_at", "queue_calls", ["entered_at"])
    op.create_index("ix_queue_calls_agent", "queue_calls", ["agent"])
    op.create_index("ix_queue_calls_queue_entered", "queue_calls", ["queue", "entered_at"])
    op.create_table(
        "ami_outages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recovered_from_queue_log", sa.Boolean(), nullable=False),
        sa.Column("recovered_calls", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ami_outages"),
    )
    op.create_index("ix_ami_outages_start", "ami_outages", ["start"])


def downgrade() -> None:
    op.drop_table("ami_outages")
    op.drop_table("queue_calls")
