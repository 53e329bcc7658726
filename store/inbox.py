"""The inbox: every message a channel receives (the Telegram gateway: every update), kept in the
store from receipt until the transaction that records its answer, so that a gateway that dies (or
is restarted by the launcher) loses none of them (bot/conversation.py, bot/telegram/inbox.py).

A row is `received` (nothing done yet: handling it again is safe), `held` (Rasa did not take it:
sending it again cannot answer it twice) or `sending` (the turn started: Rasa may have it, so it
is never sent again; the user is asked instead).

A gateway process is a `holder` ("host:pid:run"). While it has rows it touches them every few
seconds. Another gateway, or the same one restarted, takes over rows whose holder is gone: at
once when the holder ran on this host and its process is dead, otherwise when the rows have not
been touched for `stale_after` seconds (another host's gateway). The take-over is a conditional
UPDATE, so two gateways never both take a row.
"""
from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.db import Database, rowcount
from store.models import InboxMessage, ProcessedUpdate, User, utcnow

RECEIVED = "received"  # nothing done with it yet: handling it again is safe
HELD = "held"  # Rasa did not take it: sending it again cannot answer it twice
SENDING = "sending"  # the turn started: Rasa may have taken it


def new_holder() -> str:
    """This gateway process, as it appears in the rows it holds."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class InboxView:
    id: int
    channel: str
    external_id: str
    user_id: int | None  # None: received, the turn never started
    sender_id: str | None
    chat_id: int | None
    text: str
    shown_text: str
    language: str | None
    received_at: dt.datetime
    state: str
    update_id: int | None = None
    payload: str | None = None  # the update as received (JSON)


def receive(db: Database, holder: str, channel: str, external_id: str, chat_id: int | None,
            update_id: int, bot_id: str, payload: str, shown_text: str,
            received_at: dt.datetime) -> int | None:
    """A message as it arrives, before it is queued (and before Telegram is told it arrived),
    and the claim of its update id, in one transaction; None: a repeated delivery."""
    try:
        with db.session() as session:
            session.add(ProcessedUpdate(update_id=update_id, bot_id=bot_id))
            row = InboxMessage(channel=channel, external_id=external_id, update_id=update_id,
                               payload=payload, chat_id=chat_id, text="", shown_text=shown_text,
                               received_at=received_at, state=RECEIVED, holder=holder, touched_at=utcnow())
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:
        return None


def keep(db: Database, holder: str, user_id: int, text: str, shown_text: str, language: str,
         received_at: dt.datetime, chat_id: int | None, state: str = HELD) -> int:
    """A row for a message that has none (it did not come through `receive`), once it is held."""
    with db.session() as session:
        user = session.get(User, user_id)
        row = InboxMessage(channel=user.channel if user else "", external_id=user.external_id if user else "",
                           user_id=user_id, chat_id=chat_id, text=text, shown_text=shown_text,
                           language=language, received_at=received_at, state=state, holder=holder,
                           touched_at=utcnow())
        session.add(row)
        session.flush()
        return row.id


def start(session: Session, inbox_id: int, user_id: int, text: str, shown_text: str, language: str) -> None:
    """The turn starts (in its first transaction): from now Rasa may have the message."""
    session.execute(update(InboxMessage).where(InboxMessage.id == inbox_id).values(
        state=SENDING, user_id=user_id, text=text, shown_text=shown_text, language=language))


def mark(db: Database, inbox_id: int, state: str) -> None:
    with db.session() as session:
        session.execute(update(InboxMessage).where(InboxMessage.id == inbox_id)
                        .values(state=state, touched_at=utcnow()))


def touch(db: Database, inbox_ids: list[int]) -> None:
    """The holder's heartbeat: these are still held by a live gateway."""
    if inbox_ids:
        with db.session() as session:
            session.execute(update(InboxMessage).where(InboxMessage.id.in_(inbox_ids)).values(touched_at=utcnow()))


def release(session: Session, inbox_id: int) -> None:
    """The message is answered (or the user asked to send it again): in that transaction."""
    session.execute(delete(InboxMessage).where(InboxMessage.id == inbox_id))


def release_all(db: Database, inbox_ids: list[int]) -> None:
    with db.session() as session:
        session.execute(delete(InboxMessage).where(InboxMessage.id.in_(inbox_ids)))


def _holder_is_gone(holder: str, me: str) -> bool:
    """Known for sure only on this host: the holder's process is dead (or it is this very
    process's pid in an earlier run, as in a restarted container)."""
    host, _, rest = holder.partition(":")
    pid_text, _, _run = rest.partition(":")
    my_host, _, my_rest = me.partition(":")
    if host != my_host or holder == me or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == int(my_rest.partition(":")[0]):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def take_over(db: Database, channel: str, holder: str, stale_after: float,
              exclude: list[int] | None = None) -> list[InboxView]:
    """The rows of `channel` whose holder is gone, now held by `holder`, in arrival order
    (`exclude`: the rows `holder` holds in memory; its own others are taken again when stale)."""
    stale = utcnow() - dt.timedelta(seconds=stale_after)
    with db.session() as session:
        query = (select(InboxMessage, User).outerjoin(User, User.id == InboxMessage.user_id)
                 .where(InboxMessage.channel == channel).order_by(InboxMessage.id))
        if exclude:
            query = query.where(InboxMessage.id.not_in(exclude))
        rows = session.execute(query).all()
    taken: list[InboxView] = []
    for row, user in rows:
        if row.touched_at > stale and not _holder_is_gone(row.holder, holder):
            continue  # a live gateway (or one that may be) still holds it
        with db.session() as session:
            # Only if no other gateway took it meanwhile.
            claimed = session.execute(
                update(InboxMessage)
                .where(InboxMessage.id == row.id, InboxMessage.holder == row.holder)
                .values(holder=holder, touched_at=utcnow()))
        if rowcount(claimed) == 1:
            taken.append(InboxView(row.id, row.channel, row.external_id, row.user_id,
                                   user.sender_id if user else None, row.chat_id, row.text, row.shown_text,
                                   row.language, row.received_at, row.state, row.update_id, row.payload))
    return taken
