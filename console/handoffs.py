"""Handoff views for the console: the queue and its counts.

Claim, resolve, reply, notes and tags are store services (store.handoff), shared with the
Telegram staff group; they are re-exported here for the pages.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.handoff import (  # noqa: F401 (re-exported for console pages)
    MAX_NOTE,
    MAX_REPLY,
    STATUSES,
    HandoffError,
    add_note,
    claim,
    normalise_tags,
    open_handoff,
    reply,
    resolve,
    set_tags,
)
from store.kinds import HandoffStatus
from store.models import Handoff, TranscriptLine, User


@dataclass(frozen=True)
class QueueRow:
    handoff: Handoff
    user: User | None
    last_message: str | None


def queue(session: Session, status: str, limit: int = 200) -> list[QueueRow]:
    """Handoffs in one status; waiting ones oldest first (they have waited longest)."""
    order = Handoff.created_at.asc() if status == HandoffStatus.WAITING else Handoff.created_at.desc()
    rows = session.execute(
        select(Handoff, User)
        .outerjoin(User, User.id == Handoff.user_id)
        .where(Handoff.status == status)
        .order_by(order, Handoff.id)
        .limit(limit)
    ).all()
    result = []
    for handoff, user in rows:
        last = None
        if user is not None:
            last = session.scalar(
                select(TranscriptLine.text)
                .where(TranscriptLine.user_id == user.id, TranscriptLine.direction == "in")
                .order_by(TranscriptLine.created_at.desc(), TranscriptLine.id.desc())
                .limit(1)
            )
        result.append(QueueRow(handoff, user, last))
    return result


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Handoff.status, func.count()).group_by(Handoff.status)).all()
    found = {status: n for status, n in rows}
    return {status: found.get(status, 0) for status in STATUSES}
