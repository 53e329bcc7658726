"""Typed async handlers for the user-facing side of the bot."""
from __future__ import annotations

import logging
from collections import OrderedDict

from telegram import Bot, Message, Update
from telegram.constants import ChatAction, ChatType
from telegram.error import TelegramError
from telegram.ext import ContextTypes

import i18n
from bot import store_faults
from bot.conversation import ConversationService, Incoming, TurnResult
from bot.rasa_client import Reply
from bot.telegram.inbox import TelegramInbox
from bot.telegram.rendering import CallbackPayloads, keyboard, split_text
from bot.telegram.updates import chat_id_of, message_of, query_of
from store import conversations, users
from store.kinds import Channel

logger = logging.getLogger(__name__)


class Gateway:
    """Holds what the handlers share: the conversation service and button payloads."""

    def __init__(self, service: ConversationService, handoff=None, inbox: TelegramInbox | None = None) -> None:
        self.service = service
        self.payloads = CallbackPayloads()
        self.handoff = handoff  # bot.telegram.handoff.HandoffRelay, when a staff group is configured
        self.inbox = inbox  # every update recorded on receipt (bot/telegram/inbox.py)
        self._pressed: OrderedDict[tuple[int, int], None] = OrderedDict()

    # --- helpers --------------------------------------------------------------------------

    def incoming(self, update: Update, text: str, **extra) -> Incoming:
        user = update.effective_user
        chat = update.effective_chat
        return Incoming(
            inbox_id=self.inbox.row_of(update) if self.inbox else None,
            channel=Channel.TELEGRAM,
            external_id=str(user.id) if user else str(chat.id if chat else 0),
            text=text,
            chat_id=chat.id if chat else None,
            display_name=user.full_name if user else None,
            username=user.username if user else None,
            language_code=user.language_code if user else None,
            **extra,
        )

    async def send(self, update: Update, context: ContextTypes.DEFAULT_TYPE, replies: list[Reply]) -> None:
        await self.send_to(context.bot, chat_id_of(update), replies)

    async def send_to(self, bot: Bot, chat_id: int, replies: list[Reply]) -> None:
        """Also outside an update: answers to messages held by a gateway that is gone."""
        for reply in replies:
            chunks = split_text(reply.text) or ([" "] if reply.buttons else [])
            markup = keyboard(reply.buttons, self.payloads)
            for index, chunk in enumerate(chunks):
                last = index == len(chunks) - 1
                await bot.send_message(chat_id, chunk, reply_markup=markup if last else None)

    async def is_new(self, update: Update) -> bool:
        """Telegram may deliver an update twice (retries, a restart before the offset moved)."""
        if self.inbox is not None and self.inbox.row_of(update) is not None:
            return True  # its id was claimed on receipt, with its inbox row
        new = await self.service.in_thread(
            conversations.claim_update, self.service.db, update.update_id, str(update.get_bot().id)
        )
        store_faults.recovered()  # the store took a write
        return new

    def notifier(self, update: Update, context: ContextTypes.DEFAULT_TYPE):
        """How the conversation service reaches the user mid-turn (the "please wait" notice)."""
        async def notify(replies: list[Reply]) -> None:
            await self.send(update, context, replies)
        return notify

    async def turn(self, update: Update, context: ContextTypes.DEFAULT_TYPE, incoming: Incoming) -> None:
        await context.bot.send_chat_action(chat_id_of(update), ChatAction.TYPING)
        await self.show(update, context, await self.service.handle(incoming), incoming)

    # --- text and buttons -----------------------------------------------------------------

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = message_of(update)
        if not await self.is_new(update):
            return
        if message.chat.type != ChatType.PRIVATE and not self._addressed_to_me(message, context):
            return  # in groups: only commands and mentions
        text = message.text or ""
        if context.bot.username:
            text = text.replace(f"@{context.bot.username}", "").strip()
        # Kept for RASA_HOLD_WINDOW from when the user sent it, while Rasa is unreachable.
        sent_at = message.date.timestamp() if message.date else None
        await self.turn(update, context, self.incoming(update, text, received_at=sent_at,
                                                       notify=self.notifier(update, context)))

    @staticmethod
    def _addressed_to_me(message: Message, context: ContextTypes.DEFAULT_TYPE) -> bool:
        username = context.bot.username
        if username and f"@{username}".lower() in (message.text or "").lower():
            return True
        reply_to = message.reply_to_message
        return bool(reply_to and reply_to.from_user and reply_to.from_user.id == context.bot.id)

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = query_of(update)
        if not await self.is_new(update):
            await self._answer(update)
            return
        key = (query.message.chat.id, query.message.message_id) if query.message else None
        if key and key in self._pressed:
            await self._answer(update)  # an old keyboard pressed again: ignore, but answer
            return
        if key:
            self._pressed[key] = None
            while len(self._pressed) > 10_000:
                self._pressed.popitem(last=False)
        await self._answer(update)
        # Remove the keyboard so the same choice can't be made twice to different effect.
        try:
            await query.edit_message_reply_markup(reply_markup=None)
        except TelegramError as error:
            logger.debug("could not remove keyboard: %s", error)
        payload = self.payloads.decode(query.data or "")
        title = self._button_title(query.message, query.data)
        if payload is None:
            user = await self.service.user_for(self.incoming(update, ""))
            await self.send(update, context, [Reply(text=i18n.t("button_expired", user.language))])
            return
        await context.bot.send_chat_action(chat_id_of(update), ChatAction.TYPING)
        incoming = self.incoming(update, payload, is_payload=True, shown_text=title,
                                 notify=self.notifier(update, context))
        await self.show(update, context, await self.service.press(incoming, payload, title), incoming)

    @staticmethod
    async def _answer(update: Update) -> None:
        """Stop the button's spinner. A press handled again by the next gateway (it was in the
        inbox of one that died) is too old for Telegram to take the answer: no matter."""
        try:
            await query_of(update).answer()
        except TelegramError as error:
            logger.debug("could not answer a button press: %s", error)

    @staticmethod
    def _button_title(message, data: str | None) -> str | None:
        markup = getattr(message, "reply_markup", None)
        for row in getattr(markup, "inline_keyboard", ()) or ():
            for button in row:
                if button.callback_data == data:
                    return button.text
        return None

    # --- commands -------------------------------------------------------------------------

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/start, /help, /language, /bookings, /human, /cancel, /forget (see COMMANDS)."""
        if not await self.is_new(update):
            return
        await self._command(update, context)

    async def on_unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not await self.is_new(update):
            return
        message = message_of(update)
        if message.chat.type != ChatType.PRIVATE and not self._addressed_to_me(message, context):
            return  # in groups: only commands meant for this bot
        await self._command(update, context)

    async def _command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = message_of(update)
        words = (message.text or "").split()
        name = words[0].lstrip("/").split("@")[0].lower() if words else ""
        await context.bot.send_chat_action(chat_id_of(update), ChatAction.TYPING)
        incoming = self.incoming(update, message.text or "", notify=self.notifier(update, context))
        result = await self.service.command(incoming, name, words[1:])
        await self.show(update, context, result)

    async def show(self, update: Update, context: ContextTypes.DEFAULT_TYPE, result: TurnResult,
                   incoming: Incoming | None = None) -> None:
        """Send a turn's replies, or pass the message on to staff when they have the chat."""
        if result.paused:
            if self.handoff:
                await self.handoff.relay_user_message(context, result, incoming or self.incoming(update, ""))
            return
        await self.send(update, context, result.replies)
        if self.handoff:
            await self.handoff.after_turn(context, result)

    # --- everything that isn't text -------------------------------------------------------

    async def on_contact(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not await self.is_new(update):
            return
        contact = message_of(update).contact
        assert contact is not None  # filters.CONTACT
        sender = update.effective_user
        user = await self.service.user_for(self.incoming(update, ""))
        own = contact.user_id is None or (sender is not None and contact.user_id == sender.id)
        if own and contact.phone_number:
            await self.service.in_thread(users.set_contact_phone, self.service.db, user.id, contact.phone_number)
            reply = await self.service.say(
                user, user.language, "contact_received", chat_id_of(update), phone=contact.phone_number
            )
            await self.send(update, context, [reply])
        else:
            await self._say(update, context, "non_text")

    async def on_location(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not await self.is_new(update):
            return
        await self._say(update, context, "location_received")

    async def on_other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Photos, stickers, voice, video, documents and the rest: a polite text-only answer."""
        if not await self.is_new(update):
            return
        message = update.effective_message
        if message and message.chat.type != ChatType.PRIVATE:
            return
        await self._say(update, context, "non_text")

    async def on_edited(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not await self.is_new(update):
            return
        if update.effective_chat and update.effective_chat.type != ChatType.PRIVATE:
            return
        await self._say(update, context, "edited_message")

    async def _say(self, update: Update, context: ContextTypes.DEFAULT_TYPE, key: str) -> None:
        incoming = self.incoming(update, "")
        user = await self.service.user_for(incoming)
        await self.send(update, context, [await self.service.say(user, user.language, key, incoming.chat_id)])


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the error; tell the user something went wrong instead of going silent."""
    key = "unavailable"
    if context.error is not None and store_faults.is_store_fault(context.error):  # read-only or full disk
        store_faults.report("update", context.error)
        key = "store_unavailable"
    else:
        logger.error("error while handling an update", exc_info=context.error)
    context.application.bot_data["errors"] = context.application.bot_data.get("errors", 0) + 1
    if isinstance(update, Update) and update.effective_chat:
        lang = i18n.normalise(update.effective_user.language_code if update.effective_user else None)
        try:
            await context.bot.send_message(update.effective_chat.id, i18n.t(key, lang))
        except TelegramError:
            pass
