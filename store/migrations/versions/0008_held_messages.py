"""gateway: held_messages, messages held while Rasa is unreachable, kept across gateway restarts

Revision ID: 0008_held_messages
Revises: 0007_store_probes
Create Date: 2026-12-08 11:00:00
"""
import sqlalchemy as sa
from alembic import op

import store.models

revision = '0008_held_messages'
down_revision = '0007_store_probes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('held_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('chat_id', sa.BigInteger(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('shown_text', sa.Text(), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('received_at', store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('holder', sa.String(length=160), nullable=False),
    sa.Column('touched_at', store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('held_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_held_messages_touched_at'), ['touched_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_held_messages_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('held_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_held_messages_user_id'))
        batch_op.drop_index(batch_op.f('ix_held_messages_touched_at'))
    op.drop_table('held_messages')
