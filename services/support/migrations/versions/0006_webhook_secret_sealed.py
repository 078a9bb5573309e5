"""webhooks: room for a sealed signing secret (Fernet token with its prefix)

Revision ID: 0006_webhook_secret_sealed
Revises: 0005_budgets_webhooks
Create Date: 2026-12-01 20:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_webhook_secret_sealed'
down_revision = '0005_budgets_webhooks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column('webhook_subscriptions', 'secret', type_=sa.String(length=255),
                    existing_type=sa.String(length=100), existing_nullable=False)


def downgrade() -> None:
    op.alter_column('webhook_subscriptions', 'secret', type_=sa.String(length=100),
                    existing_type=sa.String(length=255), existing_nullable=False)
