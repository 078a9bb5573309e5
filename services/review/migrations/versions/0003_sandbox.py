"""sandbox submissions: staff trying a sandbox pool (never in the statistics)

Revision ID: 0003_sandbox
Revises: 0002_control_appeals
"""
import sqlalchemy as sa
from alembic import op

revision = '0003_sandbox'
down_revision = '0002_control_appeals'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('submissions', sa.Column('sandbox', sa.Boolean(), server_default=sa.false(),
                                           nullable=False))


def downgrade() -> None:
    op.drop_column('submissions', 'sandbox')
