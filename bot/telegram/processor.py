"""Telegram update processing: in order within a chat, concurrent across chats, with a per-chat flood
limit so one chat sending 50 messages a second is slowed down without starving the others; once an
update is handled, `finished` is told (the inbox lets its row go: bot/telegram/inbox.py)."""
from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bot.conversation import PerUserLocks
from bot.ratelimit import ChatRateLimit


class PerChatUpdateProcessor(BaseUpdateProcessor):
    def __init__(self, max_concurrent_updates: int, rate: int, window: float,
                 finished: Callable[[object], Awaitable[None]] | None = None) -> None:
        super().__init__(max_concurrent_updates)
        self.finished = finished
        # One lock per chat, dropped when no update holds or waits for it (one lock per chat
        # ever seen grew without end).
        self._locks = PerUserLocks()
        self.limit = ChatRateLimit(rate, window)
        self.slowed: dict[int, int] = defaultdict(int)  # how often each chat was slowed

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat_id = update.effective_chat.id if isinstance(update, Update) and update.effective_chat else 0
        # The lock is taken in arrival order (asyncio.Lock is FIFO), so a chat's updates are
        # handled one after another; the delay is slept while holding it, so only that chat waits.
        async with await self._locks(chat_id):
            wait = self.limit.delay(chat_id)
            if wait > 0:
                self.slowed[chat_id] += 1
                await asyncio.sleep(wait)
            await coroutine
            # Not when cancelled (shutdown): an unanswered update stays in the inbox.
            if self.finished is not None:
                await self.finished(update)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass
