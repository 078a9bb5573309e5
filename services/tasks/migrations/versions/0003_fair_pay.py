"""fair pay: a pool's declared seconds per task, the histogram of accepted work's durations

Revision ID: 0003_fair_pay
Revises: 0002_results_quality
"""
import sqlalchemy as sa
from alembic import op

revision = '0003_fair_pay'
down_revision = '0002_results_quality'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('pools', sa.Column('expected_seconds_per_task', sa.Integer(), nullable=True))
    op.create_table(
        'pool_pace',
        sa.Column('pool_id', sa.String(length=36), nullable=False),
        sa.Column('seconds', sa.Integer(), nullable=False),
        sa.Column('accepted', sa.BigInteger(), nullable=False),
        sa.CheckConstraint('seconds >= 1 AND accepted >= 1', name='ck_pool_pace_positive'),
        sa.PrimaryKeyConstraint('pool_id', 'seconds'))
    # what was accepted before this revision counts too
    op.execute("""
        INSERT INTO pool_pace (pool_id, seconds, accepted)
        SELECT pool_id,
               GREATEST(1, LEAST(2147483647,
                   ROUND(EXTRACT(EPOCH FROM submitted_at - taken_at))))::integer,
               count(*)
        FROM assignments
        WHERE status = 'ACCEPTED' AND submitted_at IS NOT NULL
        GROUP BY 1, 2""")


def downgrade() -> None:
    op.drop_table('pool_pace')
    op.drop_column('pools', 'expected_seconds_per_task')

