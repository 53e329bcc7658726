"""Handoff actions from the console: claim, resolve, reply, notes and tags.

State changes are conditional UPDATEs, so two staff members clicking at once cannot both
claim a handoff, and a resolve sends the "bot is back" notification once.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store.models import Handoff, HandoffNote, Notification, TranscriptLine, User, utcnow

STATUSES = ("waiting", "claimed", "resolved")
MAX_REPLY = 4000  # Telegram's message limit is 4096 characters
MAX_NOTE = 4000
_TAG_RE = re.compile(r"[^\w\- ]+", re.UNICODE)


class HandoffError(Exception):
    """Something the staff member should be told (shown as a flash message)."""


def open_handoff(session: Session, user_id: int) -> Handoff | None:
    """The user's newest handoff that is not resolved yet."""
    return session.scalar(
        select(Handoff)
        .where(Handoff.user_id == user_id, Handoff.status != "resolved")
        .order_by(Handoff.created_at.desc(), Handoff.id.desc())
        .limit(1)
    )


def claim(session: Session, handoff_id: int, staff: str) -> Handoff:
    now = utcnow()
    done = session.execute(
        update(Handoff)
        .where(Handoff.id == handoff_id, Handoff.status == "waiting")
        .values(status="claimed", claimed_by=staff, claimed_at=now)
    ).rowcount
    handoff = session.get(Handoff, handoff_id)
    if handoff is None:
        raise HandoffError("No such handoff.")
    session.refresh(handoff)
    if not done and handoff.claimed_by != staff:
        if handoff.status == "resolved":
            raise HandoffError("This handoff is already resolved.")
        raise HandoffError(f"Already claimed by {handoff.claimed_by}.")
    return handoff


def resolve(session: Session, handoff_id: int, staff: str) -> Handoff:
    """Close the handoff, give the conversation back to the bot and tell the user so."""
    now = utcnow()
    done = session.execute(
        update(Handoff)
        .where(Handoff.id == handoff_id, Handoff.status != "resolved")
        .values(status="resolved", resolved_at=now)
    ).rowcount
    handoff = session.get(Handoff, handoff_id)
    if handoff is None:
        raise HandoffError("No such handoff.")
    session.refresh(handoff)
    if not done:
        raise HandoffError("This handoff is already resolved.")
    if handoff.claimed_by is None:
        handoff.claimed_by = staff
        handoff.claimed_at = now
    if handoff.user_id is not None:
        # The bot answers again only when no other handoff of this user is still open.
        still_open = session.scalar(
            select(Handoff.id).where(
                Handoff.user_id == handoff.user_id,
                Handoff.status != "resolved",
                Handoff.id != handoff.id,
            ).limit(1)
        )
        if still_open is None:
            session.execute(update(User).where(User.id == handoff.user_id).values(paused=False))
        session.add(
            Notification(
                user_id=handoff.user_id,
                kind="handoff_resumed",
                dedupe_key=f"resume-{handoff.id}",
                payload={"text_key": "handoff_resumed"},
            )
        )
    return handoff


def reply(session: Session, user_id: int, staff: str, text: str) -> TranscriptLine:
    """A staff message to the user: kept in the transcript and queued for the gateway."""
    text = text.strip()
    if not text:
        raise HandoffError("The reply is empty.")
    if len(text) > MAX_REPLY:
        raise HandoffError(f"The reply is longer than {MAX_REPLY} characters.")
    user = session.get(User, user_id)
    if user is None:
        raise HandoffError("No such conversation.")
    handoff = open_handoff(session, user_id)
    if handoff is not None and handoff.status == "waiting":
        # Answering is taking the conversation: others see it claimed.
        claim(session, handoff.id, staff)
    line = TranscriptLine(
        user_id=user.id,
        chat_id=user.chat_id,
        direction="staff",
        language=user.language,
        text=text,
        staff_name=staff,
    )
    session.add(line)
    session.flush()
    session.add(
        Notification(
            user_id=user.id,
            kind="staff_reply",
            dedupe_key=f"staff-reply-{line.id}-{uuid.uuid4().hex[:12]}",
            # transcript_line_id says the console already wrote the transcript line, so a
            # gateway that records what it sends can skip it (no duplicate in the transcript).
            payload={"text": text, "staff_name": staff, "transcript_line_id": line.id},
        )
    )
    return line


def add_note(session: Session, handoff_id: int, staff: str, text: str) -> HandoffNote:
    text = text.strip()
    if not text:
        raise HandoffError("The note is empty.")
    if len(text) > MAX_NOTE:
        raise HandoffError(f"The note is longer than {MAX_NOTE} characters.")
    if session.get(Handoff, handoff_id) is None:
        raise HandoffError("No such handoff.")
    note = HandoffNote(handoff_id=handoff_id, author=staff, text=text)
    session.add(note)
    return note


def normalise_tags(raw: str) -> str:
    """A comma list of short, unique, lower-case tags that fits the column."""
    tags: list[str] = []
    for part in raw.split(","):
        tag = _TAG_RE.sub("", part).strip().lower()[:40]
        if tag and tag not in tags:
            tags.append(tag)
    joined = ",".join(tags)
    while len(joined) > 400:
        tags.pop()
        joined = ",".join(tags)
    return joined


def set_tags(session: Session, handoff_id: int, raw: str) -> Handoff:
    handoff = session.get(Handoff, handoff_id)
    if handoff is None:
        raise HandoffError("No such handoff.")
    handoff.tags = normalise_tags(raw)
    return handoff


@dataclass(frozen=True)
class QueueRow:
    handoff: Handoff
    user: User | None
    last_message: str | None


def queue(session: Session, status: str, limit: int = 200) -> list[QueueRow]:
    """Handoffs in one status; waiting ones oldest first (they have waited longest)."""
    order = Handoff.created_at.asc() if status == "waiting" else Handoff.created_at.desc()
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
    from sqlalchemy import func

    rows = session.execute(select(Handoff.status, func.count()).group_by(Handoff.status)).all()
    found = {status: n for status, n in rows}
    return {status: found.get(status, 0) for status in STATUSES}
