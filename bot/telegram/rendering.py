"""Rasa replies → Telegram messages: split under the length limit, buttons as inline keyboards.

Messages are sent without a parse mode, so user and bot text is shown exactly as written
(an HTML-looking message stays text) and nothing needs escaping.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.rasa_client import Button
from bot.text import split_text as text_parts

TELEGRAM_LIMIT = 4096
CALLBACK_LIMIT = 64  # bytes of callback_data Telegram accepts


def split_text(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    return text_parts(text, limit)


class CallbackPayloads:
    """Rasa payloads longer than Telegram's 64-byte callback_data are sent as a short key."""

    def __init__(self, size: int = 10_000) -> None:
        self._long: OrderedDict[str, str] = OrderedDict()
        self._size = size

    def encode(self, payload: str) -> str:
        if len(payload.encode()) <= CALLBACK_LIMIT and not payload.startswith("k:"):
            return payload
        key = "k:" + hashlib.sha256(payload.encode()).hexdigest()[:20]
        self._long[key] = payload
        self._long.move_to_end(key)
        while len(self._long) > self._size:
            self._long.popitem(last=False)
        return key

    def decode(self, data: str) -> str | None:
        if data.startswith("k:"):
            return self._long.get(data)
        return data


def keyboard(buttons: list[Button], payloads: CallbackPayloads) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    # One button per row reads best on a phone when titles are dates or module names.
    rows = [[InlineKeyboardButton(b.title[:64], callback_data=payloads.encode(b.payload))] for b in buttons]
    return InlineKeyboardMarkup(rows)
