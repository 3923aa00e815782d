"""Dialer: a missed appointment has at most one open contact, across all campaigns.

Before this, every no-show campaign got its own contact for each missed appointment, so a
second campaign re-dialled patients the first had already reached or rebooked.  Existing
duplicates are closed first (outcome ``superseded``, nothing deleted): an open contact is
kept when it is the one in a call, else the oldest; and none is kept when another contact
for the same appointment already dealt with the patient (reached, completed, rebooked,
declined, opted out).  Then a partial unique index holds the rule.

Revision ID: 0910_dialer_one_open_contact
Revises: 0900_merge_packages
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0910_dialer_one_open_contact"
down_revision = "0900_merge_packages"
branch_labels = None
depends_on = None

OPEN_APPOINTMENT = "ref_type = 'appointment' AND state IN ('pending', 'dialing')"


def upgrade() -> None:
    now = dt.datetime.now(dt.timezone.utc)
    op.get_bind().execute(sa.text(
        "UPDATE contacts SET state = 'done', outcome = 'superseded', completed_at = :now "
        "WHERE ref_type = 'appointment' AND state = 'pending' AND EXISTS ("
        " SELECT 1 FROM contacts o WHERE o.ref_type = 'appointment' AND o.ref_id = contacts.ref_id"
        " AND o.id <> contacts.id AND (o.state = 'dialing' OR (o.state = 'pending' AND o.id < contacts.id)"
        " OR o.outcome IN ('reached', 'completed', 'rebooked', 'declined', 'opted_out')))"),
        {"now": now})
    op.create_index("ux_contacts_open_appointment", "contacts", ["ref_id"], unique=True,
                    sqlite_where=sa.text(OPEN_APPOINTMENT), postgresql_where=sa.text(OPEN_APPOINTMENT))


def downgrade() -> None:
    op.drop_index("ux_contacts_open_appointment", table_name="contacts")
