"""gateway: held_messages becomes inbox_messages, every message received until it is answered

A held message was one kind of row; now every message the Telegram gateway receives has one
from receipt (the channel, sender and the update as received; no user until the turn starts).
The rows held when this runs are kept, in order, as `held`/`sending` rows.

Revision ID: 0009_inbox_messages
Revises: 0008_held_messages
Create Date: 2026-12-09 10:00:00
"""
import sqlalchemy as sa
from alembic import op

import store.models

revision = '0009_inbox_messages'
down_revision = '0008_held_messages'
branch_labels = None
depends_on = None

COLUMNS = "user_id, chat_id, text, shown_text, language, received_at, state, holder, touched_at"


def upgrade() -> None:
    op.create_table('inbox_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('external_id', sa.String(length=64), nullable=False),
    sa.Column('update_id', sa.BigInteger(), nullable=True),
    sa.Column('payload', sa.Text(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('chat_id', sa.BigInteger(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('shown_text', sa.Text(), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=True),
    sa.Column('received_at', store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('holder', sa.String(length=160), nullable=False),
    sa.Column('touched_at', store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('inbox_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbox_messages_touched_at'), ['touched_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbox_messages_user_id'), ['user_id'], unique=False)
    # The held rows, in arrival order (new ids: PostgreSQL's sequence stays right).
    op.execute(
        f"INSERT INTO inbox_messages (channel, external_id, {COLUMNS}) "
        f"SELECT u.channel, u.external_id, "
        + ", ".join(f"h.{c.strip()}" for c in COLUMNS.split(","))
        + " FROM held_messages h JOIN users u ON u.id = h.user_id ORDER BY h.id")
    with op.batch_alter_table('held_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_held_messages_user_id'))
        batch_op.drop_index(batch_op.f('ix_held_messages_touched_at'))
    op.drop_table('held_messages')


def downgrade() -> None:
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
    # Only the rows of a started turn were held messages (the others have no user yet).
    op.execute(
        f"INSERT INTO held_messages ({COLUMNS}) SELECT {COLUMNS} FROM inbox_messages "
        "WHERE user_id IS NOT NULL AND language IS NOT NULL AND state IN ('held', 'sending') ORDER BY id")
    with op.batch_alter_table('inbox_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbox_messages_user_id'))
        batch_op.drop_index(batch_op.f('ix_inbox_messages_touched_at'))
    op.drop_table('inbox_messages')
