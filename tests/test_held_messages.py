"""Held messages outlive the gateway (bot/conversation.py with `durable`, store/inbox.py), on
SQLite and PostgreSQL: a gateway that holds messages for an unreachable Rasa dies; the next one
answers them in order, or asks the user once per message to send it again.

A gateway's death is a service whose holder is a process of this host that has exited (its
turn tasks and heartbeat stop without any clean-up, as under `kill -9`). The real process kill
through the Telegram gateway: tests/e2e/test_held_restart.py."""
from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

from sqlalchemy import select

import i18n
from bot.conversation import ConversationService
from bot.rasa_client import Reply
from store import conversations
from store.inbox import HELD, SENDING
from store.models import InboxMessage
from tests.test_conversation_hold import WAIT, FlakyRasa, Inbox, message, until


def dead_holder() -> str:
    """The holder name of a gateway process on this host that is gone."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return f"{socket.gethostname()}:{int(done.stdout)}:dead"


class Outbox:
    """What a recovering gateway sends (chat id, text)."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    async def __call__(self, chat_id: int, replies: list[Reply]) -> None:
        self.sent += [(chat_id, reply.text) for reply in replies]


def rows(db) -> list[tuple[str, str]]:
    with db.session() as session:
        return [(row.text, row.state) for row in session.scalars(select(InboxMessage).order_by(InboxMessage.id))]


async def die(service: ConversationService, turns: list[asyncio.Task]) -> None:
    """The gateway process ends: its tasks stop mid-turn, nothing is cleaned up."""
    for task in turns + [t for t in (service._heartbeat, service._poller) if t is not None]:
        task.cancel()
    await asyncio.gather(*turns, return_exceptions=True)


async def gateway_dies_holding(db, texts: list[str], user: str = "11", window: float = 60) -> Inbox:
    rasa = FlakyRasa()
    gone = ConversationService(db, rasa, hold_window=window, durable=True)
    gone.holder = dead_holder()
    inbox = Inbox()
    turns = [asyncio.create_task(gone.handle(message(user, text, inbox))) for text in texts]
    await until(lambda: len(rows(db)) == 1 and inbox.notices)
    await asyncio.sleep(0.2)
    assert rows(db) == [(texts[0], HELD)] and [n for _, n in inbox.notices] == [WAIT]
    await die(gone, turns)
    return inbox


async def test_a_restarted_gateway_answers_what_the_dead_one_held_in_order(any_db):
    inbox = await gateway_dies_holding(any_db, ["first question"])
    rasa = FlakyRasa()
    rasa.up.set()
    service = ConversationService(any_db, rasa, hold_window=60, durable=True)
    outbox = Outbox()
    await service.start_recovery("telegram", outbox)
    await until(lambda: outbox.sent)
    await service.stop_recovery()
    assert outbox.sent == [(11, "answer to first question")]
    assert rasa.taken == [("tg-11", "first question")]
    assert rows(any_db) == []
    assert [n for _, n in inbox.notices] == [WAIT]  # no second "please wait"
    user = conversations.get_user(any_db, "tg-11")
    lines = [line.text for line in conversations.recent_lines(any_db, user.id, limit=20)]
    assert lines == ["first question", WAIT, "answer to first question"]


async def test_past_the_window_each_message_is_asked_again_exactly_once_by_racing_gateways(any_db):
    await gateway_dies_holding(any_db, ["can we join"], user="12", window=0.5)
    await asyncio.sleep(0.6)
    rasa = FlakyRasa()
    rasa.up.set()
    outbox = Outbox()
    # Two gateways start at once: each message is taken over by one of them only.
    first, second = (ConversationService(any_db, rasa, hold_window=0.5, durable=True) for _ in range(2))
    second.holder = f"other-host:1:{second.holder}"  # a replica elsewhere
    await asyncio.gather(first.resume_held("telegram", outbox), second.resume_held("telegram", outbox))
    await until(lambda: outbox.sent)
    await asyncio.sleep(0.3)
    assert outbox.sent == [(12, i18n.t("held_send_again", "en", text="can we join"))]
    assert rasa.taken == [] and rows(any_db) == []


async def test_a_message_that_may_have_reached_rasa_is_not_sent_again(any_db):
    await gateway_dies_holding(any_db, ["confirm the booking"], user="13")
    with any_db.session() as session:  # it was on its way to Rasa when the gateway died
        session.execute(InboxMessage.__table__.update().values(state=SENDING))
    rasa = FlakyRasa()
    rasa.up.set()
    service = ConversationService(any_db, rasa, hold_window=60, durable=True)
    outbox = Outbox()
    await service.resume_held("telegram", outbox)
    await until(lambda: outbox.sent)
    assert outbox.sent == [(13, i18n.t("inbox_may_be_unanswered", "en", text="confirm the booking"))]
    assert rasa.taken == [] and rows(any_db) == []


async def test_a_live_gateways_held_messages_are_left_to_it(any_db):
    rasa = FlakyRasa()
    live = ConversationService(any_db, rasa, hold_window=60, durable=True)
    live.heartbeat = 0.1
    turn = asyncio.create_task(live.handle(message("14", "modules?", Inbox())))
    await until(lambda: len(rows(any_db)) == 1)
    other = ConversationService(any_db, rasa, hold_window=60, durable=True)
    other.holder = f"other-host:1:{other.holder}"
    other.stale_after = 1.0
    outbox = Outbox()
    for _ in range(3):  # touched every 0.1 s: never stale
        await asyncio.sleep(0.5)
        assert await other.resume_held("telegram", outbox) == 0
    rasa.up.set()
    assert [r.text for r in (await turn).replies] == ["answer to modules?"]
    assert rows(any_db) == [] and outbox.sent == [] and rasa.taken == [("tg-14", "modules?")]


async def test_forgetting_a_user_drops_their_held_messages(any_db):
    await gateway_dies_holding(any_db, ["my phone is 123"], user="15")
    assert conversations.forget_user(any_db, "tg-15") is not None
    assert rows(any_db) == []


async def test_a_held_message_that_fails_to_resume_is_asked_for_not_retried_forever(any_db):
    await gateway_dies_holding(any_db, ["hello"], user="16")

    class BrokenRasa(FlakyRasa):
        async def send(self, sender, text, metadata=None, timeout=None):
            raise RuntimeError("a bug")

    service = ConversationService(any_db, BrokenRasa(), hold_window=60, durable=True)
    outbox = Outbox()
    await service.resume_held("telegram", outbox)
    await until(lambda: outbox.sent)
    assert outbox.sent == [(16, i18n.t("held_send_again", "en", text="hello"))]
    assert rows(any_db) == [] and not service.inbox_ids
