"""Dialer: the queue member interface that took an attempt's call.

The member name ("Agent 1001") is free text and may match another user's display name;
the interface is unique per member, so it is what ties a call to the agent who may record
its outcome.  Older attempts keep an empty interface.

Revision ID: 0911_dialer_agent_interface
Revises: 0910_dialer_one_open_contact
"""
import sqlalchemy as sa
from alembic import op

revision = "0911_dialer_agent_interface"
down_revision = "0910_dialer_one_open_contact"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dial_attempts") as batch:
        batch.add_column(sa.Column("agent_interface", sa.String(128), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("dial_attempts") as batch:
        batch.drop_column("agent_interface")
