"""The queue-call tracker's durable checkpoint (restart recovery starts there).

Seeded from the newest stored queue-call moment, so the first start after the upgrade
recovers the time the service was down for it.

Revision ID: 0960_queuecall_checkpoint
Revises: 0950_phone_numbers_e164
"""
from alembic import op
import sqlalchemy as sa

revision = "0960_queuecall_checkpoint"
down_revision = "0950_phone_numbers_e164"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queuecall_checkpoints",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("heard_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_queuecall_checkpoints"),
    )
    op.execute("INSERT INTO queuecall_checkpoints (name, heard_at) "
               "SELECT 'queuecalls', MAX(COALESCE(ended_at, entered_at)) FROM queue_calls "
               "HAVING MAX(COALESCE(ended_at, entered_at)) IS NOT NULL")


def downgrade() -> None:
    op.drop_table("queuecall_checkpoints")
