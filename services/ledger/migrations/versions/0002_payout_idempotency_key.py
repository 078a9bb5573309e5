"""payouts: an idempotency key per worker, so a retried request holds the money once

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('payouts', sa.Column('idempotency_key', sa.String(length=100), nullable=True))
    # NULLs are distinct in both PostgreSQL and SQLite: requests without a key never collide
    op.create_index('uq_payouts_worker_idempotency_key', 'payouts',
                    ['worker_id', 'idempotency_key'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_payouts_worker_idempotency_key', table_name='payouts')
    op.drop_column('payouts', 'idempotency_key')
