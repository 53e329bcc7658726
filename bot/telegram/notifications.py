"""The Telegram gateway's notifier: its users' rows (and the staff-group alerts) sent as Telegram
messages, buttons as inline keyboards."""
from __future__ import annotations

import asyncio
import logging

from telegram.error import Forbidden, TelegramError
from telegram.ext import Application

from bot.conversation import ConversationService
from bot.notifier import Deliver, Notifier
from bot.rasa_client import Button
from bot.telegram.rendering import keyboard, split_text
from store.kinds import Channel
from store.users import UserView

logger = logging.getLogger(__name__)

# The users whose notifications the Telegram gateway sends (WeChat and the web chat send their own).
TELEGRAM_CHANNELS = (Channel.TELEGRAM, Channel.LOCAL, Channel.REST)


def telegram_deliver(application: Application) -> Deliver:
    async def deliver(user: UserView, text: str, buttons: list[Button]) -> bool:
        if user.chat_id is None:
            return True  # a terminal-chat user: nothing to write to (the terminal chat has no notifier)
        gateway = application.bot_data["gateway"]
        markup = keyboard(buttons, gateway.payloads)
        try:
            chunks = split_text(text)
            for index, chunk in enumerate(chunks):
                await application.bot.send_message(
                    user.chat_id, chunk, reply_markup=markup if index == len(chunks) - 1 else None
                )
        except Forbidden:
            logger.info("user %s blocked the bot; notification dropped", user.id)
            return True
        except TelegramError as error:
            logger.warning("notification to %s not sent: %s", user.id, error)
            return False
        return True

    return deliver


def start_notifier(application: Application, service: ConversationService, settings, handoff) -> None:
    notifier = Notifier(service, telegram_deliver(application), handoff, settings.notification_interval,
                        channels=TELEGRAM_CHANNELS)
    application.bot_data["notifier"] = notifier
    if handoff:
        handoff.notifier = notifier
    application.bot_data["notifier_task"] = asyncio.create_task(notifier.loop())


async def stop_notifier(application: Application) -> None:
    task = application.bot_data.get("notifier_task")
    if task:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
