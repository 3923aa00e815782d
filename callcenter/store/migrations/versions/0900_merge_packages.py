"""Merge the per-package chains into one head.

The packages' first schemas were written in parallel, each on top of 0001_base;
from here on a change to any package's tables is a new revision on this one, so
`callcenter db status` shows a single revision.

Revision ID: 0900_merge_packages
Revises: 0100_queuecalls, 0200_ivr, 0300_complaints, 0401_dialer_phone_gap, 0500_recordings, 0601_web_tokens
"""

revision = "0900_merge_packages"
down_revision = ("0100_queuecalls", "0200_ivr", "0300_complaints", "0401_dialer_phone_gap",
                 "0500_recordings", "0601_web_tokens")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
