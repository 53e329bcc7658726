"""Server-side console sessions: the signed cookie holds a random token, the store holds
its hash and expiry. Logging out deletes the row, so a copied cookie stops working too."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from store.models import ConsoleSession, StaffUser, utcnow


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(session: Session, staff_user_id: int, lifetime: dt.timedelta) -> str:
    """A new session for this staff member; returns the token for the cookie."""
    now = utcnow()
    # Housekeeping: expired sessions are useless, drop them when someone logs in.
    session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    session.add(ConsoleSession(id=_hash(token), staff_user_id=staff_user_id, created_at=now,
                               expires_at=now + lifetime))
    return token


def staff_for(session: Session, token: str) -> StaffUser | None:
    """The staff member of a live session, or None (unknown, ended or expired)."""
    if not token:
        return None
    return session.scalar(
        select(StaffUser)
        .join(ConsoleSession, ConsoleSession.staff_user_id == StaffUser.id)
        .where(ConsoleSession.id == _hash(token), ConsoleSession.expires_at > utcnow())
    )


def end(session: Session, token: str) -> None:
    session.execute(delete(ConsoleSession).where(ConsoleSession.id == _hash(token)))
