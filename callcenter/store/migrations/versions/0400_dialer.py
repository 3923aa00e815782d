"""Dialer: patients, treatments, appointments, campaigns, contacts, attempts, do-not-call.

Revision ID: 0400_dialer
Revises: 0001_base
"""
from alembic import op
import sqlalchemy as sa

revision = "0400_dialer"
down_revision = "0001_base"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_patients"),
        sa.UniqueConstraint("external_id", name="uq_patients_external_id"),
    )
    op.create_index("ix_patients_phone", "patients", ["phone"])
    op.create_table(
        "treatments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("treatment_type", sa.String(32), nullable=False),
        sa.Column("treated_at", TS, nullable=False),
        sa.Column("doctor", sa.String(128), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name="fk_treatments_patient_id_patients"),
        sa.PrimaryKeyConstraint("id", name="pk_treatments"),
        sa.UniqueConstraint("external_id", name="uq_treatments_external_id"),
    )
    op.create_index("ix_treatments_patient_id", "treatments", ["patient_id"])
    op.create_table(
        "appointments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("scheduled_at", TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name="fk_appointments_patient_id_patients"),
        sa.PrimaryKeyConstraint("id", name="pk_appointments"),
        sa.UniqueConstraint("external_id", name="uq_appointments_external_id"),
    )
    op.create_index("ix_appointments_patient_id", "appointments", ["patient_id"])
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
        sa.UniqueConstraint("name", name="uq_campaigns_name"),
    )
    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("dedupe_key", sa.String(160), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("ref_type", sa.String(32), nullable=False),
        sa.Column("ref_id", sa.String(64), nullable=False),
        sa.Column("due_after", TS, nullable=False),
        sa.Column("due_before", TS, nullable=True),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_disposition", sa.String(16), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=False),
        sa.Column("claim_token", sa.String(36), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("completed_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_contacts_campaign_id_campaigns"),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name="fk_contacts_patient_id_patients"),
        sa.PrimaryKeyConstraint("id", name="pk_contacts"),
        sa.UniqueConstraint("dedupe_key", name="uq_contacts_dedupe_key"),
    )
    op.create_index("ix_contacts_due", "contacts", ["state", "next_attempt_at"])
    op.create_index("ix_contacts_ref", "contacts", ["ref_type", "ref_id"])
    op.create_index("ix_contacts_campaign_id", "contacts", ["campaign_id"])
    op.create_index("ix_contacts_phone", "contacts", ["phone"])
    op.create_table(
        "dial_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("instance", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("disposition", sa.String(16), nullable=False),
        sa.Column("reason_code", sa.Integer(), nullable=True),
        sa.Column("hangup_cause", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(128), nullable=False),
        sa.Column("uniqueid", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(128), nullable=False),
        sa.Column("abandoned", sa.Boolean(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("answered_at", TS, nullable=True),
        sa.Column("connected_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("survey", sa.JSON(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], name="fk_dial_attempts_contact_id_contacts"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_dial_attempts_campaign_id_campaigns"),
        sa.PrimaryKeyConstraint("id", name="pk_dial_attempts"),
    )
    op.create_index("ix_dial_attempts_contact_id", "dial_attempts", ["contact_id"])
    op.create_index("ix_dial_attempts_campaign_id", "dial_attempts", ["campaign_id"])
    op.create_index("ix_dial_attempts_state", "dial_attempts", ["state"])
    op.create_index("ix_dial_attempts_started_at", "dial_attempts", ["started_at"])
    op.create_table(
        "do_not_call",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(256), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_do_not_call"),
        sa.UniqueConstraint("phone", name="uq_do_not_call_phone"),
    )


def downgrade() -> None:
    op.drop_table("do_not_call")
    op.drop_table("dial_attempts")
    op.drop_table("contacts")
    op.drop_table("campaigns")
    op.drop_table("appointments")
    op.drop_table("treatments")
    op.drop_table("patients")
