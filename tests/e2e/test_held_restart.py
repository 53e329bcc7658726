"""A gateway that dies (`kill -9`) while it holds messages for an unreachable Rasa: the next
gateway answers them (or asks the user to send them again), exactly once, even though Telegram
delivers the held update again.

The first gateway is a real `python -m bot` process polling the fake Bot API, talking to the
session's real Rasa through a TCP relay that the test cuts (Rasa refuses connections, as when
it is down); the second is the gateway Application in this process, on the same store."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from sqlalchemy import select

import i18n
from stack.settings import APP_PYTHON, ROOT
from store.db import Database
from store.models import InboxMessage
from tests.e2e.gateways import running_gateway
from tests.fakes.bot_api import TOKEN, FakeBotApi

WAITING = i18n.t("rasa_waiting", "en")


class Relay:
    """TCP relay to Rasa on loopback; `cut()` closes it (connections refused and dropped)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self, listen_port: int = 0) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", listen_port)
        return self.server.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()


@contextlib.asynccontextmanager
async def gateway_process(stack, db: Database, api: FakeBotApi, rasa_url: str,
                          log: Path, **settings: str) -> AsyncIterator[subprocess.Popen]:
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_BASE_URL": api.base_url,
           "TELEGRAM_BASE_FILE_URL": api.base_url, "RASA_URL": rasa_url,
           "RASA_TOKEN": stack.settings.rasa_token, "DATABASE_URL": db.url, "RASA_HOLD_WINDOW": "120",
           "HEALTH_PORT": "0", "ACTION_URL": f"http://127.0.0.1:{stack.settings.action_port}", **settings}
    env.pop("STAFF_CHAT_ID", None)
    with open(log, "wb") as out:
        process = subprocess.Popen([str(APP_PYTHON), "-m", "bot"], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def held_rows(db: Database) -> list[tuple[str, str]]:
    with db.session() as session:
        return [(row.shown_text, row.state) for row in session.scalars(select(InboxMessage))]


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


def tracker_texts(stack, sender: str) -> list[str]:
    response = httpx.get(f"{stack.rasa_url}/conversations/{sender}/tracker",
                         params={"token": stack.settings.rasa_token}, timeout=30)
    response.raise_for_status()
    return [e.get("text") for e in response.json()["events"] if e["event"] == "user"]


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
