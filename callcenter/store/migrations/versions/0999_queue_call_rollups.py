"""Queue-call rollups: the period reports read counted 15-minute slots, not the calls.

``queue_call_rollups`` (server, queue, 15-minute UTC slot) and ``queue_call_agent_rollups``
(server, queue, agent, UTC day) hold the counters and sorted waits of the inbound calls,
packed (``callcenter/queuecalls/rollups.py``); ``queue_call_rollup_days`` packs a UTC day's
slot rows into one (what a report reads for whole days), ``queue_call_agent_rollup_blocks``
an agent's days per 16-day block; ``queue_call_rollup_settings`` the answer target and
short-abandon limit they were counted with; ``queue_call_rollup_dirty`` the rows a write
touched, marked by triggers on ``queue_calls`` (insert, delete, and an update of a counted
column) so no writer can leave them behind.  The existing calls are counted here with the
settings ``callcenter db upgrade`` passes (the configuration's), as
``callcenter report rebuild-rollups`` would.  Also an (agent, entered_at) index for the
agent-filtered reports, which read the calls.

Revision ID: 0999_queue_call_rollups
Revises: 0998_asterisk_servers
"""
import sqlalchemy as sa
from alembic import context, op

revision = "0999_queue_call_rollups"
down_revision = "0998_asterisk_servers"
branch_labels = None
depends_on = None

COUNTED = ("server", "queue", "entered_at", "direction", "outcome", "wait_seconds", "gap", "agent",
           "talk_seconds", "answered_at")


def _counters() -> list[sa.Column]:
    return [sa.Column("counts", sa.LargeBinary(), nullable=False), sa.Column("waits", sa.LargeBinary(), nullable=False)]


def _sqlite_marks(row: str) -> str:
    return (f"INSERT OR IGNORE INTO queue_call_rollup_dirty (kind, server, queue, agent, slot) VALUES "
            f"('q', {row}.server, {row}.queue, '', CAST(strftime('%s', {row}.entered_at) AS INTEGER) / 900 * 900);"
            f" INSERT OR IGNORE INTO queue_call_rollup_dirty (kind, server, queue, agent, slot) SELECT "
            f"'a', {row}.server, {row}.queue, {row}.agent, "
            f"CAST(strftime('%s', {row}.entered_at) AS INTEGER) / 86400 * 86400 WHERE {row}.agent <> '';")


def _pg_marks(row: str) -> str:
    return (f"IF {row}.direction = 'inbound' AND {row}.entered_at IS NOT NULL THEN "
            f"INSERT INTO queue_call_rollup_dirty (kind, server, queue, agent, slot) VALUES ('q', {row}.server, "
            f"{row}.queue, '', CAST(floor(extract(epoch FROM {row}.entered_at) / 900) AS BIGINT) * 900) "
            f"ON CONFLICT DO NOTHING; "
            f"IF {row}.agent <> '' THEN INSERT INTO queue_call_rollup_dirty (kind, server, queue, agent, slot) "
            f"VALUES ('a', {row}.server, {row}.queue, {row}.agent, "
            f"CAST(floor(extract(epoch FROM {row}.entered_at) / 86400) AS BIGINT) * 86400) "
            f"ON CONFLICT DO NOTHING; END IF; END IF;")


def create_triggers(dialect: str) -> None:
    cols = ", ".join(COUNTED)
    if dialect == "postgresql":
        op.execute("CREATE FUNCTION queue_calls_rollup_mark() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                   f"IF TG_OP <> 'INSERT' THEN {_pg_marks('OLD')} END IF; "
                   f"IF TG_OP <> 'DELETE' THEN {_pg_marks('NEW')} END IF; RETURN NULL; END $$")
        op.execute(f"CREATE TRIGGER queue_calls_rollup AFTER INSERT OR DELETE OR UPDATE OF {cols} ON queue_calls "
                   "FOR EACH ROW EXECUTE FUNCTION queue_calls_rollup_mark()")
        return
    when = "{0}.direction = 'inbound' AND {0}.entered_at IS NOT NULL"
    for name, event, row in (("insert", "INSERT", "NEW"), ("delete", "DELETE", "OLD"),
                             ("update_old", f"UPDATE OF {cols}", "OLD"), ("update_new", f"UPDATE OF {cols}", "NEW")):
        op.execute(f"CREATE TRIGGER queue_calls_rollup_{name} AFTER {event} ON queue_calls "
                   f"WHEN {when.format(row)} BEGIN {_sqlite_marks(row)} END")


def drop_triggers(dialect: str) -> None:
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS queue_calls_rollup ON queue_calls")
        op.execute("DROP FUNCTION IF EXISTS queue_calls_rollup_mark()")
        return
    for name in ("insert", "delete", "update_old", "update_new"):
        op.execute(f"DROP TRIGGER IF EXISTS queue_calls_rollup_{name}")


def upgrade() -> None:
    op.create_index("ix_queue_calls_agent_entered", "queue_calls", ["agent", "entered_at"])
    op.create_table(
        "queue_call_rollups",
        sa.Column("server", sa.String(32), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        *_counters(),
        sa.PrimaryKeyConstraint("server", "queue", "slot", name="pk_queue_call_rollups"),
    )
    op.create_index("ix_queue_call_rollups_slot", "queue_call_rollups", ["slot"])
    op.create_table(
        "queue_call_rollup_days",
        sa.Column("server", sa.String(32), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("day", sa.BigInteger(), nullable=False),
        *[sa.Column(n, sa.LargeBinary(), nullable=False) for n in ("slots", "counts", "nwaits", "waits")],
        sa.PrimaryKeyConstraint("server", "queue", "day", name="pk_queue_call_rollup_days"),
    )
    op.create_index("ix_queue_call_rollup_days_day", "queue_call_rollup_days", ["day"])
    op.create_table(
        "queue_call_agent_rollups",
        sa.Column("server", sa.String(32), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(128), nullable=False),
        sa.Column("day", sa.BigInteger(), nullable=False),
        *_counters(),
        sa.PrimaryKeyConstraint("server", "queue", "agent", "day", name="pk_queue_call_agent_rollups"),
    )
    op.create_index("ix_queue_call_agent_rollups_day", "queue_call_agent_rollups", ["day"])
    op.create_table(
        "queue_call_agent_rollup_blocks",
        sa.Column("server", sa.String(32), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(128), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=False),
        *_counters(),
        sa.PrimaryKeyConstraint("server", "queue", "agent", "block", name="pk_queue_call_agent_rollup_blocks"),
    )
    op.create_index("ix_queue_call_agent_rollup_blocks_block", "queue_call_agent_rollup_blocks", ["block"])
    op.create_table(
        "queue_call_rollup_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("answer_target_seconds", sa.Float(), nullable=False),
        sa.Column("short_abandon_seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_queue_call_rollup_settings"),
    )
    op.create_table(
        "queue_call_rollup_dirty",
        sa.Column("kind", sa.String(1), nullable=False),
        sa.Column("server", sa.String(32), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(128), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "server", "queue", "agent", "slot", name="pk_queue_call_rollup_dirty"),
    )
    bind = op.get_bind()
    create_triggers(bind.dialect.name)
    # the counting is the code's own, as `callcenter report rebuild-rollups` runs it
    from callcenter.queuecalls import rollups

    if "rollup_settings" not in context.config.attributes:
        raise RuntimeError("migration 0999 counts the queue calls with the report settings: "
                           "run it through callcenter db upgrade (callcenter.store.migrate.upgrade)")
    target, short = context.config.attributes["rollup_settings"]
    # (the call-group rollups' tables come with 0999e, which counts them)
    rollups.rebuild(bind, rollups.Settings(float(target), float(short)), groups=False)


def downgrade() -> None:
    drop_triggers(op.get_bind().dialect.name)
    op.drop_table("queue_call_rollup_dirty")
    op.drop_table("queue_call_rollup_settings")
    op.drop_index("ix_queue_call_agent_rollup_blocks_block", table_name="queue_call_agent_rollup_blocks")
    op.drop_table("queue_call_agent_rollup_blocks")
    op.drop_index("ix_queue_call_rollup_days_day", table_name="queue_call_rollup_days")
    op.drop_table("queue_call_rollup_days")
    op.drop_index("ix_queue_call_agent_rollups_day", table_name="queue_call_agent_rollups")
    op.drop_table("queue_call_agent_rollups")
    op.drop_index("ix_queue_call_rollups_slot", table_name="queue_call_rollups")
    op.drop_table("queue_call_rollups")
    op.drop_index("ix_queue_calls_agent_entered", table_name="queue_calls")
