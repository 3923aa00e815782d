"""The dialer claim's own indexes: a campaign's due contacts in order, and numbers in a call.

``ix_contacts_pending_due`` (campaign_id, next_attempt_at) WHERE state = 'pending': the claim
walks one campaign's due contacts in ``next_attempt_at`` order and stops at its ``LIMIT``.
On ``ix_contacts_due`` (state, next_attempt_at) the campaign was a filter: every due contact
of the other campaigns came first (a fresh campaign beside an old one read them all).
``ix_contacts_dialing_phone`` (phone) WHERE state = 'dialing': the "already in a call" probe
per candidate reads only the contacts in a call, not every contact of the number.

Revision ID: 0999d_claim_indexes
Revises: 0998_asterisk_servers
"""
import sqlalchemy as sa
from alembic import op

revision = "0999d_claim_indexes"
down_revision = "0998_asterisk_servers"
branch_labels = None
depends_on = None

PENDING = "state = 'pending'"
DIALING = "state = 'dialing'"


def upgrade() -> None:
    op.create_index("ix_contacts_pending_due", "contacts", ["campaign_id", "next_attempt_at"],
                    sqlite_where=sa.text(PENDING), postgresql_where=sa.text(PENDING))
    op.create_index("ix_contacts_dialing_phone", "contacts", ["phone"],
                    sqlite_where=sa.text(DIALING), postgresql_where=sa.text(DIALING))


def downgrade() -> None:
    op.drop_index("ix_contacts_dialing_phone", "contacts")
    op.drop_index("ix_contacts_pending_due", "contacts")
