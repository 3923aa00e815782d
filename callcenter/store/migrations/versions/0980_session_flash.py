"""A one-time message per login session ("flash"): the confirmation a form's redirect
shows once on the next page, kept with the session instead of in the URL.

Revision ID: 0980_session_flash
Revises: 0975_agent_sessions
"""
from alembic import op
import sqlalchemy as sa

revision = "0980_session_flash"
down_revision = "0975_agent_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("web_sessions") as batch:
        batch.add_column(sa.Column("flash", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("web_sessions") as batch:
        batch.drop_column("flash")
