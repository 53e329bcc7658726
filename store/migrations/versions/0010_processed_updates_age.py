"""store: processed_updates is pruned by age (two days), so created_at gets an index

Revision ID: 0010_processed_updates_age
Revises: 0009_inbox_messages
Create Date: 2026-12-07 09:20:00
"""
from alembic import op

revision = '0010_processed_updates_age'
down_revision = '0009_inbox_messages'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('processed_updates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_processed_updates_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('processed_updates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_processed_updates_created_at'))
