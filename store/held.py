"""Messages the gateway holds while Rasa is unreachable, kept in the store so that a gateway
that dies (or is restarted by the launcher) does not lose them (bot/conversation.py).

A gateway process is a `holder` ("host:pid:run"). While it holds messages in memory it touches
their rows every few seconds. Another gateway, or the same one restarted, takes over rows whose
holder is gone: at once when the holder ran on this host and its process is dead, otherwise
when the rows have not been touched for `stale_after` seconds (another host's gateway). The
take-over is a conditional UPDATE, so two gateways never both take a row.
"""
from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from store.db import Database, rowcount
from store.models import HeldMessage, User, utcnow

HELD = "held"  # Rasa did not take it: sending it again cannot answer it twice
SENDING = "sending"  # sent to Rasa, no answer yet: Rasa may have taken it


def new_holder() -> str:
    """This gateway process, as it appears in the rows it holds."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class HeldView:
    id: int
    user_id: int
    sender_id: str
    channel: str
    external_id: str
    chat_id: int | None
    text: str
    shown_text: str
    language: str
    received_at: dt.datetime
    state: str


def keep(db: Database, holder: str, user_id: int, text: str, shown_text: str, language: str,
         received_at: dt.datetime, chat_id: int | None, state: str = HELD) -> int:
    with db.session() as session:
        row = HeldMessage(user_id=user_id, chat_id=chat_id, text=text, shown_text=shown_text,
                          language=language, received_at=received_at, state=state, holder=holder,
                          touched_at=utcnow())
        session.add(row)
        session.flush()
        return row.id


def mark(db: Database, held_id: int, state: str) -> None:
    with db.session() as session:
        session.execute(update(HeldMessage).where(HeldMessage.id == held_id)
                        .values(state=state, touched_at=utcnow()))


def touch(db: Database, held_ids: list[int]) -> None:
    """The holder's heartbeat: these are still held by a live gateway."""
    if held_ids:
        with db.session() as session:
            session.execute(update(HeldMessage).where(HeldMessage.id.in_(held_ids)).values(touched_at=utcnow()))


def release(session: Session, held_id: int) -> None:
    """The message is answered (or the user asked to send it again): in that transaction."""
    session.execute(delete(HeldMessage).where(HeldMessage.id == held_id))


def release_all(db: Database, held_ids: list[int]) -> None:
    with db.session() as session:
        session.execute(delete(HeldMessage).where(HeldMessage.id.in_(held_ids)))


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
              exclude: list[int] | None = None) -> list[HeldView]:
    """The rows of `channel` whose holder is gone, now held by `holder`, in arrival order
    (`exclude`: the rows `holder` holds in memory; its own others are taken again when stale)."""
    stale = utcnow() - dt.timedelta(seconds=stale_after)
    with db.session() as session:
        query = (select(HeldMessage, User).join(User, User.id == HeldMessage.user_id)
                 .where(User.channel == channel).order_by(HeldMessage.id))
        if exclude:
            query = query.where(HeldMessage.id.not_in(exclude))
        rows = session.execute(query).all()
    taken: list[HeldView] = []
    for row, user in rows:
        if row.touched_at > stale and not _holder_is_gone(row.holder, holder):
            continue  # a live gateway (or one that may be) still holds it
        with db.session() as session:
            # Only if no other gateway took it meanwhile.
            claimed = session.execute(
                update(HeldMessage)
                .where(HeldMessage.id == row.id, HeldMessage.holder == row.holder)
                .values(holder=holder, touched_at=utcnow()))
        if rowcount(claimed) == 1:
            taken.append(HeldView(row.id, user.id, user.sender_id, user.channel, user.external_id,
                                  row.chat_id, row.text, row.shown_text, row.language, row.received_at,
                                  row.state))
    return taken
