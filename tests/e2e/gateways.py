"""A gateway (the real Application, polling the fake Bot API) on a store of the test's choosing,
for fault tests that break that store or need settings the shared `gateway` fixture lacks."""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from bot.settings import BotSettings
from bot.telegram.app import build_application
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
