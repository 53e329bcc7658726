"""The Bot API misbehaves: 429 with retry_after, a proxy's 502, a dropped connection — on
getUpdates (updates must not be lost) and on sendMessage (the answer must not be lost), and no
update is handled twice (one transcript line per user message, one copy of each answer).
Real gateway, real Rasa and action server; faults from tests/fakes/bot_api.py."""
from __future__ import annotations

import asyncio

from sqlalchemy import select

import i18n
from store.models import TranscriptLine, User


def lines(db, telegram_user: int, direction: str) -> list[str]:
    with db.session() as session:
        return list(session.scalars(
            select(TranscriptLine.text).join(User, User.id == TranscriptLine.user_id)
            .where(User.sender_id == f"tg-{telegram_user}", TranscriptLine.direction == direction)
            .order_by(TranscriptLine.id)))


async def settled(api, seconds: float = 2.0) -> None:
    """Let retries and late duplicates happen before counting."""
    await asyncio.sleep(seconds)


async def test_get_updates_faults_lose_nothing_and_repeat_nothing(gateway) -> None:
    api, db = gateway.api, gateway.db
    api.retry_after = 1
    api.inject("getUpdates", "429", "502", "drop", "drop", "502")
    users = [gateway.new_user() for _ in range(3)]
    questions = ["what is SCORE", "how long is the training", "who funds SCORE"]
    for user, question in zip(users, questions, strict=True):
        api.push_text(user, question)
    for user in users:
        await api.wait_sent(user, 1, 60)
    await settled(api)
    assert [f for m, f in api.faulted if m == "getUpdates"] == ["429", "502", "drop", "drop", "502"]
    unavailable = i18n.t("unavailable", "en")
    for user, question in zip(users, questions, strict=True):
        assert lines(db, user, "in") == [question]  # handled once
        texts = api.texts(user)
        assert unavailable not in texts, texts
        assert len(texts) == len(set(texts)) == len(lines(db, user, "out")), texts  # each answer once


async def test_send_message_faults_lose_no_answer(gateway) -> None:
    api, db = gateway.api, gateway.db
    api.retry_after = 1
    unavailable = i18n.t("unavailable", "en")
    for fault in ("429", "502", "drop"):
        user = gateway.new_user()
        api.inject("sendMessage", fault)
        api.push_text(user, "what is SCORE")
        await api.wait_sent(user, 1, 60)
        await settled(api)
        texts = api.texts(user)
        assert ("sendMessage", fault) in api.faulted
        assert unavailable not in texts, (fault, texts)
        assert lines(db, user, "in") == ["what is SCORE"], fault
        # every answer the turn wrote reached the user, once
        assert texts == [t for t in lines(db, user, "out")], (fault, texts, lines(db, user, "out"))


async def test_update_delivered_again_after_a_drop_is_handled_once(gateway) -> None:
    api, db = gateway.api, gateway.db
    user = gateway.new_user()
    update_id = api.push_text(user, "what is SCORE")
    await api.wait_sent(user, 1, 60)
    # Telegram did not see the offset confirmed (the confirming getUpdates was dropped) and
    # delivers the update again.
    api.inject("getUpdates", "drop")
    api.repeat(update_id)
    await settled(api, 3.0)
    assert lines(db, user, "in") == ["what is SCORE"]
    assert len(api.texts(user)) == len(lines(db, user, "out"))
