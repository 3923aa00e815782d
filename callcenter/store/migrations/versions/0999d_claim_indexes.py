"""The dialer's work-queue indexes, partial by state: what each of its statements asks.

``ix_contacts_due`` (state, next_attempt_at) served them all, badly.  The claim walked it
with the campaign as a filter, so every due contact of the other campaigns came first (a
fresh campaign beside an old one read them all); and once ANALYZE had seen no contact in
a call, its "is this number in one of our calls?" probe walked it too, reading every
contact in a call for each candidate (50 candidates x the calls in progress).  Now:

``ix_contacts_campaign_due`` (campaign_id, state, next_attempt_at): one campaign's due
contacts in order, walked up to the claim's ``LIMIT``; it replaces ``ix_contacts_campaign_id``:
beside it, a campaign imported into an analysed table (no statistics for it yet) was read
whole through ``ix_contacts_campaign_id`` and sorted;
``ix_contacts_dialing_phone`` (phone) WHERE state = 'dialing': the contacts in a call;
``ix_contacts_pending_deadline`` (due_before) WHERE pending with a deadline: expiry.

Revision ID: 0999d_claim_indexes
Revises: 0998_asterisk_servers
"""
import sqlalchemy as sa
from alembic import op

revision = "0999d_claim_indexes"
down_revision = "0999b_report_indexes"
branch_labels = None
depends_on = None

DIALING = "state = 'dialing'"
PENDING_WITH_DEADLINE = "state = 'pending' AND due_before IS NOT NULL"


def _partial(name: str, cols: list[str], where: str) -> None:
    op.create_index(name, "contacts", cols, sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def upgrade() -> None:
    op.create_index("ix_contacts_campaign_due", "contacts", ["campaign_id", "state", "next_attempt_at"])
    op.drop_index("ix_contacts_campaign_id", "contacts")
    _partial("ix_contacts_dialing_phone", ["phone"], DIALING)
    _partial("ix_contacts_pending_deadline", ["due_before"], PENDING_WITH_DEADLINE)
    op.drop_index("ix_contacts_due", "contacts")


def downgrade() -> None:
    op.create_index("ix_contacts_due", "contacts", ["state", "next_attempt_at"])
    op.drop_index("ix_contacts_pending_deadline", "contacts")
    op.drop_index("ix_contacts_dialing_phone", "contacts")
    op.create_index("ix_contacts_campaign_id", "contacts", ["campaign_id"])
    op.drop_index("ix_contacts_campaign_due", "contacts")
