"""Users: the one place that parses sender ids and finds or creates the people who talk to
the assistant. The gateway, the action server and the console get `UserView`s, never rows.

A sender id is Rasa's conversation id. Gateways make it from their channel and the person's id
on that channel (`tg-12345`, `local-ana`); a REST client chooses its own (`abc`, `crm-42`,
`rest-7`). A REST sender's external id is the WHOLE sender id: stripping a guessed prefix made
`crm-42` and `app-42` the same (channel, external id) pair, and the second one crashed on the
unique constraint.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.db import Database
from store.models import User, utcnow
from store.transactions import transaction

# Channels whose gateway makes the sender id from a prefix and the channel's own user id.
CHANNEL_PREFIXES = {"telegram": "tg", "local": "local", "wechat": "wx", "web": "web"}
REST = "rest"
EXTERNAL_ID_LENGTH = 64  # users.external_id


def sender_id_for(channel: str, external_id: str) -> str:
    """The sender id a gateway uses for a person; a REST sender id is used as it is."""
    if channel == REST:
        return external_id
    return f"{CHANNEL_PREFIXES.get(channel, channel)}-{external_id}"


def parse_sender(sender_id: str) -> tuple[str, str]:
    """(channel, external id) of a sender id: `tg-12345` -> ("telegram", "12345"); anything
    without a gateway's prefix -> ("rest", the whole id, shortened with a hash if too long)."""
    prefix, sep, rest = sender_id.partition("-")
    for channel, known in CHANNEL_PREFIXES.items():
        if sep and prefix == known and rest:
            return channel, rest[:EXTERNAL_ID_LENGTH]
    external = sender_id
    if len(external) > EXTERNAL_ID_LENGTH:  # distinct long ids stay distinct
        digest = hashlib.sha256(sender_id.encode()).hexdigest()[:16]
        external = f"{sender_id[:EXTERNAL_ID_LENGTH - 17]}~{digest}"
    return REST, external


def channel_of(sender_id: str) -> str:
    return parse_sender(sender_id)[0]


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


def view_of(user: User) -> UserView:
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


def find_or_create(session: Session, sender_id: str, language: str | None = None) -> User:
    """The store's user for a Rasa sender id, created when the gateway has not (local chat,
    REST, tests, an action that sees the conversation first)."""
    user = user_by_sender(session, sender_id)
    if user is None:
        channel, external = parse_sender(sender_id)
        user = User(channel=channel, external_id=external, sender_id=sender_id,
                    language=language or "en")
        session.add(user)
        session.flush()
    return user


def upsert(
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
    """A gateway's user, created or refreshed with what the channel tells about them."""
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
        return view_of(upsert(session, channel, external_id, chat_id=chat_id, display_name=display_name,
                              username=username, telegram_language_code=telegram_language_code,
                              default_language=default_language))

    return transaction(db, run)


def ensure_user(db: Database, sender_id: str, language: str | None = None) -> int:
    """The id of the sender's user, created if needed (one transaction)."""
    return transaction(db, lambda session: find_or_create(session, sender_id, language).id)


def get_user(db: Database, sender_id: str) -> UserView | None:
    with db.session() as session:
        user = user_by_sender(session, sender_id)
        return view_of(user) if user else None


def get_user_by_id(db: Database, user_id: int) -> UserView | None:
    with db.session() as session:
        user = session.get(User, user_id)
        return view_of(user) if user else None


def set_language(db: Database, user_id: int, language: str, *, chosen: bool = False) -> None:
    with db.session() as session:
        user = session.get(User, user_id)
        if user is None:
            return
        user.language = language
        if chosen:
            user.language_chosen = True


def set_contact_phone(db: Database, user_id: int, phone: str) -> None:
    """The phone number a user shared with Telegram's contact button."""
    with db.session() as session:
        user = session.get(User, user_id)
        if user is not None:
            user.contact_phone = phone[:64]
