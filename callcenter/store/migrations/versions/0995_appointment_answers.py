"""Appointment reminders: the doctor, the patient's answer on the appointment, reminder opt-out.

An appointment keeps the answer the patient gave on a reminder call or in the hotline IVR
(confirm | cancel | reschedule | stop_reminders), when, through which channel and for which
slot (``answered_for`` = its ``scheduled_at`` then): the hospital's booking system reads it
back.  ``patients.reminders_stopped_at``: pressed 9 on a reminder, no more reminders.

Revision ID: 0995_appointment_answers
Revises: 0990_queuecall_rating
"""
import sqlalchemy as sa
from alembic import op

revision = "0995_appointment_answers"
down_revision = "0990_queuecall_rating"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("appointments") as batch:
        batch.add_column(sa.Column("doctor", sa.String(128), nullable=False, server_default=""))
        batch.add_column(sa.Column("answer", sa.String(16), nullable=False, server_default=""))
        batch.add_column(sa.Column("answered_at", TS, nullable=True))
        batch.add_column(sa.Column("answered_via", sa.String(16), nullable=False, server_default=""))
        batch.add_column(sa.Column("answered_for", TS, nullable=True))
    with op.batch_alter_table("patients") as batch:
        batch.add_column(sa.Column("reminders_stopped_at", TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("patients") as batch:
        batch.drop_column("reminders_stopped_at")
    with op.batch_alter_table("appointments") as batch:
        for col in ("answered_for", "answered_via", "answered_at", "answer", "doctor"):
            batch.drop_column(col)
