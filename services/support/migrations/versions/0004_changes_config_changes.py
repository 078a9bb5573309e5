"""configuration changes: proposals, manual patches and reverts

Revision ID: 0004_changes_config_changes
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0004_changes_config_changes'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('config_changes',
    sa.Column('change_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('target', sa.String(length=64), nullable=True),
    sa.Column('before', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('after', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('money', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('patch', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.Column('reverts', sa.String(length=36), nullable=True),
    sa.Column('reverted_by', sa.String(length=36), nullable=True),
    sa.Column('proposed_by', sa.String(length=64), nullable=False),
    sa.Column('proposed_role', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=64), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('current', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('error', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.CheckConstraint("state IN ('proposed', 'applied', 'rejected', 'failed', 'stale')",
                       name='ck_config_changes_state'),
    sa.PrimaryKeyConstraint('change_id')
    )
    op.create_index('ix_config_changes_state_created', 'config_changes',
                    ['state', 'created_at'], unique=False)
    op.create_index('uq_config_changes_open_revert', 'config_changes', ['reverts'],
                    unique=True, postgresql_where=sa.text("state = 'proposed'"))


def downgrade() -> None:
    op.drop_index('uq_config_changes_open_revert', table_name='config_changes')
    op.drop_index('ix_config_changes_state_created', table_name='config_changes')
    op.drop_table('config_changes')
