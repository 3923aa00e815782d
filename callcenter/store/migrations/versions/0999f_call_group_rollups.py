"""Call-group rollups: the agents and satisfaction reports read counted days, not a year of calls.

``queue_call_group_rollups`` (server, queue, agent, UTC day) holds what those reports add up
per agent and queue (``callcenter/queuecalls/call_groups.py``: the web's answered calls,
talk, within target, the agent's name, the rating counts), ``queue_call_group_rollup_blocks``
the same added up per 16-day block.  On SQLite, which has no hash aggregate, counting them
from the calls read every call of the period one agent at a time (about 1 s for a year of
1,000,000 calls on an idle machine, 3 s on a busy one).

Kept like the other rollups: triggers on ``queue_calls`` mark the (server, queue, agent, day)
a write touches as kind "g" in ``queue_call_rollup_dirty``, on insert, delete and an update
of a counted column, of the post-call rating or of the agent's name; ``rollups.settle``
recounts them.  The existing calls are counted here with the settings the other rollups were
counted with (their settings row), as ``callcenter report rebuild-rollups`` would.

Revision ID: 0999f_call_group_rollups
Revises: 0999e_rollup_storage
"""
import sqlalchemy as sa
from alembic import op

revision = "0999f_call_group_rollups"
down_revision = "0999e_rollup_storage"
branch_labels = None
depends_on = None

MARKED = ("server", "queue", "entered_at", "direction", "outcome", "wait_seconds", "gap", "agent",
          "talk_seconds", "answered_at", "agent_name", "rating_outcome", "rating_level")
COUNTS = ("offered", "rated", "satisfied", "neutral", "unsatisfied", "no_input", "invalid", "hangup")


def _columns() -> list[sa.Column]:
    return [sa.Column("answered", sa.Integer(), nullable=False),
            sa.Column("talk_seconds", sa.Float(), nullable=False),
            sa.Column("within_target", sa.Integer(), nullable=False),
            sa.Column("agent_name", sa.String(128), nullable=True),
            *[sa.Column(f"rating_{k}", sa.Integer(), nullable=False) for k in COUNTS]]


def _sqlite_mark(row: str) -> str:
    return ("INSERT OR IGNORE INTO queue_call_rollup_dirty (kind, server, queue, agent, slot) VALUES "
            f"('g', {row}.server, {row}.queue, {row}.agent, "
            f"CAST(strftime('%s', {row}.entered_at) AS INTEGER) / 86400 * 86400);")


def _pg_mark(row: str) -> str:
    return (f"IF {row}.direction = 'inbound' AND {row}.entered_at IS NOT NULL THEN "
            "INSERT INTO queue_call_rollup_dirty (kind, server, queue, agent, slot) VALUES "
            f"('g', {row}.server, {row}.queue, {row}.agent, "
            f"CAST(floor(extract(epoch FROM {row}.entered_at) / 86400) AS BIGINT) * 86400) "
            "ON CONFLICT DO NOTHING; END IF;")


def create_triggers(dialect: str) -> None:
    cols = ", ".join(MARKED)
    if dialect == "postgresql":
        op.execute("CREATE FUNCTION queue_calls_group_mark() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                   f"IF TG_OP <> 'INSERT' THEN {_pg_mark('OLD')} END IF; "
                   f"IF TG_OP <> 'DELETE' THEN {_pg_mark('NEW')} END IF; RETURN NULL; END $$")
        op.execute(f"CREATE TRIGGER queue_calls_group AFTER INSERT OR DELETE OR UPDATE OF {cols} ON queue_calls "
                   "FOR EACH ROW EXECUTE FUNCTION queue_calls_group_mark()")
        return
    when = "{0}.direction = 'inbound' AND {0}.entered_at IS NOT NULL"
    for name, event, row in (("insert", "INSERT", "NEW"), ("delete", "DELETE", "OLD"),
                             ("update_old", f"UPDATE OF {cols}", "OLD"), ("update_new", f"UPDATE OF {cols}", "NEW")):
        op.execute(f"CREATE TRIGGER queue_calls_group_{name} AFTER {event} ON queue_calls "
                   f"WHEN {when.format(row)} BEGIN {_sqlite_mark(row)} END")


def drop_triggers(dialect: str) -> None:
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS queue_calls_group ON queue_calls")
        op.execute("DROP FUNCTION IF EXISTS queue_calls_group_mark()")
        return
    for name in ("insert", "delete", "update_old", "update_new"):
        op.execute(f"DROP TRIGGER IF EXISTS queue_calls_group_{name}")


def upgrade() -> None:
    op.create_table(
        "queue_call_group_rollups",
        sa.Column("server", sa.String(32), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(128), nullable=False),
        sa.Column("day", sa.BigInteger(), nullable=False),
        *_columns(),
        sa.PrimaryKeyConstraint("server", "queue", "agent", "day", name="pk_queue_call_group_rollups"),
    )
    op.create_index("ix_queue_call_group_rollups_day", "queue_call_group_rollups", ["day"])
    op.create_table(
        "queue_call_group_rollup_blocks",
        sa.Column("server", sa.String(32), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(128), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=False),
        *_columns(),
        sa.PrimaryKeyConstraint("server", "queue", "agent", "block", name="pk_queue_call_group_rollup_blocks"),
    )
    op.create_index("ix_queue_call_group_rollup_blocks_block", "queue_call_group_rollup_blocks", ["block"])
    bind = op.get_bind()
    create_triggers(bind.dialect.name)
    # the counting is the code's own, with the settings the other rollups were counted with
    from callcenter.queuecalls import rollups

    settings = rollups.stored_settings(bind)
    if settings is not None:  # none: no rollups yet, the start-up's check counts them all
        rollups.rebuild_groups(bind, settings)


def downgrade() -> None:
    drop_triggers(op.get_bind().dialect.name)
    op.drop_index("ix_queue_call_group_rollup_blocks_block", table_name="queue_call_group_rollup_blocks")
    op.drop_table("queue_call_group_rollup_blocks")
    op.drop_index("ix_queue_call_group_rollups_day", table_name="queue_call_group_rollups")
    op.drop_table("queue_call_group_rollups")
