"""`python -m bot.terminal`: the terminal chat, token or not."""
from __future__ import annotations

import asyncio
import logging

from bot.settings import BotSettings
from bot.terminal.chat import run_local_chat

logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.WARNING)
asyncio.run(run_local_chat(BotSettings()))
