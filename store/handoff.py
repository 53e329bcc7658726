"""Handoffs: a conversation passed to staff, and handed back to the bot."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from store.conversations import ensure_user_in_session, user_by_sender
from store.db import Database
from store.models import Handoff, Notification, User, utcnow


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


def open_handoff(db: Database, sender_id: str, reason: str, language: str, detail: str | None = None) -> HandoffView:
    """Pause the bot for this user and queue a handoff (reusing one that is still open).

    A Notification tells the gateway to alert the staff group; it is written in the same
    transaction, so a handoff never exists without its alert.
    """
    with db.session() as session:
        user = ensure_user_in_session(session, sender_id)
        existing = session.scalars(
            select(Handoff).where(Handoff.user_id == user.id, Handoff.status != "resolved")
        ).first()
        user.paused = True
        if existing is not None:
            return _view(existing, user)
        handoff = Handoff(user_id=user.id, reason=reason, language=language, detail=detail)
        session.add(handoff)
        session.flush()
        session.add(
            Notification(
                user_id=user.id,
                kind="handoff_opened",
                dedupe_key=f"handoff-opened-{handoff.id}",
                payload={"handoff_id": handoff.id},
            )
        )
        return _view(handoff, user, created_now=True)


def get_handoff(db: Database, handoff_id: int) -> HandoffView | None:
    with db.session() as session:
        handoff = session.get(Handoff, handoff_id)
        if handoff is None:
            return None
        user = session.get(User, handoff.user_id) if handoff.user_id else None
        return _view(handoff, user)


def claim(db: Database, handoff_id: int, staff_name: str) -> HandoffView | None:
    """Claim a waiting handoff; None if someone else holds it already or it is resolved."""
    with db.session() as session:
        handoff = session.get(Handoff, handoff_id)
        if handoff is None or handoff.status == "resolved":
            return None
        if handoff.status == "claimed" and handoff.claimed_by != staff_name:
            return None
        handoff.status = "claimed"
        handoff.claimed_by = staff_name
        handoff.claimed_at = handoff.claimed_at or utcnow()
        user = session.get(User, handoff.user_id) if handoff.user_id else None
        return _view(handoff, user)


def set_staff_message(db: Database, handoff_id: int, message_id: int) -> None:
    with db.session() as session:
        handoff = session.get(Handoff, handoff_id)
        if handoff is not None:
            handoff.staff_chat_message_id = message_id


def by_staff_message(db: Database, message_id: int) -> HandoffView | None:
    with db.session() as session:
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
        handoff = session.scalars(
            select(Handoff).where(Handoff.user_id == user.id, Handoff.status != "resolved")
        ).first()
        return _view(handoff, user) if handoff else None


def resolve(db: Database, handoff_id: int) -> HandoffView | None:
    """Hand the conversation back to the bot."""
    with db.session() as session:
        handoff = session.get(Handoff, handoff_id)
        if handoff is None:
            return None
        handoff.status = "resolved"
        handoff.resolved_at = utcnow()
        user = session.get(User, handoff.user_id) if handoff.user_id else None
        if user is not None:
            user.paused = False
        return _view(handoff, user)
