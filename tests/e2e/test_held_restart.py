"""A gateway that dies (`kill -9`) while it holds messages for an unreachable Rasa: the next
gateway answers them (or asks the user to send them again), exactly once, even though Telegram
delivers the held update again.

The first gateway is a real `python -m bot` process polling the fake Bot API, talking to the
session's real Rasa through a TCP relay that the test cuts (Rasa refuses connections, as when
it is down); the second is the gateway Application in this process, on the same store."""
from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import i18n
from store.db import Database
from tests.e2e.gateways import Relay, gateway_process, held_rows, running_gateway, tracker_texts
from tests.fakes.bot_api import FakeBotApi

WAITING = i18n.t("rasa_waiting", "en")


async def dies_holding(stack, db: Database, api: FakeBotApi, user: int, text: str, log: Path) -> int:
    """A gateway process takes `text`, Rasa becomes unreachable, the user is told to wait, and
    the gateway is killed; returns the update id."""
    relay = Relay(stack.settings.rasa_port)
    port = await relay.start()
    async with gateway_process(stack, db, api, f"http://127.0.0.1:{port}", log) as gateway:
        await api.wait_for(lambda: any(c.method == "getUpdates" for c in api.calls), 120)
        await relay.cut()
        update_id = api.push_text(user, text)
        assert await api.wait_sent(user, 1, 60) == [WAITING], log.read_text()[-3000:]
        await api.wait_for(lambda: held_rows(db) == [(text, "held")], 30)
        gateway.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(gateway.wait, 20) == -signal.SIGKILL
    return update_id


async def test_a_killed_gateways_held_message_is_answered_once_by_the_next(stack, tmp_path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'assistant.db'}")
    db.create_all()
    api = FakeBotApi()
    await api.start()
    try:
        user = 70_000_000 + os.getpid() % 1_000_000
        update_id = await dies_holding(stack, db, api, user, "what is SCORE", tmp_path / "gateway1.log")
        api.repeat(update_id)  # and Telegram delivers the update again to the next gateway
        async with running_gateway(stack, db, api=api):
            texts = await api.wait_sent(user, 2, 120)
            await asyncio.sleep(3.0)  # the repeated update, and any second answer, would be here
        texts = api.texts(user)
        assert texts[0] == WAITING and len(texts) == 2, texts
        assert texts[1] not in (WAITING, i18n.t("rasa_send_again", "en"), i18n.t("unavailable", "en"))
        assert "SCORE" in texts[1], texts
        assert held_rows(db) == []
        assert tracker_texts(stack, f"tg-{user}").count("what is SCORE") == 1  # Rasa had it once
    finally:
        await api.stop()
        db.dispose()


async def test_past_the_window_the_next_gateway_asks_once_to_send_it_again(stack, tmp_path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'assistant.db'}")
    db.create_all()
    api = FakeBotApi()
    await api.start()
    try:
        user = 80_000_000 + os.getpid() % 1_000_000
        update_id = await dies_holding(stack, db, api, user, "can my factory join", tmp_path / "gateway1.log")
        await asyncio.sleep(1.5)
        api.repeat(update_id)
        async with running_gateway(stack, db, api=api, rasa_hold_window=1.0):
            await api.wait_sent(user, 2, 120)
            await asyncio.sleep(3.0)
        assert api.texts(user) == [WAITING, i18n.t("held_send_again", "en", text="can my factory join")]
        assert held_rows(db) == []
        assert "can my factory join" not in tracker_texts(stack, f"tg-{user}")
    finally:
        await api.stop()
        db.dispose()
