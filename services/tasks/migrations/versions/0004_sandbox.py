"""sandbox projects: the flag on projects, copied to their pools and assignments

Revision ID: 0004_sandbox
Revises: 0003_fair_pay
"""
import sqlalchemy as sa
from alembic import op

revision = '0004_sandbox'
down_revision = '0003_fair_pay'
branch_labels = None
depends_on = None

_TABLES = ('projects', 'pools', 'assignments')


def upgrade() -> None:
    for table in _TABLES:
        op.add_column(table, sa.Column('sandbox', sa.Boolean(), server_default=sa.false(),
                                       nullable=False))


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_column(table, 'sandbox')
