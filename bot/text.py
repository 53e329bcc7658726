"""Long replies cut into messages a channel accepts: on paragraphs, then lines, then spaces, and
between characters only when a piece has none (a long word, or Chinese without spaces).

Each channel measures its own limit: Telegram counts characters (4096), WeChat UTF-8 bytes (2048,
a Chinese character is three).
"""
from __future__ import annotations

from collections.abc import Callable

Size = Callable[[str], int]


def utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def split_text(text: str, limit: int, size: Size = len) -> list[str]:
    """The parts of `text`, each of `size` ≤ `limit`; nothing but whitespace at the cuts is lost."""
    text = text.strip()
    if not text:
        return []
    parts: list[str] = []
    current = ""
    for piece in text.split("\n\n"):
        candidate = f"{current}\n\n{piece}" if current else piece
        if size(candidate) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        *full, current = _cut(piece, limit, size)
        parts.extend(full)
    if current:
        parts.append(current)
    return [part.strip() for part in parts if part.strip()]


def _cut(piece: str, limit: int, size: Size) -> list[str]:
    chunks: list[str] = []
    while size(piece) > limit:
        end = _longest_prefix(piece, limit, size)
        cut = piece.rfind("\n", 0, end)  # a line break if one is in the second half, else a space
        if cut < end // 2:
            cut = piece.rfind(" ", 0, end)
        if cut < end // 2:
            cut = end
        chunks.append(piece[:cut])
        piece = piece[cut:].lstrip("\n ")
    chunks.append(piece)
    return chunks


def _longest_prefix(piece: str, limit: int, size: Size) -> int:
    """How many characters of `piece` fit in `limit` (at least one, so a cut always advances)."""
    low, high = 1, min(len(piece), limit)  # no measure counts a character as less than one
    while low < high:
        middle = (low + high + 1) // 2
        if size(piece[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return low
