"""appeals of rejections and restrictions

Revision ID: 0002_control_appeals
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_control_appeals'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('appeals',
    sa.Column('appeal_id', sa.String(length=36), nullable=False),
    sa.Column('worker_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.Column('pool_id', sa.String(length=64), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reply', sa.Text(), nullable=True),
    sa.Column('filed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=64), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('rejection', 'restriction')", name='ck_appeals_kind'),
    sa.CheckConstraint("status IN ('pending', 'upheld', 'denied')", name='ck_appeals_status'),
    sa.PrimaryKeyConstraint('appeal_id'),
    sa.UniqueConstraint('worker_id', 'kind', 'subject_id', name='uq_appeals_once')
    )
    op.create_index('ix_appeals_status_filed', 'appeals', ['status', 'filed_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_appeals_status_filed', table_name='appeals')
    op.drop_table('appeals')
