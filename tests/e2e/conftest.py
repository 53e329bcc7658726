"""End-to-end fixtures: a real Rasa server and a real action server (started once per test
session), and the real gateway Application talking to a fake Bot API on loopback."""
from __future__ import annotations

import contextlib
import dataclasses
import os
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.settings import BotSettings
from bot.telegram.app import build_application
from stack import processes
from stack.settings import MODEL_PATH, StackSettings
from stack.train import is_current, train
from store.db import Database
from tests.fakes.bot_api import TOKEN, FakeBotApi, free_port

STAFF_CHAT_ID = -100500
STAFF_USER_ID = 900001


@dataclasses.dataclass
class RunningStack:
    settings: StackSettings
    db: Database
    logs: dict[str, Path] = dataclasses.field(default_factory=dict)  # server name -> its log

    @property
    def rasa_url(self) -> str:
        return self.settings.rasa_url


def current_model() -> Path:
    # The test command trains first; this covers a bare `pytest` run. While editing training
    # data, SCORE_ALLOW_STALE_MODEL=1 reuses the last model instead of retraining.
    model = Path(os.environ.get("RASA_MODEL") or MODEL_PATH)
    if not model.exists() or (not is_current(model) and os.environ.get("SCORE_ALLOW_STALE_MODEL") != "1"):
        train(model)
    return model


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Iterator[RunningStack]:
    model = current_model()
    data_dir: Path = tmp_path_factory.mktemp("stack")
    database_url = f"sqlite:///{data_dir / 'assistant.db'}"
    settings = StackSettings(
        data_dir=data_dir,
        rasa_port=free_port(),
        action_port=free_port(),
        rasa_token="-e2e-token",  # starts with "-": the launcher must not pass it as an option
        database_url=database_url,
        tracker_store_url="",
        lock_store_url="",
        model_path=model,
    )
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "DATA_DIR")}
    os.environ["DATABASE_URL"] = database_url  # for code in this process that uses get_database()
    os.environ["DATA_DIR"] = str(data_dir)
    processes.prepare_store(settings)
    servers = [processes.start_action_server(settings), processes.start_rasa_server(settings)]
    try:
        processes.wait_until_up(servers[0], f"http://127.0.0.1:{settings.action_port}/health", 60)
        processes.wait_until_up(servers[1], settings.rasa_status_url, 300)
        db = Database(database_url)
        yield RunningStack(settings, db, {server.name: server.log_path for server in servers})
        db.dispose()
    finally:
        for server in reversed(servers):
            server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclasses.dataclass
class Gateway:
    api: FakeBotApi
    application: object
    db: Database

    def new_user(self) -> int:
        return random.randint(10_000_000, 99_999_999)


@contextlib.asynccontextmanager
async def running_gateway(rasa_url: str, rasa_token: str, db: Database, **settings: object) -> AsyncIterator[Gateway]:
    """The gateway's own Application, polling a fake Bot API, against the Rasa at `rasa_url`."""
    api = FakeBotApi()
    await api.start()
    bot_settings = BotSettings(**{
        "token": TOKEN,
        "base_url": api.base_url,
        "base_file_url": api.base_url,
        "rasa_url": rasa_url,
        "rasa_token": rasa_token,
        "staff_chat_id": STAFF_CHAT_ID,
        "staff_user_ids": frozenset({STAFF_USER_ID}),
        "notification_interval": 0.5,
        "chat_rate": 5,
        "chat_rate_window": 1.0,
        **settings,
    })
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
        await api.stop()


@pytest.fixture
async def gateway(stack: RunningStack) -> AsyncIterator[Gateway]:
    async with running_gateway(stack.rasa_url, stack.settings.rasa_token, stack.db) as running:
        yield running


def pytest_collection_modifyitems(config, items):
    """Everything under tests/e2e is end to end: `-m "not e2e"` skips the Rasa servers."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
