"""Rasa replies → Telegram messages: split under the length limit, buttons as inline keyboards.

Messages are sent without a parse mode, so user and bot text is shown exactly as written
(an HTML-looking message stays text) and nothing needs escaping.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.rasa_client import Button

TELEGRAM_LIMIT = 4096
CALLBACK_LIMIT = 64  # bytes of callback_data Telegram accepts


def split_text(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Split on paragraph boundaries, then lines, then spaces; never exceed `limit`."""
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    chunks: list[str] = []
    current = ""
    for separator, pieces in (("\n\n", text.split("\n\n")),):
        for piece in pieces:
            candidate = f"{current}{separator}{piece}" if current else piece
            if len(candidate) <= limit:
                current = candidate
                continue
            if current:
                chunks.append(current)
            if len(piece) <= limit:
                current = piece
            else:
                *full, current = _split_long(piece, limit)
                chunks.extend(full)
    if current:
        chunks.append(current)
    return [c.strip() for c in chunks if c.strip()]


def _split_long(piece: str, limit: int) -> list[str]:
    parts: list[str] = []
    while len(piece) > limit:
        cut = piece.rfind("\n", 0, limit)
        if cut < limit // 2:
            cut = piece.rfind(" ", 0, limit)
        if cut < limit // 2:
            cut = limit  # one very long word (or Chinese without spaces): hard cut
        parts.append(piece[:cut])
        piece = piece[cut:].lstrip("\n ")
    parts.append(piece)
    return parts


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
