"""Data: every stored phone number in one form (E.164, callcenter.phones.canonical).

Before this, queue calls and the dialer stored E.164 while IVR sessions, recordings,
complaint tickets and call outcomes stored what Asterisk or the form sent
(``13800138001``), and survey sessions stored the hospital's own CallerID instead of
the dialled patient.  This rewrites those columns with :func:`canonical` for the
hospital's ``[hospital] region`` (``callcenter db upgrade`` passes it) and gives each
IVR session on a dialled channel the number of its dial attempt.

No schema change.  Downgrade keeps the data as it is: E.164 is what the older code
reads too (its look-ups tried every form).

Revision ID: 0950_phone_numbers_e164
Revises: 0920_outbound_queue_calls
"""
import sqlalchemy as sa
from alembic import context, op

from callcenter.phones import canonical

revision = "0950_phone_numbers_e164"
down_revision = "0920_outbound_queue_calls"
branch_labels = None
depends_on = None

COLUMNS = [("queue_calls", "caller_number"), ("ivr_sessions", "caller_number"),
           ("recordings", "caller_number"), ("complaint_tickets", "patient_phone"),
           ("call_outcomes", "caller_number")]


def upgrade() -> None:
    region = context.config.attributes.get("phone_region")
    if not region:
        raise RuntimeError("0950_phone_numbers_e164 needs the phone region: "
                           "run it through callcenter db upgrade (callcenter.store.migrate.upgrade)")
    conn = op.get_bind()
    for table, column in COLUMNS:
        t = sa.table(table, sa.column(column))
        col = t.c[column]
        for (old,) in conn.execute(sa.select(col).where(col.is_not(None), col != "").distinct()).all():
            new = canonical(old, region)[:32]
            if new != old:
                conn.execute(sa.update(t).where(col == old).values({column: new}))
    # An IVR session on a dialled channel (a survey) is the patient's: agi_callerid was our CallerID.
    sessions = sa.table("ivr_sessions", sa.column("id"), sa.column("uniqueid"), sa.column("caller_number"))
    attempts = sa.table("dial_attempts", sa.column("uniqueid"), sa.column("phone"))
    rows = conn.execute(sa.select(sessions.c.id, attempts.c.phone)
                        .join(attempts, attempts.c.uniqueid == sessions.c.uniqueid)
                        .where(attempts.c.uniqueid != "", sessions.c.caller_number != attempts.c.phone)).all()
    for sid, phone in rows:
        conn.execute(sa.update(sessions).where(sessions.c.id == sid).values(caller_number=phone))


def downgrade() -> None:
    pass
