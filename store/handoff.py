"""Handoffs: a conversation passed to staff, and handed back to the bot.

Used by the action server (open), the Telegram staff group (claim, reply, resume) and the
console (all of it). State changes are conditional UPDATEs, so two staff members clicking at
once cannot both claim a handoff, and a resolve sends the "bot is back" notification once.
Messages to the user (staff replies, "bot is back") and staff alerts are notifications
(store.notifications.add) that a gateway sends.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store import notifications
from store.db import Database, rowcount
from store.kinds import HandoffStatus, NotificationKind
from store.models import Handoff, HandoffNote, StaffRelayMessage, TranscriptLine, User, utcnow
from store.users import find_or_create, user_by_sender

STATUSES = tuple(HandoffStatus)
MAX_REPLY = 4000  # Telegram's message limit is 4096 characters
MAX_NOTE = 4000
_TAG_RE = re.compile(r"[^\w\- ]+", re.UNICODE)


@dataclass(frozen=True)
class HandoffView:
    id: int
    user_id: int | None
    sender_id: str | None
    chat_id: int | None
    reason: str
    language: str
    status: str
    claimed_by: str | None
    created_now: bool = False


def _view(handoff: Handoff, user: User | None, created_now: bool = False) -> HandoffView:
    return HandoffView(
        id=handoff.id,
        user_id=handoff.user_id,
        sender_id=user.sender_id if user else None,
        chat_id=user.chat_id if user else None,
        reason=handoff.reason,
        language=handoff.language,
        status=handoff.status,
        claimed_by=handoff.claimed_by,
        created_now=created_now,
    )


def start_handoff(db: Database, sender_id: str, reason: str, language: str, detail: str | None = None) -> HandoffView:
    """Pause the bot for this user and queue a handoff (reusing one that is still open).

    A Notification tells the gateway to alert the staff group; it is written in the same
    transaction, so a handoff never exists without its alert.
    """
    with db.session() as session:
        user = find_or_create(session, sender_id)
        existing = session.scalars(
            select(Handoff).where(Handoff.user_id == user.id, Handoff.status != HandoffStatus.RESOLVED)
        ).first()
        user.paused = True
        if existing is not None:
            return _view(existing, user)
        handoff = Handoff(user_id=user.id, reason=reason, language=language, detail=detail)
        session.add(handoff)
        session.flush()
        notifications.add(session, user_id=user.id, kind="handoff_opened",
                          dedupe_key=f"handoff-opened-{handoff.id}", payload={"handoff_id": handoff.id})
        return _view(handoff, user, created_now=True)


def get_handoff(db: Database, handoff_id: int) -> HandoffView | None:
    with db.session() as session:
        handoff = session.get(Handoff, handoff_id)
        if handoff is None:
            return None
        user = session.get(User, handoff.user_id) if handoff.user_id else None
        return _view(handoff, user)


def set_staff_message(db: Database, handoff_id: int, message_id: int) -> None:
    with db.session() as session:
        handoff = session.get(Handoff, handoff_id)
        if handoff is not None:
            handoff.staff_chat_message_id = message_id


def remember_relay(db: Database, staff_chat_id: int, message_id: int, handoff_id: int) -> None:
    """A user message relayed to the staff group as `message_id`: a reply to it answers this
    handoff, on whichever gateway replica the reply arrives."""
    with db.session() as session:
        if session.get(StaffRelayMessage, (staff_chat_id, message_id)) is None:
            session.add(StaffRelayMessage(staff_chat_id=staff_chat_id, message_id=message_id,
                                          handoff_id=handoff_id))


def by_staff_message(db: Database, message_id: int, staff_chat_id: int | None = None) -> HandoffView | None:
    """The handoff a staff-group message belongs to: a relayed user message (given the staff
    chat) or the handoff's alert."""
    with db.session() as session:
        handoff = None
        if staff_chat_id is not None:
            relayed = session.get(StaffRelayMessage, (staff_chat_id, message_id))
            handoff = session.get(Handoff, relayed.handoff_id) if relayed else None
        if handoff is None:
            handoff = session.scalars(
                select(Handoff).where(Handoff.staff_chat_message_id == message_id)
            ).first()
        if handoff is None:
            return None
        user = session.get(User, handoff.user_id) if handoff.user_id else None
        return _view(handoff, user)


def open_for_sender(db: Database, sender_id: str) -> HandoffView | None:
    with db.session() as session:
        user = user_by_sender(session, sender_id)
        if user is None:
            return None
        handoff = open_handoff(session, user.id)
        return _view(handoff, user) if handoff else None


def relay_to_staff(db: Database, sender_id: str, text: str, message_key: str) -> bool:
    """A message a user sent while staff have the conversation, on a channel whose process has
    no staff group (WeChat): queued for the staff group's gateway. False: no open handoff."""
    from store import notifications

    with db.session() as session:
        user = user_by_sender(session, sender_id)
        handoff = open_handoff(session, user.id) if user else None
        if user is None or handoff is None:
            return False
        notifications.add(session, user_id=user.id, kind=NotificationKind.HANDOFF_USER_MESSAGE,
                          dedupe_key=f"handoff-message-{message_key}"[:120],
                          payload=notifications.HandoffUserMessagePayload(handoff_id=handoff.id,
                                                                          text=text[:3500]))
        return True


# --- staff actions (console and staff group) -------------------------------------------

class HandoffError(Exception):
    """Something the staff member should be told (shown as a flash message)."""


def open_handoff(session: Session, user_id: int) -> Handoff | None:
    """The user's newest handoff that is not resolved yet."""
    return session.scalar(
        select(Handoff)
        .where(Handoff.user_id == user_id, Handoff.status != HandoffStatus.RESOLVED)
        .order_by(Handoff.created_at.desc(), Handoff.id.desc())
        .limit(1)
    )


def claim(session: Session, handoff_id: int, staff: str) -> Handoff:
    now = utcnow()
    done = rowcount(session.execute(
        update(Handoff)
        .where(Handoff.id == handoff_id, Handoff.status == HandoffStatus.WAITING)
        .values(status=HandoffStatus.CLAIMED, claimed_by=staff, claimed_at=now)
    ))
    handoff = session.get(Handoff, handoff_id)
    if handoff is None:
        raise HandoffError("No such handoff.")
    session.refresh(handoff)
    if not done and handoff.claimed_by != staff:
        if handoff.status == HandoffStatus.RESOLVED:
            raise HandoffError("This handoff is already resolved.")
        raise HandoffError(f"Already claimed by {handoff.claimed_by}.")
    return handoff


def resolve(session: Session, handoff_id: int, staff: str) -> Handoff:
    """Close the handoff, give the conversation back to the bot and tell the user so."""
    now = utcnow()
    done = rowcount(session.execute(
        update(Handoff)
        .where(Handoff.id == handoff_id, Handoff.status != HandoffStatus.RESOLVED)
        .values(status=HandoffStatus.RESOLVED, resolved_at=now)
    ))
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
                Handoff.status != HandoffStatus.RESOLVED,
                Handoff.id != handoff.id,
            ).limit(1)
        )
        if still_open is None:
            session.execute(update(User).where(User.id == handoff.user_id).values(paused=False))
        # No language: the user's language when it is sent (they may switch meanwhile).
        notifications.add(session, user_id=handoff.user_id, kind="handoff_resumed",
                          dedupe_key=f"resume-{handoff.id}", payload={"text_key": "handoff_resumed"})
    return handoff


def _staff_text(text: str, what: str, limit: int) -> str:
    """A reply or note as staff typed it, stripped; empty or too long is refused."""
    text = text.strip()
    if not text:
        raise HandoffError(f"The {what} is empty.")
    if len(text) > limit:
        raise HandoffError(f"The {what} is longer than {limit} characters.")
    return text


def reply(session: Session, user_id: int, staff: str, text: str) -> TranscriptLine:
    """A staff message to the user: kept in the transcript and queued for the gateway."""
    text = _staff_text(text, "reply", MAX_REPLY)
    user = session.get(User, user_id)
    if user is None:
        raise HandoffError("No such conversation.")
    handoff = open_handoff(session, user_id)
    if handoff is not None and handoff.status == HandoffStatus.WAITING:
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
    notifications.add(
        session,
        user_id=user.id,
        kind="staff_reply",
        dedupe_key=f"staff-reply-{line.id}-{uuid.uuid4().hex[:12]}",
        # transcript_line_id says the console already wrote the transcript line, so a
        # gateway that records what it sends can skip it (no duplicate in the transcript).
        payload={"text": text, "staff_name": staff, "transcript_line_id": line.id},
    )
    return line


def add_note(session: Session, handoff_id: int, staff: str, text: str) -> HandoffNote:
    text = _staff_text(text, "note", MAX_NOTE)
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


# --- the same, for the gateway: one transaction each, detached results -------------------


def claim_as(db: Database, handoff_id: int, staff: str) -> HandoffView:
    with db.session() as session:
        handoff = claim(session, handoff_id, staff)
        return _view(handoff, session.get(User, handoff.user_id) if handoff.user_id else None)


def resolve_as(db: Database, handoff_id: int, staff: str) -> HandoffView:
    with db.session() as session:
        handoff = resolve(session, handoff_id, staff)
        return _view(handoff, session.get(User, handoff.user_id) if handoff.user_id else None)


def reply_as(db: Database, user_id: int, staff: str, text: str) -> int:
    with db.session() as session:
        return reply(session, user_id, staff, text).id
