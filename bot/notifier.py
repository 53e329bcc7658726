"""Sends Notification rows from the store: reminders, waitlist promotions, staff replies,
handoff alerts. Runs in every gateway; the store's claim makes each row go out once."""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import Forbidden, TelegramError
from telegram.ext import Application

from bot import store_faults
from bot.conversation import ConversationService
from bot.rasa_client import Button
from bot.rendering import split_text
from store import notifications, users
from store.kinds import Channel, NotificationKind
from store.users import UserView

logger = logging.getLogger(__name__)


# The users whose notifications the Telegram gateway sends (WeChat and the web chat send their own).
TELEGRAM_CHANNELS = (Channel.TELEGRAM, Channel.LOCAL, Channel.REST)

# deliver(user, text, buttons) sends a text to a user; returns False if it can't (blocked bot).
Deliver = Callable[[UserView, str, list[Button]], Awaitable[bool]]


class Notifier:
    def __init__(self, service: ConversationService, deliver: Deliver, handoff=None, interval: float = 5.0,
                 channels: tuple[str, ...] | None = None, staff_alerts: bool = True) -> None:
        self.service = service
        # Whose rows this sender claims (store.notifications.claim_due): each channel its own.
        self.channels = channels
        self.staff_alerts = staff_alerts
        self.deliver = deliver
        self.handoff = handoff
        self.interval = interval
        self.wake = asyncio.Event()
        # Claims are made in this name; unique per notifier, even for two in one process.
        self.worker = f"gateway-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"

    async def run_once(self) -> int:
        db = self.service.db
        claimed = await asyncio.to_thread(notifications.claim_due, db, self.worker,
                                          channels=self.channels, staff_alerts=self.staff_alerts)
        for row in claimed:
            try:
                done = await self.send(row)
            except Exception:  # one bad row must not stop the others
                logger.exception("notification %s failed", row.id)
                await asyncio.to_thread(notifications.release, db, row.id, self.worker)
                continue
            if done:
                await asyncio.to_thread(notifications.mark_sent, db, row.id, self.worker)
            else:
                await asyncio.to_thread(notifications.release, db, row.id, self.worker)
        return len(claimed)

    async def send(self, row: notifications.ClaimedNotification) -> bool:
        if row.kind == NotificationKind.HANDOFF_OPENED:
            return await self.handoff.alert_staff(row.payload["handoff_id"]) if self.handoff else True
        if row.kind == NotificationKind.HANDOFF_USER_MESSAGE:  # from a channel without a staff group (WeChat)
            if not self.handoff:
                return True
            return await self.handoff.relay_queued(row.payload["handoff_id"], row.payload.get("text", ""))
        user = await asyncio.to_thread(users.get_user_by_id, self.service.db, row.user_id) if row.user_id else None
        if user is None:
            return True  # the user asked us to forget them: nothing to send
        if row.kind == NotificationKind.STAFF_REPLY:
            text = row.payload.get("text", "")
        else:
            text = notifications.render(row.payload, user.language)
        buttons = [Button(b["title"], b["payload"]) for b in row.payload.get("buttons") or []]
        sent = await self.deliver(user, text, buttons)
        # The console writes its staff replies to the transcript itself (transcript_line_id).
        if sent and "transcript_line_id" not in row.payload:
            await asyncio.to_thread(
                self.service.record_replies_sync, user.id, user.language, text, user.chat_id,
                "staff" if row.kind == NotificationKind.STAFF_REPLY else "out", row.payload.get("staff_name"),
            )
        return sent

    async def loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as error:
                if store_faults.is_store_fault(error):  # logged once, not every round
                    store_faults.report("notifications", error)
                else:
                    logger.exception("notifier round failed")
            try:
                await asyncio.wait_for(self.wake.wait(), self.interval)
            except TimeoutError:
                pass
            self.wake.clear()


def telegram_deliver(application: Application) -> Deliver:
    async def deliver(user: UserView, text: str, buttons: list[Button]) -> bool:
        if user.chat_id is None:
            return True  # a local-chat user: the local chat prints its own notifications
        gateway = application.bot_data["gateway"]
        markup = None
        if buttons:
            markup = InlineKeyboardMarkup(
                [[InlineKeyboardButton(b.title, callback_data=gateway.payloads.encode(b.payload))] for b in buttons]
            )
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
