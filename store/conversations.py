"""Transcript lines, processed Telegram updates and forgetting a user (users: store.users)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store import inbox
from store.db import Database, rowcount
from store.kinds import WaitlistStatus
from store.models import (
    Booking,
    Enquiry,
    Handoff,
    Notification,
    ProcessedUpdate,
    TranscriptLine,
    WaitlistEntry,
)
from store.transactions import transaction
from store.users import UserView, get_user, upsert, user_by_sender, view_of

__all__ = ["ForgetReport", "LineView", "UserView", "claim_update", "forget_user", "get_user",
           "record_lines", "recent_lines", "start_turn"]

def start_turn(
    db: Database,
    channel: str,
    external_id: str,
    text: str,
    decide_language: Callable[[str, bool], str],
    *,
    chat_id: int | None = None,
    display_name: str | None = None,
    username: str | None = None,
    telegram_language_code: str | None = None,
    default_language: str = "en",
    inbox_id: int | None = None,
    rasa_text: str = "",
) -> tuple[UserView, int]:
    """The start of a turn in one transaction: find or create the user, set the language
    `decide_language(current, chosen)` gives (chosen: the user picked it with /language or a
    language button), write the user's message to the transcript; the message's inbox row
    (store.inbox) becomes `sending` (`rasa_text` may reach Rasa from now), or goes when staff
    have the conversation (nothing goes to Rasa; the transcript has the message)."""

    def run(session: Session) -> tuple[UserView, int]:
        user = upsert(session, channel, external_id, chat_id=chat_id, display_name=display_name,
                       username=username, telegram_language_code=telegram_language_code,
                       default_language=default_language)
        user.language = decide_language(user.language, user.language_chosen)
        line = TranscriptLine(user_id=user.id, chat_id=chat_id, direction="in", text=text,
                              language=user.language)
        session.add(line)
        session.flush()
        if inbox_id is not None:
            if user.paused:
                inbox.release(session, inbox_id)
            else:
                inbox.start(session, inbox_id, user.id, rasa_text, text, user.language)
        return view_of(user), line.id

    return transaction(db, run)


def record_lines(
    db: Database, user_id: int, texts: list[str], *, direction: str = "out", chat_id: int | None = None,
    language: str | None = None, staff_name: str | None = None,
    intent: tuple[int, str, float | None] | None = None, release_held: int | None = None,
) -> None:
    """Several lines of one turn (a bot answer may be several messages), in one transaction;
    `intent` = (line id, intent, confidence): what Rasa understood of the user's line;
    `release_held`: the inbox row (store.inbox) of the message these lines answer."""
    with db.session() as session:
        if release_held is not None:
            inbox.release(session, release_held)
        session.add_all(
            TranscriptLine(user_id=user_id, chat_id=chat_id, direction=direction, text=text,
                           language=language, staff_name=staff_name)
            for text in texts
        )
        if intent is not None:
            line = session.get(TranscriptLine, intent[0])
            if line is not None:
                line.intent, line.confidence = intent[1], intent[2]


def prune_processed_updates(db: Database, before: dt.datetime) -> int:
    """Drop the claims of updates handled before `before`; returns how many. A repeated
    delivery comes within Telegram's 24 hours (a web-chat frame's within minutes): older
    claims only grow the table, by a row per message."""
    with db.session() as session:
        return rowcount(session.execute(delete(ProcessedUpdate).where(ProcessedUpdate.created_at < before)))


def claim_update(db: Database, update_id: int, bot_id: str = "") -> bool:
    """True the first time an update id is seen; False for a repeated delivery."""
    try:
        with db.session() as session:
            session.add(ProcessedUpdate(update_id=update_id, bot_id=bot_id))
        return True
    except IntegrityError:
        return False


@dataclass(frozen=True)
class LineView:
    """One transcript line, detached from the session."""

    id: int
    direction: str  # in | out | staff
    text: str
    language: str | None
    staff_name: str | None


def recent_lines(db: Database, user_id: int, limit: int = 10) -> list[LineView]:
    with db.session() as session:
        rows = session.scalars(
            select(TranscriptLine)
            .where(TranscriptLine.user_id == user_id)
            .order_by(TranscriptLine.created_at.desc(), TranscriptLine.id.desc())
            .limit(limit)
        ).all()
        return [LineView(r.id, r.direction, r.text, r.language, r.staff_name) for r in reversed(rows)]


@dataclass(frozen=True)
class ForgetReport:
    transcript_lines: int
    enquiries: int
    handoffs: int
    bookings_anonymised: int
    waitlist_entries: int


def forget_user(db: Database, sender_id: str) -> ForgetReport | None:
    """Delete a user's conversation and personal details, keeping booked seats anonymously.

    A confirmed booking keeps its seat (the session's count stays right) but loses every
    personal field; waitlist entries are withdrawn; the user row itself is deleted.
    """
    with db.session() as session:
        user = user_by_sender(session, sender_id)
        if user is None:
            return None
        lines = session.execute(delete(TranscriptLine).where(TranscriptLine.user_id == user.id))
        enquiries = session.execute(delete(Enquiry).where(Enquiry.user_id == user.id))
        handoffs = session.execute(delete(Handoff).where(Handoff.user_id == user.id))
        session.execute(delete(Notification).where(Notification.user_id == user.id))
        bookings = session.scalars(select(Booking).where(Booking.user_id == user.id)).all()
        for booking in bookings:
            booking.factory_name = None
            booking.attendees = []
            booking.contact = None
            booking.enquiry_id = None
        waitlist = session.scalars(select(WaitlistEntry).where(WaitlistEntry.user_id == user.id)).all()
        for entry in waitlist:
            entry.status = WaitlistStatus.LEFT if entry.status == WaitlistStatus.WAITING else entry.status
            entry.factory_name = None
            entry.contact = None
        session.flush()
        # Bookings and waitlist rows keep their seat but lose the link to the person.
        for booking in bookings:
            booking.user_id = None
        for entry in waitlist:
            entry.user_id = None
        session.flush()
        session.delete(user)
        return ForgetReport(
            transcript_lines=rowcount(lines),
            enquiries=rowcount(enquiries),
            handoffs=rowcount(handoffs),
            bookings_anonymised=len(bookings),
            waitlist_entries=len(waitlist),
        )
