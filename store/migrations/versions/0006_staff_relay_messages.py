"""handoff: user messages relayed to the staff group, so any gateway replica routes a staff reply

Revision ID: 0006_staff_relay_messages
Revises: 0005_session_venue_zh
Create Date: 2026-12-06 23:00:00
"""
import sqlalchemy as sa
from alembic import op

import store.models

revision = '0006_staff_relay_messages'
down_revision = '0005_session_venue_zh'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('staff_relay_messages',
    sa.Column('staff_chat_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('message_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('handoff_id', sa.Integer(), nullable=False),
    sa.Column('created_at', store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['handoff_id'], ['handoffs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('staff_chat_id', 'message_id')
    )
    with op.batch_alter_table('staff_relay_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_relay_messages_handoff_id'), ['handoff_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('staff_relay_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_relay_messages_handoff_id'))

    op.drop_table('staff_relay_messages')
