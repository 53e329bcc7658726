"""Every Telegram update is in the store's inbox (store.inbox) from its receipt until its
answer is recorded, so that a gateway that dies loses none.

Receipt is python-telegram-bot's update queue: the Updater (polling) and the webhook handler
`put` each update there, and Telegram is told it arrived only after that (polling: the offset of
the next getUpdates; webhook: the HTTP answer). `InboxQueue.put` records the update (and claims
its id: a repeated delivery is dropped here) before queueing it, so an update waiting behind a
chat's held message, or one in the middle of its turn, is in the store when the process dies.

The row goes in the transaction that records the turn's answer (bot/conversation.py); for what
the gateway answers itself (commands, a sticker, a language button) when the update has been
handled (`finished`, called by the update processor). A gateway that starts hands the updates
that one that died only received back to the queue (`replay`), ahead of anything new.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging

from telegram import Bot, Update

from bot import store_faults
from bot.conversation import ConversationService
from store import inbox
from store.inbox import InboxView
from store.kinds import Channel

logger = logging.getLogger(__name__)


class TelegramInbox:
    def __init__(self, service: ConversationService) -> None:
        self.service = service
        self.rows: dict[int, int] = {}  # update id -> inbox row, until the update is handled
        self.queue: asyncio.Queue[object] | None = None  # the Application's (set once built)
        self.bot: Bot | None = None

    def row_of(self, update: Update) -> int | None:
        """The update's inbox row: it came through the inbox, its id claimed there."""
        return self.rows.get(update.update_id)

    async def receive(self, update: Update) -> bool:
        """Record the update; False for a repeated delivery (already claimed)."""
        chat, user = update.effective_chat, update.effective_user
        if chat is None:
            return True  # nothing to answer (the handlers' own claim still applies)
        message = update.message
        received = message.date if message is not None and message.date else dt.datetime.now(dt.UTC)
        try:
            row = await self.service.in_thread(
                inbox.receive, self.service.db, self.service.holder, Channel.TELEGRAM,
                str(user.id if user else chat.id), chat.id, update.update_id, str(update.get_bot().id),
                update.to_json(), shown_text(update), received)
        except Exception as error:  # the store is failing: handled in memory, as before the inbox
            if store_faults.is_store_fault(error):  # one line per outage, not a traceback per update
                store_faults.report("inbox", error)
            else:
                logger.warning("could not record update %d in the inbox", update.update_id, exc_info=True)
            return True
        store_faults.recovered()  # the store took a write: the next fault is a new outage
        if row is None:
            logger.info("update %d delivered again: dropped", update.update_id)
            return False
        self.rows[update.update_id] = row
        self.service.track(row)
        return True

    async def replay(self, row: InboxView) -> None:
        """An update a gateway that is gone received and never started: queued again (its row
        and claim are kept; the updates received from now on queue behind it)."""
        assert self.queue is not None and self.bot is not None and row.payload is not None
        update = Update.de_json(json.loads(row.payload), self.bot)
        self.rows[update.update_id] = row.id
        self.queue.put_nowait(update)

    async def finished(self, update: object) -> None:
        """The update was handled: its row goes, unless the turn's answer took it already."""
        if not isinstance(update, Update):
            return
        row = self.rows.pop(update.update_id, None)
        if row is not None:
            try:
                await self.service.release(row)
            except Exception:  # the store is failing: taken over once stale
                logger.warning("could not remove update %d from the inbox", update.update_id, exc_info=True)


def shown_text(update: Update) -> str:
    """What the user sent, as they saw it (quoted if they must be asked to send it again)."""
    if update.effective_message is not None and update.callback_query is None:
        return update.effective_message.text or update.effective_message.caption or ""
    query = update.callback_query
    if query is not None:
        markup = getattr(query.message, "reply_markup", None)
        for line in getattr(markup, "inline_keyboard", ()) or ():
            for button in line:
                if button.callback_data == query.data:
                    return button.text
    return ""


class InboxQueue(asyncio.Queue):
    """The Application's update queue: an update is recorded before it is queued."""

    def __init__(self, telegram_inbox: TelegramInbox) -> None:
        super().__init__()
        self.inbox = telegram_inbox

    async def put(self, item: object) -> None:
        if isinstance(item, Update) and not await self.inbox.receive(item):
            return  # a repeated delivery
        await super().put(item)
