"""Every message a gateway received is in the store's inbox until it is answered (store/inbox.py,
bot/telegram/inbox.py): a gateway process killed with SIGKILL loses none.

(a) Two messages wait in the killed gateway's per-chat queue behind one it holds for an
unreachable Rasa: the next gateway answers all three in order, exactly once, although Telegram
delivers the three updates again.
(b) The gateway is killed in the middle of a normal turn (Rasa has the message; a relay in front
of Rasa delays the answer): the next gateway tells the user once, quoting the message, that it may
not have been answered, and does not send it to Rasa again.

As in tests/e2e/test_held_restart.py, the first gateway is a real `python -m bot` process; the
second is the gateway Application in this process, on the same store."""
from __future__ import annotations

import asyncio
import os
import signal

import i18n
from store.db import Database
from tests.e2e.gateways import Relay, gateway_process, held_rows, running_gateway, tracker_texts
from tests.fakes.bot_api import FakeBotApi

WAITING = i18n.t("rasa_waiting", "en")
NOT_ANSWERS = (WAITING, i18n.t("rasa_send_again", "en"), i18n.t("unavailable", "en"))


async def test_messages_queued_behind_a_held_one_are_answered_in_order_once_by_the_next_gateway(
        stack, tmp_path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'assistant.db'}")
    db.create_all()
    api = FakeBotApi()
    await api.start()
    log = tmp_path / "gateway1.log"
    questions = ["what is SCORE", "how long is the training", "who funds SCORE"]
    try:
        user = 90_000_000 + os.getpid() % 1_000_000
        relay = Relay(stack.settings.rasa_port)
        port = await relay.start()
        async with gateway_process(stack, db, api, f"http://127.0.0.1:{port}", log) as gateway:
            await api.wait_for(lambda: any(c.method == "getUpdates" for c in api.calls), 120)
            await relay.cut()
            update_ids = [api.push_text(user, questions[0])]
            assert await api.wait_sent(user, 1, 60) == [WAITING], log.read_text()[-3000:]
            update_ids += [api.push_text(user, text) for text in questions[1:]]
            # The two later ones wait in the chat's queue (fetched, their offset confirmed).
            await api.wait_for(lambda: held_rows(db) == [(questions[0], "held"), (questions[1], "received"),
                                                          (questions[2], "received")], 30)
            await api.wait_for(lambda: any(int(c.params.get("offset", 0)) > update_ids[-1]
                                           for c in api.calls if c.method == "getUpdates"), 30)
            gateway.send_signal(signal.SIGKILL)
            assert await asyncio.to_thread(gateway.wait, 20) == -signal.SIGKILL
        for update_id in update_ids:
            api.repeat(update_id)  # Telegram delivers all three again to the next gateway
        async with running_gateway(stack, db, api=api):
            await api.wait_sent(user, 4, 180)
            await asyncio.sleep(3.0)  # the repeated updates, and any second answer, would be here
        texts = api.texts(user)
        assert len(texts) == 4 and texts[0] == WAITING, texts
        assert not set(texts[1:]) & set(NOT_ANSWERS), texts
        assert "SCORE" in texts[1], texts
        assert held_rows(db) == []
        sent_to_rasa = tracker_texts(stack, f"tg-{user}")
        assert [t for t in sent_to_rasa if t in questions] == questions  # each once, in order
    finally:
        await api.stop()
        db.dispose()


async def test_a_message_in_the_middle_of_its_turn_is_not_sent_to_rasa_again_the_user_is_told_once(
        stack, tmp_path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'assistant.db'}")
    db.create_all()
    api = FakeBotApi()
    await api.start()
    log = tmp_path / "gateway1.log"
    text = "I want to book the classroom training"
    try:
        user = 95_000_000 + os.getpid() % 1_000_000
        relay = Relay(stack.settings.rasa_port)
        port = await relay.start()
        # No "please wait" while Rasa is slow: the turn is simply in the middle when it dies.
        async with gateway_process(stack, db, api, f"http://127.0.0.1:{port}", log,
                                   RASA_TIMEOUT="60") as gateway:
            await api.wait_for(lambda: any(c.method == "getUpdates" for c in api.calls), 120)
            relay.slow = True
            api.push_text(user, text)
            # Rasa has it (its tracker shows it); its answer is on the way when the gateway dies.
            await api.wait_for(lambda: text.encode() in relay.seen, 30)
            await api.wait_for(lambda: text in tracker_texts(stack, f"tg-{user}"), 30)
            assert held_rows(db) == [(text, "sending")]
            assert api.texts(user) == [], log.read_text()[-3000:]
            gateway.send_signal(signal.SIGKILL)
            assert await asyncio.to_thread(gateway.wait, 20) == -signal.SIGKILL
        await relay.cut()
        async with running_gateway(stack, db, api=api):
            await api.wait_sent(user, 1, 120)
            await asyncio.sleep(3.0)  # a second notice, or an answer from Rasa, would be here
        assert api.texts(user) == [i18n.t("inbox_may_be_unanswered", "en", text=text)]
        assert held_rows(db) == []
        assert tracker_texts(stack, f"tg-{user}").count(text) == 1  # Rasa had it once
    finally:
        await api.stop()
        db.dispose()
