"""The web chat server: serves the widget and its demo page, and speaks to each visitor over a
WebSocket, handing every message, command and chip press to the conversation service
(channel "web"), exactly as the Telegram handlers and the terminal chat do.

Protocol (JSON text frames):
  visitor → server   {"type": "hello", "visitor": "<id from localStorage>", "language": "zh-CN"}
                     {"type": "message", "id": "<client message id>", "text": "…"}   ("/…": a command)
                     {"type": "press", "id": "…", "payload": "…", "title": "…"}
  server → visitor   {"type": "history", "language", "paused", "lines": [{"from", "text", "buttons", "staff_name"}]}
                     {"type": "typing"}
                     {"type": "replies", "ack", "language", "replies": [{"text", "buttons": [{"title", "payload"}]}]}
                     (the welcome, to a visitor without a transcript, has "welcome": true)
                     {"type": "push", "from": "staff" | "bot", "staff_name", "text", "buttons"}
                     {"type": "notice", "ack", "key", "text", "retry"}   (retry: the text to send again)
                     {"type": "ack", "id", "in_history"}   (a frame handled before: answered once already)

Delivery is at least once, answered once: the widget keeps each frame it sent (in localStorage)
until a frame with its id as "ack" comes back, and sends it again after a reconnect. The server
claims each (visitor, id) in the store (conversations.claim_update, as Telegram's update_id and
WeChat's MsgId), so a frame sent again is not a second turn: it gets a bare "ack", or, when the
first answer went to a socket that was gone and the visitor's new history was read before that
answer was written, the answer itself (kept in memory for RECENT seconds).

The visitor id (a random UUID the widget keeps in localStorage) is the only thing that ties a
browser to its conversation; nothing secret is in the page. Staff replies and other
notifications for web visitors are sent by this server's own notifier (store rows of channel
"web"): pushed over the visitor's open sockets, and in the transcript, so a visitor who was
offline sees them in the history when the widget connects again.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import time
from collections import defaultdict, deque
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

import i18n
from bot import store_faults
from bot.conversation import ConversationService, Incoming, TurnResult, language_buttons
from bot.memory import release_freed_memory_every
from bot.notifier import Notifier
from bot.rasa_client import Button, RasaClient, Reply
from bot.settings import BotSettings
from bot.webchat.origins import is_allowed
from bot.webchat.settings import WebchatSettings
from store import conversations, history as transcripts, users
from store.db import Database
from store.kinds import Channel, NotificationKind

logger = logging.getLogger(__name__)

CHANNEL = Channel.WEB
STATIC = Path(__file__).resolve().parent / "static"
VISITOR_RE = re.compile(r"^[A-Za-z0-9-]{16,64}$")
FRAME_ID_RE = re.compile(r"^[A-Za-z0-9-]{8,64}$")
DEDUP_BOT_ID = "web"  # the store's processed_updates "bot" for web frames (Telegram: the bot's id)
RECENT = 600.0  # seconds a turn's answer is kept in memory for a frame sent again
# How the transcript writes a reply's buttons (ConversationService.record_replies).
BUTTON_LINE = re.compile(r"^\[[^\]\n]*\](?: \| \[[^\]\n]*\])*$")
MAX_TEXT = 4000
HELLO_TIMEOUT = 10.0
# New connections per client address per minute: visitor ids are the browser's own, so this
# is what bounds one machine opening chats under ever new ids.
CONNECTIONS_PER_MINUTE = 30
WIDGET_KEYS = [key for key in i18n.keys() if key.startswith("webchat_")]  # noqa: SIM118 (a function)


class RateLimit:
    """At most `rate` events per `window` seconds per key; more are refused (and told so)."""

    def __init__(self, rate: int, window: float) -> None:
        self.rate, self.window = rate, window
        self._times: dict[str, deque[float]] = defaultdict(deque)
        self._swept = time.monotonic()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        if now - self._swept > self.window:  # keys quiet for a whole window take no memory
            self._swept = now
            for quiet in [k for k, t in self._times.items() if not t or now - t[-1] >= self.window]:
                del self._times[quiet]
        times = self._times[key]
        while times and now - times[0] >= self.window:
            times.popleft()
        if len(times) >= self.rate:
            return False
        times.append(now)
        return True


class Connection:
    """One open socket; sends are serialised (a turn's answer and a pushed staff reply)."""

    def __init__(self, socket: WebSocket) -> None:
        self.socket = socket
        self._lock = asyncio.Lock()
        self.history_read_at = float("inf")  # when greet() read the history this socket was shown

    async def send(self, message: dict) -> bool:
        async with self._lock:
            try:
                await self.socket.send_text(json.dumps(message, ensure_ascii=False))
                return True
            except Exception:  # noqa: BLE001  the visitor went away mid-send; the transcript has it
                return False


class Turn:
    """One client frame being handled or handled lately, for a copy of it sent again."""

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.answer: list[dict] = []  # the frames that answered it (without their "ack")
        self.recorded_at = float("inf")  # monotonic: when its answer was in the transcript
        self.shown_on: set[Connection] = set()

    def finish(self, answer: list[dict]) -> None:
        self.answer, self.recorded_at = answer, time.monotonic()
        self.done.set()


def frame_key(visitor: str, frame_id: str) -> int:
    """The store's key for one visitor's frame (processed_updates.update_id is a BIGINT)."""
    digest = hashlib.sha256(f"{visitor}|{frame_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class Visitors:
    """The open sockets of each visitor (a visitor may have several tabs open)."""

    def __init__(self) -> None:
        self._open: dict[str, set[Connection]] = defaultdict(set)

    def add(self, visitor: str, connection: Connection) -> None:
        self._open[visitor].add(connection)

    def remove(self, visitor: str, connection: Connection) -> None:
        self._open[visitor].discard(connection)
        if not self._open[visitor]:
            del self._open[visitor]

    async def push(self, visitor: str, message: dict) -> int:
        sent = [await c.send(message) for c in list(self._open.get(visitor, ()))]
        return sum(sent)


def reply_json(reply: Reply) -> dict:
    return {"text": reply.text, "buttons": [{"title": b.title, "payload": b.payload} for b in reply.buttons]}


def history_line(line: transcripts.HistoryLine) -> dict:
    """A transcript line as the widget shows it; a reply's buttons (written as "[A] | [B]" on
    its last line) come back as chip titles (shown, not pressable: their payloads are not kept)."""
    text, buttons = line.text, []
    head, _, last = text.rpartition("\n")
    if line.direction == "out" and BUTTON_LINE.match(last):
        text, buttons = head, [title[1:-1] for title in last.split(" | ")]
    who = {"in": "user", "staff": "staff"}.get(line.direction, "bot")
    return {"from": who, "text": text, "buttons": buttons, "staff_name": line.staff_name}


class OriginCheck:
    """HTTP requests that carry a foreign Origin are refused (the WebSocket checks its own)."""

    def __init__(self, app: ASGIApp, allowed: frozenset[str]) -> None:
        self.app, self.allowed = app, allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            origin = headers.get("origin")
            if origin is not None and not is_allowed(origin, headers.get("host"), self.allowed):
                await PlainTextResponse("origin not allowed", status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class WebNotifier(Notifier):
    """The store's notifications for web visitors: staff replies, "the bot is back"."""

    current = None  # the row being sent (run_once sends one at a time)

    async def send(self, row) -> bool:
        self.current = row
        try:
            return await super().send(row)
        finally:
            self.current = None


class WebChat:
    def __init__(self, settings: WebchatSettings, service: ConversationService) -> None:
        self.settings = settings
        self.service = service
        self.visitors = Visitors()
        self.limit = RateLimit(settings.rate, settings.rate_window)
        self.connecting = RateLimit(CONNECTIONS_PER_MINUTE, 60.0)
        self.refused = 0  # handshakes refused for their origin (for tests and logs)
        self.greeted = 0  # connections that said hello (a reconnect counts again)
        self.repeated = 0  # frames sent again and answered from memory or with a bare ack
        self.turns: dict[tuple[str, str], Turn] = {}  # (visitor, frame id) → its turn, for RECENT s
        self.notifier = WebNotifier(service, self.deliver, None, settings.notification_interval,
                                    channels=(CHANNEL,), staff_alerts=False)

    async def deliver(self, user, text: str, buttons: list[Button]) -> bool:
        row = self.notifier.current
        from_staff = row is not None and row.kind == NotificationKind.STAFF_REPLY
        staff_name = row.payload.get("staff_name") if row is not None and from_staff else None
        message = {"type": "push", "from": "staff" if staff_name else "bot", "staff_name": staff_name,
                   "text": text, "buttons": [{"title": b.title, "payload": b.payload} for b in buttons]}
        # Sent or not, it is in the transcript: a visitor offline now sees it on reconnect.
        await self.visitors.push(users.parse_sender(user.sender_id)[1], message)
        return True

    # --- the socket -------------------------------------------------------------------------

    async def chat(self, socket: WebSocket) -> None:
        origin = socket.headers.get("origin")
        if not is_allowed(origin, socket.headers.get("host"), self.settings.allowed_origins):
            self.refused += 1
            logger.warning("web chat refused a connection from origin %r", origin)
            await socket.close(code=1008)  # before accept: the handshake gets 403
            return
        address = socket.client.host if socket.client else "?"
        if not self.connecting.allow(address):
            logger.warning("web chat refused a connection from %s: too many", address)
            await socket.close(code=1013)
            return
        await socket.accept()
        connection = Connection(socket)
        try:
            hello = json.loads(await asyncio.wait_for(socket.receive_text(), HELLO_TIMEOUT))
            visitor = str(hello.get("visitor", ""))
            if hello.get("type") != "hello" or not VISITOR_RE.match(visitor):
                raise ValueError("bad hello")
        except (TimeoutError, ValueError, AttributeError, WebSocketDisconnect):
            with contextlib.suppress(Exception):
                await socket.close(code=1008)
            return
        language_code = str(hello.get("language") or "")[:16] or None
        self.visitors.add(visitor, connection)
        try:
            await self.greet(connection, visitor, language_code)
            while True:
                raw = await socket.receive_text()
                await self.on_frame(connection, visitor, language_code, raw)
        except WebSocketDisconnect:
            pass
        finally:
            self.visitors.remove(visitor, connection)

    def incoming(self, connection: Connection, visitor: str, language_code: str | None, text: str,
                 **extra) -> Incoming:
        async def notify(replies: list[Reply]) -> None:  # "please wait" while Rasa is away
            await connection.send({"type": "replies", "language": None,
                                   "replies": [reply_json(r) for r in replies]})

        return Incoming(channel=CHANNEL, external_id=visitor, text=text, chat_id=None,
                        display_name=f"web visitor {visitor[:8]}", language_code=language_code,
                        notify=notify, **extra)

    async def greet(self, connection: Connection, visitor: str, language_code: str | None) -> None:
        """The conversation so far; a first visit gets the welcome (with the language chips)."""
        self.greeted += 1
        connection.history_read_at = time.monotonic()  # answers written after this are not in it
        past = await self.service.in_thread(transcripts.history, self.service.db, CHANNEL, visitor,
                                            self.settings.history_lines)
        if past is not None and past.lines:
            await connection.send({"type": "history", "language": past.language, "paused": past.paused,
                                   "lines": [history_line(line) for line in past.lines]})
            return
        # Like the terminal chat, the welcome is not written anywhere: a page view creates no
        # user and no transcript; the visitor's first message or chip does.
        language = past.language if past is not None else i18n.normalise(language_code)
        welcome = Reply(text=i18n.t("welcome", language), buttons=language_buttons())
        await connection.send({"type": "replies", "welcome": True, "language": language,
                               "replies": [reply_json(welcome)]})

    async def on_frame(self, connection: Connection, visitor: str, language_code: str | None, raw: str) -> None:
        frame_id = None
        try:
            frame = json.loads(raw)
            kind = frame["type"]
            if frame.get("id") is not None:
                frame_id = str(frame["id"])
                if not FRAME_ID_RE.match(frame_id):
                    frame_id = None
                    raise ValueError("bad id")
            text = str(frame.get("text") or frame.get("title") or "")[:MAX_TEXT]
            payload = str(frame.get("payload") or "")[:1024]
            if kind not in ("message", "press") or (kind == "press" and not payload):
                raise ValueError(kind)
        except (ValueError, KeyError, TypeError, AttributeError):
            await self.notice(connection, visitor, "webchat_bad_message", ack=frame_id)
            return
        if frame_id is not None and await self.repeat(connection, visitor, frame_id):
            return
        if not self.limit.allow(visitor):
            # Not handled: acknowledged all the same (the widget puts the text back to send again).
            await self.notice(connection, visitor, "webchat_slow_down", ack=frame_id,
                              retry=text if kind == "message" else None)
            return
        turn = self.remember(visitor, frame_id) if frame_id is not None else None
        answer: list[dict] = []
        try:
            if frame_id is not None and not await self.service.in_thread(
                    conversations.claim_update, self.service.db, frame_key(visitor, frame_id), DEDUP_BOT_ID):
                # Handled before (by another server, or before a restart): the history has it.
                self.repeated += 1
                await connection.send({"type": "ack", "id": frame_id, "in_history": True})
                return
            await connection.send({"type": "typing"})
            incoming = self.incoming(connection, visitor, language_code, text)
            if kind == "press":
                result = await self.service.press(incoming, payload, text or None)
            elif text.startswith("/") and len(text.strip()) > 1:
                words = text.split()
                result = await self.service.command(incoming, words[0][1:].lower(), words[1:])
            else:
                result = await self.service.handle(incoming)
            answer = self.answer(result)
        except Exception as error:  # noqa: BLE001  told plainly; the socket (and the next frame) go on
            answer = [self.failure(error, language_code)]
        finally:
            if turn is not None:
                turn.finish(answer)
        if await self.show(connection, answer, frame_id) and turn is not None:
            turn.shown_on.add(connection)

    def remember(self, visitor: str, frame_id: str) -> Turn:
        now = time.monotonic()
        for key in [k for k, t in self.turns.items() if t.done.is_set() and now - t.recorded_at > RECENT]:
            del self.turns[key]
        turn = self.turns[visitor, frame_id] = Turn()
        return turn

    async def repeat(self, connection: Connection, visitor: str, frame_id: str) -> bool:
        """A frame this server has seen: answered once. False: not seen here (the store decides)."""
        turn = self.turns.get((visitor, frame_id))
        if turn is None:
            return False
        self.repeated += 1
        await turn.done.wait()  # still being handled (on a socket that may be gone): its answer
        if connection in turn.shown_on or turn.recorded_at <= connection.history_read_at or not turn.answer:
            await connection.send({"type": "ack", "id": frame_id,
                                   "in_history": connection not in turn.shown_on})
        elif await self.show(connection, turn.answer, frame_id):
            # Its first socket was gone before the answer, and this one's history was read too early.
            turn.shown_on.add(connection)
        return True

    @staticmethod
    def failure(error: Exception, language_code: str | None) -> dict:
        """A turn that failed is answered too (as on WeChat): acknowledged, so not sent again."""
        key = "unavailable"
        if store_faults.is_store_fault(error):
            store_faults.report("web chat", error)
            key = "store_unavailable"
        else:
            logger.exception("web chat turn failed")
        return {"type": "notice", "key": key, "language": None,
                "text": i18n.t(key, i18n.normalise(language_code))}

    @staticmethod
    def answer(result: TurnResult) -> list[dict]:
        if result.paused:  # staff have the conversation: they read it in the console
            return [{"type": "notice", "key": "webchat_passed_on", "language": result.language,
                     "text": i18n.t("webchat_passed_on", result.language)}]
        return [{"type": "replies", "language": result.language, "replies": [reply_json(r) for r in result.replies]}]

    async def show(self, connection: Connection, answer: list[dict], frame_id: str | None) -> bool:
        """The answer, its last frame carrying the ack (one frame: answered and acknowledged at once)."""
        sent = True
        for index, message in enumerate(answer):
            last = index == len(answer) - 1
            sent = await connection.send({**message, "ack": frame_id} if last else message) and sent
        return sent

    async def notice(self, connection: Connection, visitor: str, key: str, retry: str | None = None,
                     ack: str | None = None) -> None:
        user = await self.service.in_thread(transcripts.history, self.service.db, CHANNEL, visitor, 1)
        language = user.language if user else None
        await connection.send({"type": "notice", "key": key, "language": language,
                               "text": i18n.t(key, language), "retry": retry, "ack": ack})


# --- HTTP --------------------------------------------------------------------------------------


def widget_js() -> str:
    strings = {lang: {key[len("webchat_"):]: i18n.t(key, lang) for key in WIDGET_KEYS} for lang in i18n.LANGUAGES}
    source = (STATIC / "widget.js").read_text(encoding="utf-8")
    return source.replace("/*STRINGS*/{}", json.dumps(strings, ensure_ascii=False))


def create_app(settings: WebchatSettings, bot_settings: BotSettings, db: Database) -> Starlette:
    script = widget_js()
    state: dict[str, WebChat] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        rasa = RasaClient(bot_settings.rasa_url, bot_settings.rasa_token, bot_settings.rasa_timeout)
        service = ConversationService(db, rasa, bot_settings.rasa_hold_window)
        webchat = WebChat(settings, service)
        app.state.webchat = webchat
        app.state.loop = asyncio.get_running_loop()
        state["webchat"] = webchat
        task = asyncio.create_task(webchat.notifier.loop())
        trimming = asyncio.create_task(release_freed_memory_every())
        try:
            yield
        finally:
            task.cancel()
            trimming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await rasa.close()

    async def widget(request: Request) -> Response:
        return Response(script, media_type="text/javascript; charset=utf-8", headers={
            "Cache-Control": "public, max-age=300", "Cross-Origin-Resource-Policy": "cross-origin"})

    async def stylesheet(request: Request) -> Response:
        return Response((STATIC / "widget.css").read_bytes(), media_type="text/css; charset=utf-8", headers={
            "Cache-Control": "public, max-age=300", "Cross-Origin-Resource-Policy": "cross-origin"})

    async def demo_css(request: Request) -> Response:
        return Response((STATIC / "demo.css").read_bytes(), media_type="text/css; charset=utf-8")

    async def demo(request: Request) -> Response:
        return Response((STATIC / "demo.html").read_bytes(), media_type="text/html; charset=utf-8", headers={
            "Content-Security-Policy": "default-src 'self'; connect-src 'self'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff"})

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def socket(websocket: WebSocket) -> None:
        await state["webchat"].chat(websocket)

    return Starlette(
        routes=[
            Route("/", lambda r: RedirectResponse("/demo")),
            Route("/demo", demo),
            Route("/demo.css", demo_css),
            Route("/widget.js", widget),
            Route("/widget.css", stylesheet),
            Route("/health", health),
            WebSocketRoute("/ws", socket),
        ],
        middleware=[Middleware(OriginCheck, allowed=settings.allowed_origins)],
        lifespan=lifespan,
    )
