"""A gateway (the real Application, polling the fake Bot API) on a store of the test's choosing,
for fault tests that break that store or need settings the shared `gateway` fixture lacks; a
gateway *process* (`python -m bot`) for tests that kill it; a relay in front of Rasa that cuts or
slows it; what the store's inbox and Rasa's tracker hold."""
from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from sqlalchemy import select

from bot.settings import BotSettings
from bot.telegram.app import build_application
from stack.settings import APP_PYTHON, ROOT
from store.db import Database
from store.models import InboxMessage
from tests.e2e.conftest import STAFF_CHAT_ID, STAFF_USER_ID, Gateway
from tests.fakes.bot_api import TOKEN, FakeBotApi


@contextlib.asynccontextmanager
async def running_gateway(stack, db, api: FakeBotApi | None = None, **settings) -> AsyncIterator[Gateway]:
    """`api`: a fake Bot API the caller started (and stops); by default a new one."""
    own_api = api is None
    if api is None:
        api = FakeBotApi()
        await api.start()
    bot_settings = BotSettings(
        token=TOKEN, base_url=api.base_url, base_file_url=api.base_url,
        rasa_url=stack.rasa_url, rasa_token=stack.settings.rasa_token,
        staff_chat_id=STAFF_CHAT_ID, staff_user_ids=frozenset({STAFF_USER_ID}),
        notification_interval=0.5, action_url=f"http://127.0.0.1:{stack.settings.action_port}",
        **settings,
    )
    application = build_application(bot_settings, db)
    await application.initialize()
    await application.post_init(application)
    await application.start()
    await application.updater.start_polling(poll_interval=0.0, timeout=1)
    try:
        yield Gateway(api, application, db)
    finally:
        await application.updater.stop()
        await application.stop()
        await application.shutdown()
        await application.post_shutdown(application)
        if own_api:
            await api.stop()


class Relay:
    """TCP relay to Rasa on loopback; `cut()` closes it (connections refused and dropped).
    Once `slow` is set it passes requests at once and holds Rasa's answers (as a slow action
    would); `seen` is every request it passed."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.slow = False
        self.seen = b""

    async def start(self, listen_port: int = 0) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", listen_port)
        return self.server.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, answers: bool) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    if not answers:
                        self.seen += data
                    while answers and self.slow:
                        await asyncio.sleep(0.05)
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))

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


def tracker_texts(stack, sender: str) -> list[str]:
    response = httpx.get(f"{stack.rasa_url}/conversations/{sender}/tracker",
                         params={"token": stack.settings.rasa_token}, timeout=30)
    response.raise_for_status()
    return [e.get("text") for e in response.json()["events"] if e["event"] == "user"]
