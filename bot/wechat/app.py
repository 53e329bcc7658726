"""Builds the WeChat channel and runs it: the callback server, its notifier, one Rasa client."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import uvicorn

from bot.conversation import ConversationService
from bot.memory import release_freed_memory_every
from bot.notifier import Notifier
from bot.rasa_client import RasaClient, wait_for_rasa
from bot.settings import BotSettings
from bot.wechat.api import WeChatApi
from bot.wechat.server import CHANNEL, WeChatChannel
from bot.wechat.settings import WeChatSettings
from store import get_database

logger = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def running_channel(settings: WeChatSettings, bot_settings: BotSettings, db=None) -> AsyncIterator[WeChatChannel]:
    """The callback server listening, the notifier sending this channel's notifications."""
    rasa = RasaClient(bot_settings.rasa_url, bot_settings.rasa_token, bot_settings.rasa_timeout)
    api = WeChatApi(settings.api_base_url, settings.app_id, settings.app_secret)
    service = ConversationService(db or get_database(), rasa, bot_settings.rasa_hold_window)
    channel = WeChatChannel(service, api, settings, bot_settings.chat_rate, bot_settings.chat_rate_window)
    config = uvicorn.Config(channel.app, host=settings.listen, port=settings.port, log_level="warning",
                            lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    # Staff replies, reminders and the like for WeChat users; staff alerts stay with Telegram.
    notifier = Notifier(service, channel.deliver, None, bot_settings.notification_interval, channels=(CHANNEL,),
                        staff_alerts=False)
    notifying = None
    trimming = asyncio.create_task(release_freed_memory_every())
    try:
        while not server.started:
            if serving.done():
                serving.result()  # the port is taken: raise what uvicorn raised
                raise SystemExit(
                    f"error: the WeChat callback server could not listen on {settings.listen}:{settings.port}"
                )
            await asyncio.sleep(0.02)
        await wait_for_rasa(rasa)
        notifying = asyncio.create_task(notifier.loop())
        yield channel
    finally:
        trimming.cancel()
        if notifying:
            notifying.cancel()
        server.should_exit = True
        await asyncio.gather(serving, return_exceptions=True)
        await channel.drain()
        await api.close()
        await rasa.close()


async def serve(settings: WeChatSettings, bot_settings: BotSettings) -> None:
    async with running_channel(settings, bot_settings):
        print(f"WeChat callback URL path /{settings.path.strip('/')} on {settings.listen}:{settings.port} "
              f"({'safe mode available' if settings.aes_key else 'plain mode'})", flush=True)
        await asyncio.Event().wait()


def main() -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = WeChatSettings()
    if not settings.enabled:
        raise SystemExit(f"error: the WeChat channel needs {', '.join(settings.missing())}")
    try:
        asyncio.run(serve(settings, BotSettings()))
    except KeyboardInterrupt:
        pass
