"""IVR sessions.

Revision ID: 0200_ivr
Revises: 0001_base
"""
from alembic import op
import sqlalchemy as sa

revision = "0200_ivr"
down_revision = "0001_base"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ivr_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flow", sa.String(64), nullable=False),
        sa.Column("uniqueid", sa.String(64), nullable=False),
        sa.Column("caller_number", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("path", sa.JSON(), nullable=False),
        sa.Column("digits", sa.String(256), nullable=False),
        sa.Column("result", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ivr_sessions"),
    )
    op.create_index("ix_ivr_sessions_started_at", "ivr_sessions", ["started_at"])
    op.create_index("ix_ivr_sessions_uniqueid", "ivr_sessions", ["uniqueid"])


def downgrade() -> None:
    op.drop_table("ivr_sessions")
