"""`python -m bot`: the Telegram gateway when TELEGRAM_BOT_TOKEN is set, else the terminal chat
(as the launcher and the deployment start it). WeChat and the web chat run as their own
processes: `python -m bot.wechat`, `python -m bot.webchat`."""
from __future__ import annotations

import asyncio
import logging

from bot.settings import BotSettings


def main() -> None:
    settings = BotSettings()
    if settings.token:
        from bot.telegram.app import main as telegram

        telegram()
        return
    from bot.terminal.chat import run_local_chat

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.WARNING)
    asyncio.run(run_local_chat(settings))


main()
