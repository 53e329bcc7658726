"""Users, transcript lines and processed Telegram updates."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.db import Database, rowcount
from store.kinds import Channel, WaitlistStatus
from store.models import (
    Booking,
    Enquiry,
    Handoff,
    Notification,
    ProcessedUpdate,
    TranscriptLine,
    User,
    WaitlistEntry,
    utcnow,
)
from store.transactions import transaction

CHANNEL_PREFIXES: dict[str, str] = {
    Channel.TELEGRAM: "tg", Channel.LOCAL: "local", Channel.REST: "rest", Channel.WECHAT: "wx", Channel.WEB: "web",
}
_CHANNEL_OF_PREFIX = {prefix: Channel(channel) for channel, prefix in CHANNEL_PREFIXES.items()}


def sender_id_for(channel: str, external_id: str) -> str:
    return f"{CHANNEL_PREFIXES.get(channel, channel)}-{external_id}"


def channel_of(sender_id: str) -> Channel:
    prefix = sender_id.split("-", 1)[0]
    return _CHANNEL_OF_PREFIX.get(prefix, Channel.REST)


@dataclass(frozen=True)
class UserView:
    """What the gateway needs to know about a user for one turn (detached from the session)."""

    id: int
    sender_id: str
    chat_id: int | None
    language: str
    language_chosen: bool
    paused: bool
    display_name: str | None


def _view(user: User) -> UserView:
    return UserView(
        id=user.id,
        sender_id=user.sender_id,
        chat_id=user.chat_id,
        language=user.language,
        language_chosen=user.language_chosen,
        paused=user.paused,
        display_name=user.display_name,
    )


def user_by_sender(session: Session, sender_id: str) -> User | None:
    return session.scalars(select(User).where(User.sender_id == sender_id)).one_or_none()


def ensure_user_in_session(session: Session, sender_id: str) -> User:
    """The store's user for a Rasa conversation id, created when an action sees it first."""
    user = user_by_sender(session, sender_id)
    if user is None:
        channel = channel_of(sender_id)
        user = User(
            channel=channel,
            external_id=sender_id.split("-", 1)[-1],
            sender_id=sender_id,
        )
        session.add(user)
        session.flush()
    return user


def _upsert(
    session: Session,
    channel: str,
    external_id: str,
    *,
    chat_id: int | None,
    display_name: str | None,
    username: str | None,
    telegram_language_code: str | None,
    default_language: str,
) -> User:
    sender_id = sender_id_for(channel, external_id)
    user = user_by_sender(session, sender_id)
    if user is None:
        user = User(channel=channel, external_id=external_id, sender_id=sender_id, language=default_language)
        session.add(user)
    if chat_id is not None:
        user.chat_id = chat_id
    if display_name:
        user.display_name = display_name[:200]
    if username:
        user.username = username[:64]
    if telegram_language_code:
        user.telegram_language_code = telegram_language_code[:16]
    user.last_seen_at = utcnow()
    session.flush()
    return user


def upsert_user(
    db: Database,
    channel: str,
    external_id: str,
    *,
    chat_id: int | None = None,
    display_name: str | None = None,
    username: str | None = None,
    telegram_language_code: str | None = None,
    default_language: str = "en",
) -> UserView:
    # Two gateways may create the same user at once: the loser retries and finds the row.
    def run(session: Session) -> UserView:
        return _view(_upsert(session, channel, external_id, chat_id=chat_id, display_name=display_name,
                             username=username, telegram_language_code=telegram_language_code,
                             default_language=default_language))

    return transaction(db, run)


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
) -> tuple[UserView, int]:
    """The start of a turn in one transaction: find or create the user, set the language
    `decide_language(current, chosen)` gives (chosen: the user picked it with /language or a
    language button), write the user's message to the transcript."""

    def run(session: Session) -> tuple[UserView, int]:
        user = _upsert(session, channel, external_id, chat_id=chat_id, display_name=display_name,
                       username=username, telegram_language_code=telegram_language_code,
                       default_language=default_language)
        user.language = decide_language(user.language, user.language_chosen)
        line = TranscriptLine(user_id=user.id, chat_id=chat_id, direction="in", text=text,
                              language=user.language)
        session.add(line)
        session.flush()
        return _view(user), line.id

    return transaction(db, run)


def record_lines(
    db: Database, user_id: int, texts: list[str], *, direction: str = "out", chat_id: int | None = None,
    language: str | None = None, staff_name: str | None = None,
    intent: tuple[int, str, float | None] | None = None,
) -> None:
    """Several lines of one turn (a bot answer may be several messages), in one transaction;
    `intent` = (line id, intent, confidence): what Rasa understood of the user's line."""
    with db.session() as session:
        session.add_all(
            TranscriptLine(user_id=user_id, chat_id=chat_id, direction=direction, text=text,
                           language=language, staff_name=staff_name)
            for text in texts
        )
        if intent is not None:
            line = session.get(TranscriptLine, intent[0])
            if line is not None:
                line.intent, line.confidence = intent[1], intent[2]


def get_user(db: Database, sender_id: str) -> UserView | None:
    with db.session() as session:
        user = user_by_sender(session, sender_id)
        return _view(user) if user else None


def set_language(db: Database, user_id: int, language: str, *, chosen: bool = False) -> None:
    with db.session() as session:
        user = session.get(User, user_id)
        if user is None:
            return
        user.language = language
        if chosen:
            user.language_chosen = True


def claim_update(db: Database, update_id: int, bot_id: str = "") -> bool:
    """True the first time an update id is seen; False for a repeated delivery."""
    try:
        with db.session() as session:
            session.add(ProcessedUpdate(update_id=update_id, bot_id=bot_id))
        return True
    except IntegrityError:
        return False


def recent_lines(db: Database, user_id: int, limit: int = 10) -> list[TranscriptLine]:
    with db.session() as session:
        rows = session.scalars(
            select(TranscriptLine)
            .where(TranscriptLine.user_id == user_id)
            .order_by(TranscriptLine.created_at.desc(), TranscriptLine.id.desc())
            .limit(limit)
        ).all()
        return list(reversed(rows))


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
