"""Several Asterisk servers: queue calls, outages, checkpoints, recordings and campaigns carry one.

A queue call's key becomes (server, uniqueid, queue, leg): two Asterisk servers may hand
out the same Uniqueid.  The tracker's checkpoint is kept per server (each one recovers
its own queue_log).  ``live_snapshots``: each server's live queues as its consumer sees
them, for the other instances' wallboards (PostgreSQL NOTIFY says when one changed).
Existing rows belong to the single server of before, ``default``
(the name ``[ami]`` gets unless it sets one).

Revision ID: 0998_asterisk_servers
Revises: 0995_appointment_answers
"""
import sqlalchemy as sa
from alembic import op

revision = "0998_asterisk_servers"
down_revision = "0995_appointment_answers"
branch_labels = None
depends_on = None

DEFAULT = "default"


def _server() -> sa.Column:
    return sa.Column("server", sa.String(32), nullable=False, server_default=DEFAULT)


def upgrade() -> None:
    with op.batch_alter_table("queue_calls") as b:
        b.add_column(_server())
        b.drop_constraint("uq_queue_calls_key", type_="unique")
        b.create_unique_constraint("uq_queue_calls_key", ["server", "uniqueid", "queue", "leg"])
    with op.batch_alter_table("ami_outages") as b:
        b.add_column(_server())
    with op.batch_alter_table("recordings") as b:
        b.add_column(_server())
    with op.batch_alter_table("campaigns") as b:
        b.add_column(_server())
    op.create_table(
        "queuecall_server_checkpoints",
        sa.Column("server", sa.String(32), nullable=False),
        sa.Column("heard_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("server", name="pk_queuecall_server_checkpoints"),
    )
    op.execute("INSERT INTO queuecall_server_checkpoints (server, heard_at) "
               f"SELECT '{DEFAULT}', heard_at FROM queuecall_checkpoints WHERE name = 'queuecalls'")
    op.drop_table("queuecall_checkpoints")
    op.create_table(
        "live_snapshots",
        sa.Column("server", sa.String(32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("server", name="pk_live_snapshots"),
    )


def downgrade() -> None:
    op.drop_table("live_snapshots")
    op.create_table(
        "queuecall_checkpoints",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("heard_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_queuecall_checkpoints"),
    )
    op.execute("INSERT INTO queuecall_checkpoints (name, heard_at) "
               f"SELECT 'queuecalls', heard_at FROM queuecall_server_checkpoints WHERE server = '{DEFAULT}'")
    op.drop_table("queuecall_server_checkpoints")
    op.execute(f"DELETE FROM queue_calls WHERE server <> '{DEFAULT}'")
    for table in ("campaigns", "recordings", "ami_outages"):
        with op.batch_alter_table(table) as b:
            b.drop_column("server")
    with op.batch_alter_table("queue_calls") as b:
        b.drop_constraint("uq_queue_calls_key", type_="unique")
        b.create_unique_constraint("uq_queue_calls_key", ["uniqueid", "queue", "leg"])
        b.drop_column("server")
