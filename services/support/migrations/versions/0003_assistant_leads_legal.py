"""assistant, leads and legal documents: leads, lead attempts and captchas, acceptances

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('leads',
    sa.Column('lead_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('contact', sa.String(length=200), nullable=False),
    sa.Column('company', sa.String(length=200), server_default='', nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='new', nullable=False),
    sa.Column('notes', sa.Text(), server_default='', nullable=False),
    sa.Column('address_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('lead_id')
    )
    op.create_index('ix_leads_status_created', 'leads', ['status', 'created_at'], unique=False)
    op.create_table('lead_attempts',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('address_hash', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_lead_attempts_address_at', 'lead_attempts', ['address_hash', 'at'],
                    unique=False)
    op.create_table('lead_captchas',
    sa.Column('challenge_id', sa.String(length=36), nullable=False),
    sa.Column('address_hash', sa.String(length=64), nullable=False),
    sa.Column('answer', sa.String(length=16), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used', sa.Boolean(), server_default='false', nullable=False),
    sa.PrimaryKeyConstraint('challenge_id')
    )
    op.create_table('legal_acceptances',
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('doc_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=32), nullable=False),
    sa.Column('lang', sa.String(length=2), nullable=False),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('user_id', 'doc_id', 'version')
    )


def downgrade() -> None:
    op.drop_table('legal_acceptances')
    op.drop_table('lead_captchas')
    op.drop_index('ix_lead_attempts_address_at', table_name='lead_attempts')
    op.drop_table('lead_attempts')
    op.drop_index('ix_leads_status_created', table_name='leads')
    op.drop_table('leads')
