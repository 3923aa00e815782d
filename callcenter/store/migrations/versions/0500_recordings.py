"""Recordings catalogue.

Revision ID: 0500_recordings
Revises: 0001_base
"""
from alembic import op
import sqlalchemy as sa

revision = "0500_recordings"
down_revision = "0001_base"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("uniqueid", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(128), nullable=False),
        sa.Column("queue", sa.String(64), nullable=True),
        sa.Column("campaign", sa.String(64), nullable=True),
        sa.Column("agent", sa.String(128), nullable=True),
        sa.Column("agent_name", sa.String(128), nullable=True),
        sa.Column("caller_number", sa.String(32), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("legal_hold", sa.Boolean(), nullable=False),
        sa.Column("purge_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_recordings"),
        sa.UniqueConstraint("path", name="uq_recordings_path"),
    )
    op.create_index("ix_recordings_uniqueid", "recordings", ["uniqueid"])
    op.create_index("ix_recordings_ticket_id", "recordings", ["ticket_id"])
    op.create_index("ix_recordings_started_at", "recordings", ["started_at"])
    op.create_index("ix_recordings_status_purge_after", "recordings", ["status", "purge_after"])


def downgrade() -> None:
    op.drop_table("recordings")
