"""A conversation's transcript as its user saw it, for channels that show history (web chat).

Only what the user was shown: their own lines, the bot's answers and staff replies; never
intents, notes or anything staff-internal.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from store.db import Database
from store.models import TranscriptLine
from store.users import sender_id_for, user_by_sender

MAX_LINES = 200


@dataclass(frozen=True)
class HistoryLine:
    direction: str  # in | out | staff
    text: str
    staff_name: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class History:
    language: str
    paused: bool  # staff have the conversation
    lines: list[HistoryLine]


def history(db: Database, channel: str, external_id: str, limit: int = 50) -> History | None:
    """The last `limit` lines of a conversation, oldest first; None for an unknown user."""
    limit = max(1, min(limit, MAX_LINES))
    with db.session() as session:
        user = user_by_sender(session, sender_id_for(channel, external_id))
        if user is None:
            return None
        rows = session.scalars(
            select(TranscriptLine)
            .where(TranscriptLine.user_id == user.id)
            .order_by(TranscriptLine.created_at.desc(), TranscriptLine.id.desc())
            .limit(limit)
        ).all()
        lines = [HistoryLine(r.direction, r.text, r.staff_name, r.created_at) for r in reversed(rows)]
        return History(language=user.language, paused=user.paused, lines=lines)
