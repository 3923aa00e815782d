"""Queue calls carry the caller's post-call satisfaction rating.

After the agent hangs up, ``Queue(...,c)`` lets the caller continue in the dialplan to
the rating flow (``ivr_flows/satisfaction.yaml``); its answer is stored on the queue
call it rates: ``rating_outcome`` (rated | no_input | invalid | hangup; empty: no
rating was offered, e.g. the caller hung up first), the key pressed (``rating_score``),
its level on the flow's scale (satisfied | neutral | unsatisfied), when, and the IVR
session that asked.  The agent is the queue call's own ``agent``.

Revision ID: 0990_queuecall_rating
Revises: 0980_session_flash
"""
import sqlalchemy as sa
from alembic import op

revision = "0990_queuecall_rating"
down_revision = "0980_session_flash"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("queue_calls") as b:
        b.add_column(sa.Column("rating_outcome", sa.String(12), nullable=False, server_default=""))
        b.add_column(sa.Column("rating_score", sa.Integer(), nullable=True))
        b.add_column(sa.Column("rating_level", sa.String(12), nullable=False, server_default=""))
        b.add_column(sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True))
        b.add_column(sa.Column("rating_session_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("queue_calls") as b:
        b.drop_column("rating_session_id")
        b.drop_column("rated_at")
        b.drop_column("rating_level")
        b.drop_column("rating_score")
        b.drop_column("rating_outcome")
