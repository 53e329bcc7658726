"""Sends Notification rows from the store: reminders, waitlist promotions, staff replies,
handoff alerts. Every channel's process runs one for its own users' rows, with its own `deliver`
(bot/telegram/notifications.py, bot/wechat/, bot/webchat/); the store's claim makes each row go
out once."""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable

from bot import store_faults
from bot.conversation import ConversationService
from bot.rasa_client import Button
from store import notifications, users
from store.kinds import NotificationKind
from store.users import UserView

logger = logging.getLogger(__name__)

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
