"""One conversation turn, independent of Telegram: used by the Telegram handlers and the
local terminal chat alike, so both exercise the same code path.

A turn: find the user, decide the language, write the transcript, ask Rasa (unless staff
have the conversation), write the replies to the transcript.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import i18n
from bot.rasa_client import Button, RasaAnswer, RasaClient, RasaUnavailable, Reply
from store import conversations
from store.conversations import UserView
from store.db import Database

logger = logging.getLogger(__name__)

# NLU cost grows with length; a 4096-character paste still gets an answer from its start.
MAX_NLU_CHARS = 2000


@dataclass
class Incoming:
    channel: str  # telegram | local
    external_id: str  # the Telegram user id
    text: str
    chat_id: int | None = None
    display_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_payload: bool = False  # a button press: the text is a Rasa payload, not user prose
    shown_text: str | None = None  # what the user saw (button title) for the transcript


@dataclass
class TurnResult:
    user: UserView
    language: str
    replies: list[Reply] = field(default_factory=list)
    paused: bool = False  # staff have this conversation: nothing went to Rasa


class ConversationService:
    def __init__(self, db: Database, rasa: RasaClient) -> None:
        self.db = db
        self.rasa = rasa

    async def in_thread(self, fn, *args, **kwargs):
        # The store is synchronous SQLAlchemy; keep the event loop free for other chats.
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def user_for(self, incoming: Incoming) -> UserView:
        return await self.in_thread(
            conversations.upsert_user,
            self.db,
            incoming.channel,
            incoming.external_id,
            chat_id=incoming.chat_id,
            display_name=incoming.display_name,
            username=incoming.username,
            telegram_language_code=incoming.language_code,
            default_language=i18n.normalise(incoming.language_code),
        )

    async def handle(self, incoming: Incoming) -> TurnResult:
        def decide_language(current: str) -> str:
            # Sticky per user; a message clearly in the other language switches it.
            return current if incoming.is_payload else i18n.detect(incoming.text, current)

        user, line_id = await self.in_thread(
            conversations.start_turn,
            self.db,
            incoming.channel,
            incoming.external_id,
            incoming.shown_text or incoming.text,
            decide_language,
            chat_id=incoming.chat_id,
            display_name=incoming.display_name,
            username=incoming.username,
            telegram_language_code=incoming.language_code,
            default_language=i18n.normalise(incoming.language_code),
        )
        language = user.language
        if user.paused:
            return TurnResult(user=user, language=language, paused=True)
        text = incoming.text.strip()
        intent: tuple[int, str, float | None] | None = None
        if not text:
            replies = [Reply(text=i18n.t("empty_message", language))]
        else:
            answer = await self.ask_rasa(user, language, text[:MAX_NLU_CHARS])
            replies = answer.replies
            if answer.intent and line_id is not None:
                intent = (line_id, answer.intent, answer.confidence)
        await self.record_replies(user, language, replies, incoming.chat_id, intent=intent)
        return TurnResult(user=user, language=language, replies=replies)

    async def ask_rasa(self, user: UserView, language: str, text: str) -> RasaAnswer:
        try:
            # The language goes with the message: Rasa's gateway channel sets the slot from it.
            return await self.rasa.send(
                user.sender_id, text, metadata={"language": language, "channel": "gateway"}
            )
        except RasaUnavailable:
            return RasaAnswer([Reply(text=i18n.t("unavailable", language))])

    async def record_replies(
        self, user: UserView, language: str, replies: list[Reply], chat_id: int | None,
        intent: tuple[int, str, float | None] | None = None,
    ) -> None:
        """The answer's lines, and the intent Rasa gave the user's line, in one transaction."""
        texts = [
            (reply.text + ("\n" + " | ".join(f"[{b.title}]" for b in reply.buttons) if reply.buttons else "")).strip()
            for reply in replies
        ]
        if texts or intent:
            await self.in_thread(
                conversations.record_lines, self.db, user.id, texts, chat_id=chat_id, language=language,
                intent=intent,
            )

    def record_replies_sync(
        self, user_id: int, language: str, text: str, chat_id: int | None,
        direction: str = "out", staff_name: str | None = None,
    ) -> None:
        conversations.record_lines(
            self.db, user_id, [text], direction=direction, chat_id=chat_id, language=language,
            staff_name=staff_name,
        )

    async def say(self, user: UserView, language: str, key: str, chat_id: int | None = None, **values) -> Reply:
        """A text the gateway says itself (from i18n), written to the transcript."""
        reply = Reply(text=i18n.t(key, language, **values))
        await self.record_replies(user, language, [reply], chat_id)
        return reply

    # --- commands shared by Telegram and the local chat -------------------------------------

    async def choose_language(self, incoming: Incoming, language: str) -> TurnResult:
        user = await self.user_for(incoming)
        language = i18n.normalise(language)
        await self.in_thread(conversations.set_language, self.db, user.id, language, chosen=True)
        reply = await self.say(user, language, "language_set", incoming.chat_id)
        return TurnResult(user=user, language=language, replies=[reply])

    async def forget(self, incoming: Incoming) -> TurnResult:
        user = await self.user_for(incoming)
        language = user.language
        report = await self.in_thread(conversations.forget_user, self.db, user.sender_id)
        try:
            await self.rasa.forget(user.sender_id)
        except RasaUnavailable:
            logger.warning("could not reset Rasa's tracker for %s", user.sender_id)
        if report is None:
            text = i18n.t("forget_nothing", language)
        else:
            text = i18n.t("forget_done", language, **report.__dict__)
        # Nothing is written to the transcript: the user just asked us to forget them.
        return TurnResult(user=user, language=language, replies=[Reply(text=text)])


def language_buttons() -> list[Button]:
    return [Button(title="English", payload="lang:en"), Button(title="中文", payload="lang:zh")]
