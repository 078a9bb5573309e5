"""requester budgets (requesters, pool budgets, top-ups) and payout destinations

Revision ID: 0002_budgets_requesters
Revises: 0001
Create Date: 2026-12-01 17:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_budgets_requesters'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('requesters',
    sa.Column('requester_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('requester_id')
    )
    op.create_table('pool_budgets',
    sa.Column('pool_id', sa.String(length=64), nullable=False),
    sa.Column('requester_id', sa.String(length=36), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('linked_by', sa.String(length=64), nullable=False),
    sa.Column('linked_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['requester_id'], ['requesters.requester_id'], ),
    sa.PrimaryKeyConstraint('pool_id')
    )
    op.create_index(op.f('ix_pool_budgets_requester_id'), 'pool_budgets', ['requester_id'],
                    unique=False)
    op.create_table('topups',
    sa.Column('topup_id', sa.String(length=36), nullable=False),
    sa.Column('requester_id', sa.String(length=36), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=100), nullable=True),
    sa.Column('transfer_id', sa.String(length=36), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name='ck_topups_positive'),
    sa.ForeignKeyConstraint(['requester_id'], ['requesters.requester_id'], ),
    sa.ForeignKeyConstraint(['transfer_id'], ['transfers.transfer_id'], ),
    sa.PrimaryKeyConstraint('topup_id')
    )
    op.create_index('uq_topups_requester_idempotency_key', 'topups',
                    ['requester_id', 'idempotency_key'], unique=True)
    op.add_column('payouts', sa.Column('destination_method', sa.String(length=16),
                                       nullable=True))
    op.add_column('payouts', sa.Column('destination_details', sa.String(length=64),
                                       nullable=True))
    op.create_check_constraint('ck_payouts_destination_whole', 'payouts',
                               '(destination_method IS NULL) = (destination_details IS NULL)')


def downgrade() -> None:
    op.drop_constraint('ck_payouts_destination_whole', 'payouts', type_='check')
    op.drop_column('payouts', 'destination_details')
    op.drop_column('payouts', 'destination_method')
    op.drop_index('uq_topups_requester_idempotency_key', table_name='topups')
    op.drop_table('topups')
    op.drop_index(op.f('ix_pool_budgets_requester_id'), table_name='pool_budgets')
    op.drop_table('pool_budgets')
    op.drop_table('requesters')
