"""What a handler takes from a Telegram update that its filter guarantees.

python-telegram-bot types every part of an `Update` as optional, because an update carries one
of many things; a handler registered for messages (or button presses) only ever gets updates
that have them. These say so once, instead of each handler dereferencing a maybe-None.
"""
from __future__ import annotations

from telegram import CallbackQuery, Message, Update


def message_of(update: Update) -> Message:
    message = update.effective_message
    assert message is not None, f"update {update.update_id} has no message"
    return message


def chat_id_of(update: Update) -> int:
    chat = update.effective_chat
    assert chat is not None, f"update {update.update_id} has no chat"
    return chat.id


def query_of(update: Update) -> CallbackQuery:
    query = update.callback_query
    assert query is not None, f"update {update.update_id} is not a button press"
    return query
