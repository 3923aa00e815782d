"""Complaint tickets, their audit events, links, deadlines, follow-ups and counters.

Revision ID: 0300_complaints
Revises: 0001_base
"""
from alembic import op
import sqlalchemy as sa

revision = "0300_complaints"
down_revision = "0001_base"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('complaint_counters',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('year', name='pk_complaint_counters')
    )
    op.create_table('complaint_tickets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('severity', sa.String(length=8), nullable=False),
    sa.Column('channel', sa.String(length=12), nullable=False),
    sa.Column('department', sa.String(length=64), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('demand', sa.Text(), nullable=False),
    sa.Column('patient_phone', sa.String(length=32), nullable=False),
    sa.Column('patient_name', sa.String(length=64), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('assigned_to', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('ack_due', sa.DateTime(timezone=True), nullable=True),
    sa.Column('start_due', sa.DateTime(timezone=True), nullable=True),
    sa.Column('progress_due', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answer_due', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revisit_due', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expected_resolution', sa.Date(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('progress_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revisited_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('satisfied', sa.Boolean(), nullable=True),
    sa.Column('satisfaction', sa.Integer(), nullable=True),
    sa.Column('reopen_count', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name='pk_complaint_tickets'),
    sa.UniqueConstraint('number', name='uq_complaint_tickets_number')
    )
    op.create_index('ix_complaint_tickets_status_received', 'complaint_tickets', ['status', 'received_at'], unique=False)
    op.create_table('complaint_deadlines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('warn_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('working', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('met_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('level', sa.String(length=12), nullable=False),
    sa.Column('alerted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['complaint_tickets.id'], name='fk_complaint_deadlines_ticket_id_complaint_tickets'),
    sa.PrimaryKeyConstraint('id', name='pk_complaint_deadlines')
    )
    op.create_index('ix_complaint_deadlines_open', 'complaint_deadlines', ['active', 'met_at', 'warn_at'], unique=False)
    op.create_index(('ix_complaint_deadlines_ticket_id'), 'complaint_deadlines', ['ticket_id'], unique=False)
    op.create_table('complaint_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('field', sa.String(length=32), nullable=False),
    sa.Column('from_value', sa.Text(), nullable=True),
    sa.Column('to_value', sa.Text(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['complaint_tickets.id'], name='fk_complaint_events_ticket_id_complaint_tickets'),
    sa.PrimaryKeyConstraint('id', name='pk_complaint_events')
    )
    op.create_index(('ix_complaint_events_ticket_id'), 'complaint_events', ['ticket_id'], unique=False)
    op.create_table('complaint_followups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('due_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_before', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['complaint_tickets.id'], name='fk_complaint_followups_ticket_id_complaint_tickets'),
    sa.PrimaryKeyConstraint('id', name='pk_complaint_followups')
    )
    op.create_index(('ix_complaint_followups_status'), 'complaint_followups', ['status'], unique=False)
    op.create_index(('ix_complaint_followups_ticket_id'), 'complaint_followups', ['ticket_id'], unique=False)
    op.create_table('complaint_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('ref', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['complaint_tickets.id'], name='fk_complaint_links_ticket_id_complaint_tickets'),
    sa.PrimaryKeyConstraint('id', name='pk_complaint_links'),
    sa.UniqueConstraint('ticket_id', 'kind', 'ref', name='uq_complaint_links_ticket')
    )
    op.create_index(('ix_complaint_links_ref'), 'complaint_links', ['ref'], unique=False)
    op.create_index(('ix_complaint_links_ticket_id'), 'complaint_links', ['ticket_id'], unique=False)


def downgrade() -> None:
    for name in ("complaint_links", "complaint_followups", "complaint_events",
                 "complaint_deadlines", "complaint_tickets", "complaint_counters"):
        op.drop_table(name)
