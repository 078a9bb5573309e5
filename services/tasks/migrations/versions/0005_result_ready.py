"""result ready: which results are final, and the last final result published per task and
method (its revision)

Revision ID: 0005_result_ready
Revises: 0004_sandbox
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0005_result_ready'
down_revision = '0004_sandbox'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('task_results', sa.Column('final', sa.Boolean(), server_default=sa.false(),
                                            nullable=False))
    op.create_table(
        'task_result_events',
        sa.Column('task_id', sa.String(length=36), nullable=False),
        sa.Column('method', sa.String(length=32), nullable=False),
        sa.Column('pool_id', sa.String(length=36), nullable=False),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.Column('answers', postgresql.JSONB(), nullable=False),
        sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('revision >= 1', name='ck_task_result_events_revision'),
        sa.ForeignKeyConstraint(['task_id'], ['tasks.task_id']),
        sa.PrimaryKeyConstraint('task_id', 'method'))


def downgrade() -> None:
    op.drop_table('task_result_events')
    op.drop_column('task_results', 'final')
