"""rule versions, the version on firings and restrictions, manual restrictions

Revision ID: 0002_control_versions_manual
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_control_versions_manual'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('rules', sa.Column('version', sa.Integer(), server_default='1',
                                     nullable=False))
    op.add_column('rules', sa.Column('evidence_public', sa.Boolean(), server_default='true',
                                     nullable=False))
    op.create_table('rule_versions',
    sa.Column('rule_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('collector', sa.Text(), nullable=False),
    sa.Column('conditions', sa.Text(), nullable=False),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('evidence_public', sa.Boolean(), nullable=False),
    sa.Column('edited_by', sa.String(length=64), nullable=False),
    sa.Column('edited_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('rule_id', 'version')
    )
    # the rules made before versions existed: their first version is what they are now
    op.execute("INSERT INTO rule_versions (rule_id, version, name, collector, conditions, "
               "action, evidence_public, edited_by, edited_at) SELECT rule_id, 1, name, "
               "collector, conditions, action, true, created_by, created_at FROM rules")
    op.add_column('firings', sa.Column('rule_version', sa.Integer(), nullable=True))
    op.add_column('restrictions', sa.Column('source', sa.String(length=16),
                                            server_default='rule', nullable=False))
    op.add_column('restrictions', sa.Column('applied_by', sa.String(length=64),
                                            nullable=True))
    op.add_column('restrictions', sa.Column('rule_version', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column('restrictions', 'rule_version')
    op.drop_column('restrictions', 'applied_by')
    op.drop_column('restrictions', 'source')
    op.drop_column('firings', 'rule_version')
    op.drop_table('rule_versions')
    op.drop_column('rules', 'evidence_public')
    op.drop_column('rules', 'version')
