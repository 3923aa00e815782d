"""Dialer: index for the per-number gap between calls of different contacts.

Revision ID: 0401_dialer_phone_gap
Revises: 0400_dialer
"""
from alembic import op

revision = "0401_dialer_phone_gap"
down_revision = "0400_dialer"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_dial_attempts_phone_started", "dial_attempts", ["phone", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_dial_attempts_phone_started", table_name="dial_attempts")
