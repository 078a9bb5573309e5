"""results and aggregation, pool quality settings, hints, the deciding reviewer

Revision ID: 0002_results_quality
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = '0002_results_quality'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('assignments', sa.Column('decided_by', sa.String(length=64), nullable=True))
    op.create_table(
        'pool_quality',
        sa.Column('pool_id', sa.String(length=36), nullable=False),
        sa.Column('kind', sa.String(length=8), server_default='real', nullable=False),
        sa.Column('exam_skill', sa.String(length=64), nullable=True),
        sa.Column('mixer_real', sa.Integer(), server_default='0', nullable=False),
        sa.Column('mixer_golden', sa.Integer(), server_default='0', nullable=False),
        sa.Column('mixer_training', sa.Integer(), server_default='0', nullable=False),
        sa.Column('dynamic_max_overlap', sa.Integer(), nullable=True),
        sa.Column('dynamic_confidence', sa.Float(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('real', 'training', 'exam')", name='ck_pool_quality_kind'),
        sa.ForeignKeyConstraint(['pool_id'], ['pools.pool_id']),
        sa.PrimaryKeyConstraint('pool_id'))
    op.create_table(
        'task_hints',
        sa.Column('task_id', sa.String(length=36), nullable=False),
        sa.Column('hint', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['task_id'], ['tasks.task_id']),
        sa.PrimaryKeyConstraint('task_id'))
    op.create_table(
        'pool_aggregations',
        sa.Column('pool_id', sa.String(length=36), nullable=False),
        sa.Column('method', sa.String(length=32), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('computed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('answers_used', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('seconds', sa.Float(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['pool_id'], ['pools.pool_id']),
        sa.PrimaryKeyConstraint('pool_id', 'method'))
    op.create_table(
        'task_results',
        sa.Column('task_id', sa.String(length=36), nullable=False),
        sa.Column('method', sa.String(length=32), nullable=False),
        sa.Column('field', sa.String(length=64), nullable=False),
        sa.Column('pool_id', sa.String(length=36), nullable=False),
        sa.Column('answer', sa.JSON(), nullable=True),
        sa.Column('confidence', sa.Float(), nullable=False),
        sa.Column('answers', sa.Integer(), nullable=False),
        sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('task_id', 'method', 'field'))
    op.create_index('ix_task_results_pool_method', 'task_results',
                    ['pool_id', 'method', 'task_id'])


def downgrade() -> None:
    op.drop_index('ix_task_results_pool_method', table_name='task_results')
    op.drop_table('task_results')
    op.drop_table('pool_aggregations')
    op.drop_table('task_hints')
    op.drop_table('pool_quality')
    op.drop_column('assignments', 'decided_by')
