"""The staff side of a handoff in a Telegram staff group.

The bot posts an alert for each handoff; a staff member claims it with a button, answers the
user by replying to the alert (or to a relayed user message), and hands the conversation back
with /resume. Only accounts in STAFF_USER_IDS may claim, reply or resume.
"""
from __future__ import annotations

import asyncio
import logging

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

import i18n
from bot.conversation import ConversationService, Incoming, TurnResult
from bot.notifier import Notifier
from bot.settings import BotSettings
from bot.telegram.notifications import TELEGRAM_CHANNELS
from bot.telegram.updates import message_of, query_of
from store import conversations, handoff as handoffs, users
from store.kinds import HandoffStatus

logger = logging.getLogger(__name__)
CLAIM_PREFIX = "claim:"
STAFF_LANGUAGE = "en"


class HandoffRelay:
    def __init__(self, service: ConversationService, settings: BotSettings) -> None:
        self.service = service
        self.settings = settings
        self.chat_id = settings.staff_chat_id
        self.notifier: Notifier | None = None  # set by the notifier it wakes
        self.bot: Bot | None = None

    def register(self, application: Application) -> None:
        self.bot = application.bot
        staff_chat = filters.Chat(self.chat_id)
        application.add_handler(CallbackQueryHandler(self.on_claim, pattern=f"^{CLAIM_PREFIX}"))
        application.add_handler(CommandHandler("resume", self.on_resume, filters=staff_chat))
        application.add_handler(
            MessageHandler(staff_chat & filters.REPLY & filters.TEXT & ~filters.COMMAND, self.on_staff_reply)
        )
        # Anything else said in the staff group is staff talking among themselves.
        application.add_handler(MessageHandler(staff_chat, lambda *_: asyncio.sleep(0)))

    def is_staff(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.settings.staff_user_ids

    # --- bot → staff -------------------------------------------------------------------------

    async def alert_staff(self, handoff_id: int) -> bool:
        view = await self.service.in_thread(handoffs.get_handoff, self.service.db, handoff_id)
        if view is None or view.user_id is None:
            return True
        if view.status == HandoffStatus.RESOLVED:
            # Handed back before its alert went out (the gateway was down, or the console
            # resolved it first): a Claim button for it would only mislead staff.
            logger.info("handoff #%d was resolved before its alert was sent: not alerted", view.id)
            return True
        user = await self.service.in_thread(users.get_user, self.service.db, view.sender_id)
        lines = await self.service.in_thread(conversations.recent_lines, self.service.db, view.user_id, 8)
        text = i18n.t(
            "staff_alert", STAFF_LANGUAGE,
            id=view.id,
            name=(user.display_name if user else None) or view.sender_id,
            language=view.language,
            reason=view.reason,
            lines="\n".join(f"{'👤' if line.direction == 'in' else '🤖'} {line.text[:300]}" for line in lines) or "—",
            link=f"{self.settings.console_url.rstrip('/')}/conversations/{view.user_id}",
        )
        claim = InlineKeyboardButton(i18n.t("staff_claim_button", STAFF_LANGUAGE),
                                     callback_data=f"{CLAIM_PREFIX}{view.id}")
        assert self.bot is not None and self.chat_id is not None, "registered for a staff group"
        message = await self.bot.send_message(self.chat_id, text[:4096], reply_markup=InlineKeyboardMarkup([[claim]]))
        await self.service.in_thread(handoffs.set_staff_message, self.service.db, view.id, message.message_id)
        return True

    def _wake_notifier(self) -> None:
        if self.notifier is not None:
            self.notifier.wake.set()

    async def after_turn(self, context: ContextTypes.DEFAULT_TYPE, result: TurnResult) -> None:
        """A turn may have opened a handoff: alert staff now rather than at the next poll."""
        self._wake_notifier()

    async def relay_user_message(
        self, context: ContextTypes.DEFAULT_TYPE, result: TurnResult, incoming: Incoming
    ) -> None:
        view = await self.service.in_thread(handoffs.open_for_sender, self.service.db, result.user.sender_id)
        if view is None:
            return
        text = i18n.t("staff_user_message", STAFF_LANGUAGE, id=view.id,
                      name=result.user.display_name or result.user.sender_id, text=incoming.text[:3500])
        assert self.chat_id is not None, "registered for a staff group"
        message = await context.bot.send_message(self.chat_id, text)
        # In the store, not in memory: the staff reply may reach another gateway replica.
        await self.service.in_thread(handoffs.remember_relay, self.service.db, self.chat_id,
                                     message.message_id, view.id)

    async def relay_queued(self, handoff_id: int, text: str) -> bool:
        """A user's message queued by another channel's process (store.handoff.relay_to_staff)."""
        view = await self.service.in_thread(handoffs.get_handoff, self.service.db, handoff_id)
        if view is None or view.status == HandoffStatus.RESOLVED:
            return True
        user = await self.service.in_thread(conversations.get_user, self.service.db, view.sender_id)
        relayed = i18n.t("staff_user_message", STAFF_LANGUAGE, id=view.id,
                         name=(user.display_name if user else None) or view.sender_id, text=text[:3500])
        assert self.bot is not None and self.chat_id is not None, "registered for a staff group"
        message = await self.bot.send_message(self.chat_id, relayed)
        await self.service.in_thread(handoffs.remember_relay, self.service.db, self.chat_id,
                                     message.message_id, view.id)
        return True

    # --- staff → bot -------------------------------------------------------------------------

    async def on_claim(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = query_of(update)
        if not self.is_staff(query.from_user.id):
            await query.answer(i18n.t("staff_not_allowed", STAFF_LANGUAGE), show_alert=True)
            return
        handoff_id = int((query.data or "")[len(CLAIM_PREFIX):])
        try:
            view = await self.service.in_thread(
                handoffs.claim_as, self.service.db, handoff_id, _staff_name(query.from_user)
            )
        except handoffs.HandoffError as error:
            await query.answer(str(error), show_alert=True)
            return
        await query.answer()
        claimed = i18n.t("staff_claimed", STAFF_LANGUAGE, staff=view.claimed_by)
        alert = query.message.text if isinstance(query.message, Message) else None
        await query.edit_message_text(f"{alert}\n\n{claimed}")

    async def _find(self, update: Update) -> handoffs.HandoffView | None:
        """The handoff of the staff-group message this one replies to (a relayed user message
        or the alert)."""
        replied = message_of(update).reply_to_message
        if replied is None:
            return None
        return await self.service.in_thread(handoffs.by_staff_message, self.service.db,
                                            replied.message_id, replied.chat.id)

    async def on_staff_reply(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = message_of(update)
        if not self.is_staff(message.from_user.id if message.from_user else None):
            await message.reply_text(i18n.t("staff_not_allowed", STAFF_LANGUAGE))
            return
        view = await self._find(update)
        # A Telegram user needs a chat to be written to; WeChat and web-chat users are reached
        # by their own channel's process, which sends the staff reply's notification.
        if view is None or view.status == HandoffStatus.RESOLVED or (
                view.chat_id is None and users.channel_of(view.sender_id or "") in set(TELEGRAM_CHANNELS)):
            return
        # The same path as a console reply: a transcript line and a notification the
        # notifier sends at once; answering a waiting handoff claims it.
        try:
            await self.service.in_thread(
                handoffs.reply_as, self.service.db, view.user_id, _staff_name(message.from_user), message.text
            )
        except handoffs.HandoffError as error:
            await message.reply_text(str(error))
            return
        self._wake_notifier()
        await message.reply_text(i18n.t("staff_relayed", STAFF_LANGUAGE))

    async def on_resume(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = message_of(update)
        if not self.is_staff(message.from_user.id if message.from_user else None):
            await message.reply_text(i18n.t("staff_not_allowed", STAFF_LANGUAGE))
            return
        view = await self._find(update)
        if view is None and context.args and context.args[0].lstrip("#").isdigit():
            view = await self.service.in_thread(handoffs.get_handoff, self.service.db, int(context.args[0].lstrip("#")))
        if view is None:
            await message.reply_text(i18n.t("staff_no_handoff", STAFF_LANGUAGE))
            return
        try:  # resolving queues the "bot is back" message for the user
            view = await self.service.in_thread(
                handoffs.resolve_as, self.service.db, view.id, _staff_name(message.from_user)
            )
        except handoffs.HandoffError as error:
            await message.reply_text(str(error))
            return
        self._wake_notifier()
        await message.reply_text(i18n.t("staff_resumed", STAFF_LANGUAGE, id=view.id))


def _staff_name(user) -> str:
    return (user.username or user.full_name or str(user.id))[:64]
