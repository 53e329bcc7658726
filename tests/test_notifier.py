"""Two gateways share the store: every reminder goes out exactly once."""
from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from bot.conversation import ConversationService
from bot.notifier import Notifier
from bot.rasa_client import RasaClient
from store import notifications
from store.models import Notification, User, utcnow


async def test_two_gateways_send_each_notification_once(any_db):
    with any_db.session() as session:
        users = [User(channel="telegram", external_id=str(i), sender_id=f"tg-{i}", chat_id=i, language="zh")
                 for i in range(1, 21)]
        session.add_all(users)
        session.flush()
        for user in users:
            notifications.add(session, user_id=user.id, kind="reminder", dedupe_key=f"r-{user.id}",
                              payload={"text_key": "handoff_resumed", "language": "zh"},
                              due_at=utcnow() - dt.timedelta(minutes=1))
        notifications.add(session, user_id=users[0].id, kind="reminder", dedupe_key="future",
                          payload={"text_key": "handoff_resumed"}, due_at=utcnow() + dt.timedelta(hours=1))
    sent: list[tuple[str, int]] = []

    def deliver_as(name):
        async def deliver(user, text, buttons):
            await asyncio.sleep(0.01)
            sent.append((name, user.chat_id))
            assert text == "已切换回智能助手。欢迎继续提问关于 SCORE 的问题。"
            return True
        return deliver

    rasa = RasaClient("http://127.0.0.1:9")
    service = ConversationService(any_db, rasa)
    first, second = Notifier(service, deliver_as("a")), Notifier(service, deliver_as("b"))
    for _ in range(3):
        await asyncio.gather(first.run_once(), second.run_once())
    await rasa.close()
    assert sorted(chat for _, chat in sent) == list(range(1, 21))  # each once, none lost
    with any_db.session() as session:
        rows = session.scalars(select(Notification)).all()
        assert sum(r.sent_at is not None for r in rows) == 20
        assert next(r for r in rows if r.dedupe_key == "future").sent_at is None  # not due yet


async def test_failed_send_is_retried(sqlite_db):
    with sqlite_db.session() as session:
        user = User(channel="telegram", external_id="1", sender_id="tg-1", chat_id=1)
        session.add(user)
        session.flush()
        notifications.add(session, user_id=user.id, kind="reminder", dedupe_key="x",
                          payload={"text_key": "handoff_resumed"})
    attempts = []

    async def flaky(user, text, buttons):
        attempts.append(text)
        return len(attempts) > 1  # Telegram refused the first time

    rasa = RasaClient("http://127.0.0.1:9")
    notifier = Notifier(ConversationService(sqlite_db, rasa), flaky)
    await notifier.run_once()
    await notifier.run_once()
    await notifier.run_once()
    await rasa.close()
    assert len(attempts) == 2
