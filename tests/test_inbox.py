"""The inbox (store/inbox.py, bot/conversation.py with `durable`), on SQLite and PostgreSQL:
every message received is a row until the transaction that records its answer; what a gateway
that died received is handled again (only received), sent to Rasa again (held) or asked for
(it may have reached Rasa, or the window is over), once. Through a real gateway process killed
with SIGKILL: tests/e2e/test_inbox_restart.py."""
from __future__ import annotations

import asyncio
import datetime as dt
import json

from sqlalchemy import select, text, update

import i18n
from bot.conversation import KEEP_PROCESSED_UPDATES, ConversationService
from store import conversations, inbox, users
from store.inbox import InboxView
from store.models import InboxMessage, ProcessedUpdate, User
from tests.test_conversation_hold import FlakyRasa, message, until
from tests.test_held_messages import Outbox, dead_holder


def rows(db) -> list[tuple[str, str, str]]:
    with db.session() as session:
        return [(row.shown_text, row.text, row.state)
                for row in session.scalars(select(InboxMessage).order_by(InboxMessage.id))]


def receive(db, holder: str, update_id: int, shown: str, user: str = "21",
            received: dt.datetime | None = None) -> int | None:
    payload = json.dumps({"update_id": update_id, "message": {"text": shown}})
    return inbox.receive(db, holder, "telegram", user, int(user), update_id, "bot", payload, shown,
                         received or dt.datetime.now(dt.UTC))


def test_a_message_is_recorded_once_on_receipt_with_the_claim_of_its_update(any_db):
    first = receive(any_db, "h:1:a", 501, "hello")
    assert first is not None and rows(any_db) == [("hello", "", inbox.RECEIVED)]
    assert receive(any_db, "h:1:a", 501, "hello") is None  # delivered again: dropped
    with any_db.session() as session:
        assert session.scalars(select(ProcessedUpdate.update_id)).all() == [501]
    assert rows(any_db) == [("hello", "", inbox.RECEIVED)]
    # Answered: the row goes with the transaction that records the answer; the claim stays.
    assert conversations.claim_update(any_db, 501, "bot") is False


async def test_a_turn_marks_its_row_sending_and_its_answer_takes_it(any_db):
    row = receive(any_db, "h:1:a", 502, "modules?")
    rasa = FlakyRasa()
    rasa.up.set()
    service = ConversationService(any_db, rasa, hold_window=60, durable=True)
    service.track(row)
    seen: list[list[tuple[str, str, str]]] = []
    send = rasa.send

    async def watching(sender, text, metadata=None, timeout=None):
        seen.append(rows(any_db))  # what a gateway dying now would leave
        return await send(sender, text, metadata, timeout)

    rasa.send = watching  # type: ignore[method-assign]
    result = await service.handle(message("22", "modules?", inbox_id=row))
    assert [r.text for r in result.replies] == ["answer to modules?"]
    assert seen == [[("modules?", "modules?", inbox.SENDING)]]
    assert rows(any_db) == [] and not service.inbox_ids


async def test_a_paused_conversations_message_leaves_the_inbox_with_its_line(any_db):
    row = receive(any_db, "h:1:a", 503, "are you there", user="23")
    user = users.upsert_user(any_db, "telegram", "23", chat_id=23)
    with any_db.session() as session:  # staff have the conversation
        session.get(User, user.id).paused = True  # type: ignore[union-attr]
    rasa = FlakyRasa()
    service = ConversationService(any_db, rasa, hold_window=60, durable=True)
    service.track(row)
    assert (await service.handle(message("23", "are you there", inbox_id=row))).paused
    assert rows(any_db) == [] and rasa.taken == []


async def test_a_dead_gateways_rows_are_replayed_resumed_or_asked_for_in_order(any_db):
    gone = dead_holder()
    old = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=300)
    late = receive(any_db, gone, 601, "too late", user="24", received=old)
    sending = receive(any_db, gone, 602, "confirm the booking", user="24")
    received = [receive(any_db, gone, 603, "first", user="24"), receive(any_db, gone, 604, "second", user="24")]
    user = users.upsert_user(any_db, "telegram", "24", chat_id=24)
    with any_db.session() as session:
        inbox.start(session, sending, user.id, "/confirm", "confirm the booking", "en")
    rasa = FlakyRasa()
    rasa.up.set()
    service = ConversationService(any_db, rasa, hold_window=60, durable=True)
    outbox = Outbox()
    replayed: list[InboxView] = []

    async def replay(row: InboxView) -> None:
        replayed.append(row)

    assert await service.resume_held("telegram", outbox, replay) == 4
    await until(lambda: len(outbox.sent) == 2)
    await asyncio.sleep(0.2)
    assert outbox.sent == [(24, i18n.t("held_send_again", "en", text="too late")),
                           (24, i18n.t("inbox_may_be_unanswered", "en", text="confirm the booking"))]
    assert [(r.id, r.shown_text) for r in replayed] == [(received[0], "first"), (received[1], "second")]
    assert rasa.taken == []  # nothing sent again; the replayed ones are the channel's to handle
    assert rows(any_db) == [("first", "", inbox.RECEIVED), ("second", "", inbox.RECEIVED)]
    assert set(service.inbox_ids) == set(received)  # now this gateway's: touched, not taken again
    assert late is not None and await service.resume_held("telegram", outbox, replay) == 0
    for row in received:  # as the channel does once it has handled them
        await service.release(row)
    assert rows(any_db) == [] and not service.inbox_ids
    await service.stop_recovery()


def test_the_migration_keeps_the_held_rows(any_db):
    """0009 turns held_messages into inbox_messages on a store that has held rows."""
    from alembic import command

    from store.migrate import alembic_config, upgrade

    user = users.upsert_user(any_db, "telegram", "25", chat_id=25)
    command.downgrade(alembic_config(any_db.url), "0008_held_messages")
    with any_db.engine.begin() as conn:
        for n, state in ((1, "held"), (2, "sending")):
            conn.execute(text(
                "INSERT INTO held_messages (user_id, chat_id, text, shown_text, language, received_at,"
                " state, holder, touched_at) VALUES (:user, 25, :text, :text, 'zh', '2030-01-01 01:00:00',"
                " :state, 'h:1:a', '2030-01-01 01:00:00')"), {"user": user.id, "text": f"m{n}", "state": state})
    upgrade(any_db.url)
    with any_db.session() as session:
        kept = session.scalars(select(InboxMessage).order_by(InboxMessage.id)).all()
        assert [(r.channel, r.external_id, r.user_id, r.text, r.language, r.state) for r in kept] == [
            ("telegram", "25", user.id, "m1", "zh", "held"), ("telegram", "25", user.id, "m2", "zh", "sending")]
    # New rows get ids after the copied ones (PostgreSQL's sequence too).
    assert receive(any_db, "h:1:a", 701, "new", user="25") > max(r.id for r in kept)


def test_handled_update_ids_are_kept_two_days_then_pruned(any_db):
    now = dt.datetime.now(dt.UTC)
    for update_id in (601, 602, 603):
        assert conversations.claim_update(any_db, update_id, "bot")
    with any_db.session() as session:  # 601 was handled three days ago, 602 a day ago
        for update_id, age in ((601, dt.timedelta(days=3)), (602, dt.timedelta(days=1))):
            session.execute(update(ProcessedUpdate).where(ProcessedUpdate.update_id == update_id)
                            .values(created_at=now - age))
    assert conversations.prune_processed_updates(any_db, now - KEEP_PROCESSED_UPDATES) == 1
    with any_db.session() as session:
        assert sorted(session.scalars(select(ProcessedUpdate.update_id)).all()) == [602, 603]
    # within the two days a repeated delivery is still dropped
    assert conversations.claim_update(any_db, 602, "bot") is False


async def test_a_running_gateway_prunes_the_old_update_ids(any_db):
    conversations.claim_update(any_db, 611, "bot")
    conversations.claim_update(any_db, 612, "bot")
    with any_db.session() as session:
        session.execute(update(ProcessedUpdate).where(ProcessedUpdate.update_id == 611)
                        .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=5)))
    rasa = FlakyRasa()
    rasa.up.set()
    service = ConversationService(any_db, rasa, hold_window=60, durable=True)
    service.recover_every = 0.01
    await service.start_recovery("telegram", Outbox())

    def kept() -> list[int]:
        with any_db.session() as session:
            return sorted(session.scalars(select(ProcessedUpdate.update_id)).all())

    try:
        await until(lambda: kept() == [612])
    finally:
        await service.stop_recovery()
