"""transfers: an index on pool_id (a funded pool's figures sum its own transfers only)

Revision ID: 0003_transfers_pool_index
Revises: 0002_budgets_requesters
Create Date: 2026-12-01 20:40:00
"""
from alembic import op


revision = '0003_transfers_pool_index'
down_revision = '0002_budgets_requesters'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f('ix_transfers_pool_id'), 'transfers', ['pool_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_transfers_pool_id'), table_name='transfers')
