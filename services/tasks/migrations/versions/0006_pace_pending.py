"""pace pending: an acceptance appends its duration instead of updating the pool's
histogram bucket (which every acceptance of a pool waited for); folded every few seconds

Revision ID: 0006_pace_pending
Revises: 0005_result_ready
"""
import sqlalchemy as sa
from alembic import op

revision = '0006_pace_pending'
down_revision = '0005_result_ready'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'pool_pace_pending',
        sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column('pool_id', sa.String(length=36), nullable=False),
        sa.Column('seconds', sa.Integer(), nullable=False),
        sa.CheckConstraint('seconds >= 1', name='ck_pool_pace_pending_positive'),
        sa.PrimaryKeyConstraint('id'))


def downgrade() -> None:
    op.execute("INSERT INTO pool_pace (pool_id, seconds, accepted) "
               "SELECT pool_id, seconds, count(*) FROM pool_pace_pending "
               "GROUP BY pool_id, seconds ON CONFLICT (pool_id, seconds) "
               "DO UPDATE SET accepted = pool_pace.accepted + EXCLUDED.accepted")
    op.drop_table('pool_pace_pending')
