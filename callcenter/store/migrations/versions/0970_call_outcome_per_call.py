"""Agent desk: one outcome per call (a unique index on ``call_outcomes.uniqueid``).

Saving the outcome form twice stored two rows and opened two complaint tickets for one
call.  Rows already stored twice are kept (nothing is deleted): every copy after the
first of a call gets ``#2``, ``#3`` ... appended to its ``uniqueid`` so the rule can hold;
their tickets stay as they are.

Revision ID: 0970_call_outcome_per_call
Revises: 0960_queuecall_checkpoint
"""
import sqlalchemy as sa
from alembic import op

revision = "0970_call_outcome_per_call"
down_revision = "0960_queuecall_checkpoint"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT id, uniqueid FROM call_outcomes WHERE uniqueid IN ("
        " SELECT uniqueid FROM call_outcomes GROUP BY uniqueid HAVING COUNT(*) > 1) ORDER BY uniqueid, id")).all()
    seen: dict[str, int] = {}
    for row_id, uid in rows:
        n = seen[uid] = seen.get(uid, 0) + 1
        if n > 1:
            suffix = f"#{n}"
            conn.execute(sa.text("UPDATE call_outcomes SET uniqueid = :u WHERE id = :id"),
                         {"u": uid[:64 - len(suffix)] + suffix, "id": row_id})
    op.drop_index("ix_call_outcomes_uniqueid", table_name="call_outcomes")
    op.create_index("ix_call_outcomes_uniqueid", "call_outcomes", ["uniqueid"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_call_outcomes_uniqueid", table_name="call_outcomes")
    op.create_index("ix_call_outcomes_uniqueid", "call_outcomes", ["uniqueid"])
