"""WeChat's callback URL: verification, plain and safe mode, and a turn per message.

WeChat waits 5 seconds for the callback's answer and then delivers the message again (three
times in all); a turn can take longer (Rasa, a booking, a hold while Rasa restarts). So the
callback answers "success" at once and the turn runs in the background; its answers go out
through the customer-service message API (bot/wechat/api.py).

A message id seen before is not handled again: the claim is a row in the store's processed-update
table (the one Telegram's update ids use, under another bot id), so a delivery repeated across a
restart or to another replica behind the same URL is still handled once.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any
from xml.parsers.expat import ExpatError

import httpx
import xmltodict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import check_signature

import i18n
from bot import store_faults
from bot.conversation import ConversationService, Incoming, PerUserLocks, TurnResult
from bot.rasa_client import Button, Reply
from bot.ratelimit import ChatRateLimit
from bot.wechat.api import WeChatApi, WeChatApiError
from bot.wechat.rendering import Menus, to_messages
from bot.wechat.settings import WeChatSettings
from store import conversations, handoff as handoffs, users
from store.kinds import Channel

logger = logging.getLogger(__name__)

CHANNEL = Channel.WECHAT
MAX_BODY = 64 * 1024  # WeChat's callbacks are small XML documents
LANGUAGE_GUESS = "zh"  # WeChat tells us nothing about the user's language; most write Chinese
NON_TEXT = {"image", "video", "shortvideo", "file", "link", "music", "news"}


class WeChatChannel:
    def __init__(self, service: ConversationService, api: WeChatApi, settings: WeChatSettings,
                 rate: int = 5, rate_window: float = 3.0) -> None:
        self.service = service
        # One message per user at a time, answers included, in arrival order; a flood is slowed
        # (CHAT_RATE_LIMIT per CHAT_RATE_WINDOW, as on Telegram).
        self._users = PerUserLocks()
        self.limit = ChatRateLimit(rate, rate_window)
        self.api = api
        self.settings = settings
        self.crypto = WeChatCrypto(settings.token, settings.aes_key, settings.app_id) if settings.aes_key else None
        self.menus = Menus()
        self.tasks: set[asyncio.Task] = set()
        self.turns = 0  # turns finished (tests wait on it)
        self.bot_id = f"wx:{settings.app_id}"[:32]
        path = "/" + settings.path.strip("/")
        self.app = Starlette(routes=[Route(path, self.callback, methods=["GET", "POST"])])

    # --- the callback ----------------------------------------------------------------------

    async def callback(self, request: Request) -> Response:
        query = request.query_params
        signature, timestamp, nonce = (query.get(k, "") for k in ("signature", "timestamp", "nonce"))
        if request.method == "GET":  # the URL check when the account's server is configured
            if not self._signed(signature, timestamp, nonce):
                return PlainTextResponse("invalid signature", status_code=403)
            return PlainTextResponse(query.get("echostr", ""))
        body = await request.body()
        if len(body) > MAX_BODY:
            return PlainTextResponse("too large", status_code=413)
        if query.get("encrypt_type", "raw") == "aes":
            if self.crypto is None:
                logger.error("an encrypted callback arrived but WECHAT_AES_KEY is not set")
                return PlainTextResponse("safe mode is not configured", status_code=403)
            try:
                xml = self.crypto.decrypt_message(body, query.get("msg_signature", ""), timestamp, nonce)
            except (InvalidSignatureException, InvalidAppIdException):
                return PlainTextResponse("invalid signature", status_code=403)
            except Exception:  # encrypted with another key, or not WeChat's format: not from WeChat
                logger.warning("could not decrypt a WeChat callback", exc_info=True)
                return PlainTextResponse("cannot decrypt", status_code=403)
        else:
            if not self._signed(signature, timestamp, nonce):
                return PlainTextResponse("invalid signature", status_code=403)
            xml = body
        try:
            message = xmltodict.parse(xml, disable_entities=True).get("xml") or {}
        except (ExpatError, ValueError, AttributeError):  # not XML, or not an <xml> document
            return PlainTextResponse("bad message", status_code=400)
        if not isinstance(message, dict) or not message.get("FromUserName"):
            return PlainTextResponse("bad message", status_code=400)
        if not await self._is_new(message):
            return PlainTextResponse("success")
        self._start(message)
        # Answering "success" tells WeChat not to retry and not to show "service unavailable".
        return PlainTextResponse("success")

    def _signed(self, signature: str, timestamp: str, nonce: str) -> bool:
        try:
            check_signature(self.settings.token, signature, timestamp, nonce)
            return True
        except InvalidSignatureException:
            return False

    async def _is_new(self, message: dict[str, Any]) -> bool:
        if message.get("MsgId"):
            key, bot_id = int(message["MsgId"]), self.bot_id
        else:
            # Events have no MsgId; WeChat's advice is sender + CreateTime (+ the event).
            raw = f"{message.get('FromUserName')}|{message.get('CreateTime')}|{message.get('Event')}"
            key = int.from_bytes(hashlib.sha256(raw.encode()).digest()[:8], "big") >> 1
            bot_id = f"wxevt:{self.settings.app_id}"[:32]
        new = await self.service.in_thread(conversations.claim_update, self.service.db, key, bot_id)
        store_faults.recovered()
        return new

    def _start(self, message: dict[str, Any]) -> None:
        # Started now, in arrival order: the service's per-user lock keeps the turns in order.
        task = asyncio.get_running_loop().create_task(self._turn(message))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    # --- one message -----------------------------------------------------------------------

    def incoming(self, message: dict[str, Any], text: str, **extra: Any) -> Incoming:
        created = message.get("CreateTime")
        return Incoming(
            channel=CHANNEL, external_id=str(message["FromUserName"])[:64], text=text, chat_id=None,
            language_code=LANGUAGE_GUESS,
            received_at=float(str(created)) if str(created or "").isdigit() else time.time(),
            notify=self._notifier(str(message["FromUserName"])), **extra,
        )

    def _notifier(self, openid: str):
        async def notify(replies: list[Reply]) -> None:  # "please wait" while Rasa restarts
            await self.send(openid, replies, LANGUAGE_GUESS)
        return notify

    async def _turn(self, message: dict[str, Any]) -> None:
        openid = str(message["FromUserName"])
        async with await self._users((CHANNEL, openid)):
            wait = self.limit.delay(openid)
            if wait > 0:
                await asyncio.sleep(wait)
            await self._answer(message, openid)

    async def _answer(self, message: dict[str, Any], openid: str) -> None:
        try:
            result = await self.dispatch(message)
            if result is not None and result.paused:
                # Staff have the conversation: the message goes to the staff group (and is in
                # the console's transcript already), not to Rasa.
                await self.service.in_thread(
                    handoffs.relay_to_staff, self.service.db, result.user.sender_id,
                    self._shown(message), f"{self.bot_id}-{message.get('MsgId') or message.get('CreateTime')}")
            elif result is not None:
                await self.send(openid, result.replies, result.language)
        except Exception as error:
            key = "unavailable"
            if store_faults.is_store_fault(error):
                store_faults.report("wechat", error)
                key = "store_unavailable"
            else:
                logger.exception("WeChat message from %s failed", openid)
            try:
                await self.send(openid, [Reply(text=i18n.t(key, LANGUAGE_GUESS))], LANGUAGE_GUESS)
            except Exception:
                logger.exception("could not tell %s about the failure", openid)
        finally:
            self.turns += 1

    async def dispatch(self, message: dict[str, Any]) -> TurnResult | None:
        kind = str(message.get("MsgType", "")).lower()
        openid = str(message["FromUserName"])
        if kind == "text":
            text = str(message.get("Content") or "").strip()
            if message.get("bizmsgmenuid"):  # a tap on a menu item
                button = self.menus.by_item(openid, str(message["bizmsgmenuid"]))
                return await (self.press(message, button) if button else self.say(message, "button_expired"))
            if text.isdigit():
                button = self.menus.by_number(openid, int(text))
                if button is not None:
                    return await self.press(message, button)
            if text.startswith("/") and len(text) > 1:
                words = text.split()
                return await self.service.command(self.incoming(message, text), words[0][1:].lower(), words[1:])
            return await self.service.handle(self.incoming(message, text))
        if kind == "voice":
            # With speech recognition on (the account's settings), WeChat sends the words.
            text = str(message.get("Recognition") or "").strip()
            if not text:
                return await self.say(message, "wechat_voice_unrecognised")
            # the transcript shows staff it was spoken (recognition can mishear)
            return await self.service.handle(self.incoming(message, text, shown_text=f"🎤 {text}"))
        if kind == "location":
            return await self.say(message, "location_received")
        if kind == "event":
            event = str(message.get("Event", "")).lower()
            if event == "subscribe":  # a new follower (also by scanning a QR code): welcome
                return await self.service.start(self.incoming(message, "/start"))
            # unsubscribe: nothing can be sent any more; menu clicks, scans, reports: not used
            logger.debug("WeChat event %s ignored", event)
            return None
        if kind in NON_TEXT:
            return await self.say(message, "non_text")
        return await self.say(message, "non_text")

    @staticmethod
    def _shown(message: dict[str, Any]) -> str:
        """What the user sent, for staff: the text, the recognised speech, or its kind."""
        kind = str(message.get("MsgType", "")).lower()
        if kind == "voice" and message.get("Recognition"):
            return f"🎤 {message['Recognition']}"
        return str(message.get("Content") or f"[{kind}]")

    async def press(self, message: dict[str, Any], button: Button) -> TurnResult:
        incoming = self.incoming(message, button.payload, is_payload=True, shown_text=button.title)
        return await self.service.press(incoming, button.payload, button.title)

    async def say(self, message: dict[str, Any], key: str) -> TurnResult:
        incoming = self.incoming(message, "")
        user = await self.service.user_for(incoming)
        reply = await self.service.say(user, user.language, key)
        return TurnResult(user=user, language=user.language, replies=[reply])

    # --- out -------------------------------------------------------------------------------

    async def send(self, openid: str, replies: list[Reply], language: str) -> None:
        for body in to_messages(openid, replies, self.menus, self.settings.buttons, language):
            await self.api.send(body)

    async def deliver(self, user, text: str, buttons: list[Button]) -> bool:
        """The notifier's way to a WeChat user (staff replies, reminders); False: try later."""
        try:
            await self.send(users.parse_sender(user.sender_id)[1], [Reply(text=text, buttons=buttons)], user.language)
        except WeChatApiError as error:
            if error.undeliverable:  # outside the 48-hour window, unsubscribed: retrying won't help
                logger.warning("notification to WeChat user %s dropped: %s", user.id, error)
                return True
            logger.warning("notification to WeChat user %s not sent: %s", user.id, error)
            return False
        except httpx.HTTPError as error:  # WeChat unreachable: the notifier tries again later
            logger.warning("notification to WeChat user %s not sent: %s", user.id, error)
            return False
        return True
