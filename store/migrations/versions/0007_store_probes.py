"""operations: store_probes, the row /health writes to prove the store can take a write

Revision ID: 0007_store_probes
Revises: 0006_staff_relay_messages
Create Date: 2026-12-08 10:00:00
"""
import sqlalchemy as sa
from alembic import op

import store.models

revision = '0007_store_probes'
down_revision = '0006_staff_relay_messages'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('store_probes',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('checked_at', store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('store_probes')
