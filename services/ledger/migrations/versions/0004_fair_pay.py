"""the owner's fair-pay floor per currency

Revision ID: 0004_fair_pay
Revises: 0003_transfers_pool_index
Create Date: 2026-12-01 20:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0004_fair_pay'
down_revision = '0003_transfers_pool_index'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'fair_pay_floors',
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('floor_minor_per_hour', sa.BigInteger(), nullable=False),
        sa.Column('updated_by', sa.String(length=64), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('floor_minor_per_hour > 0', name='ck_fair_pay_floors_positive'),
        sa.PrimaryKeyConstraint('currency'))


def downgrade() -> None:
    op.drop_table('fair_pay_floors')
