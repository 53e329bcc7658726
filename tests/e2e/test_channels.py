"""The same conversation scripts on Telegram, WeChat and the web chat: one parametrised test.

Each channel is driven from the outside, as its users reach it: Telegram through the fake Bot
API (tests/fakes/bot_api.py) polled by the real Application, WeChat through signed safe-mode
callbacks with the answers read from the fake customer-service API (tests/fakes/wechat_api.py),
the web chat through its WebSocket. All three run on the session's real Rasa and action servers
and one store. A driver per channel offers the same four things: send a text, press a button by
its title, deliver a message twice, wait for a message pushed later (a staff reply); a turn's
replies come back as `Said` (text and button titles), so the scripts assert on meaning (the
same i18n text, the same facts in the answer, the same rows in the store), never on a channel's
formatting. What a channel cannot do is a skip with its reason (CANNOT, listed in the README).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import pytest
import uvicorn
import websockets
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import i18n
from bot.settings import BotSettings
from bot.webchat.server import create_app
from bot.webchat.settings import WebchatSettings
from bot.wechat.app import running_channel
from bot.wechat.settings import WeChatSettings
from store import handoff as handoffs
from store.models import Enquiry, Handoff, TranscriptLine, User
from tests.e2e.conftest import running_gateway
from tests.fakes.bot_api import free_port
from tests.fakes.wechat_api import AES_KEY, APP_ID, APP_SECRET, TOKEN, FakeWeChatApi, WeChatUsers

CHANNELS = ("telegram", "wechat", "web")
TURN = 45.0  # seconds: a turn on real Rasa, on 2 shared cores
QUIET = 0.6  # seconds without a new Telegram message after the turn's update was handled

# (script, channel) → why that channel cannot run the script. README: "What each channel cannot do".
CANNOT: dict[tuple[str, str], str] = {}

MODULES_EN = ["Workplace Cooperation", "Quality Management", "Clean Production",
              "Human Resource Management", "Occupational Safety and Health"]
ELIGIBILITY_ZH = "我们是东莞的一家服装厂，有180名员工，给欧洲品牌供货，我们符合条件吗？"


@dataclass
class Said:
    """One message the user saw: its text and the titles of the buttons (or choices) on it."""

    text: str
    buttons: list[str] = field(default_factory=list)


def texts(replies: list[Said]) -> str:
    return "\n".join(r.text for r in replies)


class Driver(Protocol):
    channel: str
    sender_id: str

    async def send(self, text: str, expect_reply: bool = True) -> list[Said]: ...
    async def press(self, title: str) -> list[Said]: ...
    async def send_twice(self, text: str) -> list[Said]: ...
    async def pushed(self, predicate: Callable[[Said], bool], timeout: float = TURN) -> Said: ...


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


# --- Telegram -------------------------------------------------------------------------------------


class TelegramDriver:
    channel = "telegram"

    def __init__(self, gateway) -> None:
        self.gateway, self.api = gateway, gateway.api
        self.user = gateway.new_user()
        self.sender_id = f"tg-{self.user}"
        self.seen = 0

    def _sent(self) -> list[Any]:
        return [c for c in self.api.calls if c.method == "sendMessage" and int(c.params.get("chat_id", 0)) == self.user]

    @staticmethod
    def _said(call) -> Said:
        markup = (call.result or {}).get("reply_markup") or {}
        return Said(call.params.get("text", ""),
                    [b["text"] for row in markup.get("inline_keyboard", []) for b in row])

    def _fetched(self, update_id: int) -> bool:
        return any(c.method == "getUpdates" and int(c.params.get("offset") or 0) > update_id for c in self.api.calls)

    async def _turn(self, update_id: int, expect_reply: bool = True) -> list[Said]:
        """The turn's messages: the update was fetched and handled, and nothing more came for QUIET."""
        application = self.gateway.application
        await until(lambda: self._fetched(update_id), TURN, f"update {update_id} to be fetched")
        deadline = time.monotonic() + TURN
        count, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            now = len(self._sent())
            idle = application.update_queue.empty() and application.update_processor.current_concurrent_updates == 0
            if now != count or not idle:
                count, since = now, time.monotonic()
            elif (now > self.seen or not expect_reply) and time.monotonic() - since >= QUIET:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"no answer to update {update_id}: {[c.params for c in self._sent()]}")
        new = self._sent()[self.seen:]
        self.seen += len(new)
        return [self._said(c) for c in new]

    async def send(self, text: str, expect_reply: bool = True) -> list[Said]:
        return await self._turn(self.api.push_text(self.user, text), expect_reply)

    async def press(self, title: str) -> list[Said]:
        message = next(c.result for c in reversed(self._sent()[:self.seen]) if title in self._said(c).buttons)
        return await self._turn(self.api.press(self.user, message, title))

    async def send_twice(self, text: str) -> list[Said]:
        update_id = self.api.push_text(self.user, text)
        replies = await self._turn(update_id)
        self.api.repeat(update_id)  # as Telegram does when the offset's confirmation was lost
        await until(lambda: not self.api.repeats, TURN, "the repeated update to be fetched")
        polls = self._polls()  # the next poll: the Application has the repeated update in its queue
        await until(lambda: self._polls() > polls, TURN, "the updater to poll again")
        return replies + await self._turn(update_id, expect_reply=False)

    def _polls(self) -> int:
        return sum(c.method == "getUpdates" for c in self.api.calls)

    async def pushed(self, predicate: Callable[[Said], bool], timeout: float = TURN) -> Said:
        await until(lambda: any(predicate(self._said(c)) for c in self._sent()[self.seen:]), timeout, "a push")
        new = self._sent()[self.seen:]
        self.seen += len(new)
        return next(self._said(c) for c in new if predicate(self._said(c)))


@contextlib.asynccontextmanager
async def telegram(stack, rasa_url: str, **settings: Any) -> AsyncIterator[TelegramDriver]:
    async with running_gateway(rasa_url, stack.settings.rasa_token, stack.db, **settings) as gateway:
        yield TelegramDriver(gateway)


# --- WeChat ---------------------------------------------------------------------------------------


class WeChatDriver:
    channel = "wechat"

    def __init__(self, channel, api: FakeWeChatApi, users: WeChatUsers) -> None:
        self.wechat, self.api, self.users = channel, api, users
        self.openid = f"oWx-{uuid.uuid4().hex[:12]}"
        self.sender_id = f"wx-{self.openid}"
        self.seen = 0

    @staticmethod
    def _said(sent) -> Said:
        if sent.msgtype == "msgmenu":  # "1. 中文": the title after the number
            return Said(sent.body["msgmenu"].get("head_content", ""),
                        [i["content"].split(". ", 1)[1] for i in sent.items])
        return Said(sent.text)

    async def _answer(self, response: httpx.Response) -> list[Said]:
        assert (response.status_code, response.text) == (200, "success")
        await self.wechat.drain()  # the turn runs after the callback answered; this waits for it
        new = self.api.to(self.openid)[self.seen:]
        self.seen += len(new)
        return [self._said(s) for s in new]

    async def send(self, text: str, expect_reply: bool = True) -> list[Said]:
        return await self._answer(await self.users.text(self.openid, text))

    async def press(self, title: str) -> list[Said]:
        menu = next(s for s in reversed(self.api.to(self.openid)[:self.seen]) if title in self._said(s).buttons)
        item = next(i for i in menu.items if i["content"].split(". ", 1)[1] == title)
        return await self._answer(await self.users.text(self.openid, item["content"], bizmsgmenuid=item["id"]))

    async def send_twice(self, text: str) -> list[Said]:
        msg_id = self.users.new_msg_id()
        # WeChat retries a callback it thinks was late: the same MsgId, at once and later
        responses = await asyncio.gather(*(self.users.text(self.openid, text, msg_id=msg_id) for _ in range(2)))
        replies = []
        for response in responses:
            replies += await self._answer(response)
        return replies + await self._answer(await self.users.text(self.openid, text, msg_id=msg_id))

    async def pushed(self, predicate: Callable[[Said], bool], timeout: float = TURN) -> Said:
        await self.api.wait_for(lambda: any(predicate(self._said(s)) for s in self.api.to(self.openid)[self.seen:]),
                                timeout)
        new = self.api.to(self.openid)[self.seen:]
        self.seen += len(new)
        return next(self._said(s) for s in new if predicate(self._said(s)))


@contextlib.asynccontextmanager
async def wechat(stack, rasa_url: str, **settings: Any) -> AsyncIterator[WeChatDriver]:
    api = FakeWeChatApi()
    await api.start()
    wechat_settings = WeChatSettings(token=TOKEN, app_id=APP_ID, app_secret=APP_SECRET, aes_key=AES_KEY,
                                     api_base_url=api.base_url, port=free_port(), path="wechat/callback")
    bot_settings = BotSettings(rasa_url=rasa_url, rasa_token=stack.settings.rasa_token,
                               notification_interval=0.3, **settings)
    users = WeChatUsers(f"http://127.0.0.1:{wechat_settings.port}/wechat/callback", aes_key=AES_KEY)
    try:
        async with running_channel(wechat_settings, bot_settings, stack.db) as channel:
            yield WeChatDriver(channel, api, users)
    finally:
        await users.close()
        await api.stop()


# --- the web chat ---------------------------------------------------------------------------------


class WebDriver:
    channel = "web"

    def __init__(self, socket, frames: list[dict], arrived: asyncio.Event) -> None:
        self.socket, self.frames, self.arrived = socket, frames, arrived
        self.visitor = ""
        self.sender_id = ""
        self.seen = 0
        self.buttons: dict[str, str] = {}  # title → payload, of the chips shown last

    async def _frames_until(self, done: Callable[[dict], bool], timeout: float = TURN) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            for index in range(self.seen, len(self.frames)):
                if done(self.frames[index]):
                    new = self.frames[self.seen:index + 1]
                    self.seen = index + 1
                    return new
            if time.monotonic() > deadline:
                raise AssertionError(f"no answer over the web chat: {self.frames[self.seen:]}")
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), 0.5)

    def _said(self, frames: list[dict]) -> list[Said]:
        said = []
        for frame in frames:
            if frame["type"] == "replies":
                for reply in frame["replies"]:
                    said.append(Said(reply["text"], [b["title"] for b in reply["buttons"]]))
                    self.buttons.update({b["title"]: b["payload"] for b in reply["buttons"]})
            elif frame["type"] in ("push", "notice"):
                said.append(Said(frame["text"], [b["title"] for b in frame.get("buttons") or []]))
                self.buttons.update({b["title"]: b["payload"] for b in frame.get("buttons") or []})
        return said

    @staticmethod
    def _turn_over(frame: dict) -> bool:
        # The turn's answer; a "please wait" sent mid-turn (Rasa away) comes without a language.
        return frame["type"] == "notice" or frame["type"] == "replies" and frame.get("language") is not None

    async def open(self) -> list[Said]:
        self.visitor = str(uuid.uuid4())
        self.sender_id = f"web-{self.visitor}"
        await self.socket.send(json.dumps({"type": "hello", "visitor": self.visitor, "language": "en-US"}))
        return self._said(await self._frames_until(lambda f: f["type"] in ("replies", "history")))

    async def _send(self, frame: dict) -> list[dict]:
        """A frame with a new client id, and the frames up to its acknowledgement (the turn's answer)."""
        frame_id = str(uuid.uuid4())
        await self.socket.send(json.dumps({**frame, "id": frame_id}))
        frames = await self._frames_until(lambda f: self._turn_over(f) and f.get("ack") == frame_id)
        return frames

    async def send(self, text: str, expect_reply: bool = True) -> list[Said]:
        # a turn always answers on the web chat: when staff have the conversation, a "passed on" notice
        return self._said(await self._send({"type": "message", "text": text}))

    async def press(self, title: str) -> list[Said]:
        return self._said(await self._send({"type": "press", "payload": self.buttons[title], "title": title}))

    async def send_twice(self, text: str) -> list[Said]:
        # As the widget does after a reconnect when it did not see the acknowledgement: the same
        # id again. A socket's frames are handled in order, so both acknowledgements (an answer
        # carrying "ack", a bare "ack") come back, and a second answer, were there one, before them.
        frame_id = str(uuid.uuid4())
        frame = json.dumps({"type": "message", "text": text, "id": frame_id})
        await self.socket.send(frame)
        await self.socket.send(frame)

        def acknowledged() -> int:
            return sum(f.get("ack") == frame_id or f.get("id") == frame_id for f in self.frames[self.seen:])

        await until(lambda: acknowledged() >= 2, TURN, "both copies to be acknowledged")
        frames = self.frames[self.seen:]
        self.seen = len(frames) + self.seen
        assert [f for f in frames if f["type"] == "ack"] == [{"type": "ack", "id": frame_id, "in_history": False}]
        return self._said(frames)

    async def pushed(self, predicate: Callable[[Said], bool], timeout: float = TURN) -> Said:
        frames = await self._frames_until(lambda f: f["type"] == "push" and predicate(Said(f["text"])), timeout)
        return self._said(frames[-1:])[0]


@contextlib.asynccontextmanager
async def web(stack, rasa_url: str, **settings: Any) -> AsyncIterator[WebDriver]:
    port = free_port()
    app = create_app(WebchatSettings(port=port, notification_interval=0.3),
                     BotSettings(rasa_url=rasa_url, rasa_token=stack.settings.rasa_token, **settings), stack.db)
    async with serving(app, port, ws_max_size=32 * 1024):
        frames: list[dict] = []
        arrived = asyncio.Event()
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws", origin=f"http://127.0.0.1:{port}") as socket:
            async def read() -> None:
                async for raw in socket:
                    frames.append(json.loads(raw))
                    arrived.set()

            reader = asyncio.create_task(read())
            driver = WebDriver(socket, frames, arrived)
            try:
                await driver.open()
                yield driver
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                    await reader


@contextlib.asynccontextmanager
async def serving(app, port: int, **config: Any) -> AsyncIterator[uvicorn.Server]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config))
    task = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started or task.done(), 30, "uvicorn to start")
        if task.done():
            task.result()
        yield server
    finally:
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)


# --- a Rasa that can be made unreachable -------------------------------------------------------------


class RasaSwitch:
    """In front of the real Rasa server: passes everything on while up; while down answers 503 to
    every request (its /status too), which the gateway's Rasa client takes as Rasa unreachable."""

    def __init__(self, target: str) -> None:
        self.target, self.up = target, True
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = httpx.AsyncClient(base_url=target, timeout=60)
        self.app = Starlette(routes=[Route("/{path:path}", self.forward, methods=["GET", "POST", "PUT", "DELETE"])])

    async def forward(self, request: Request) -> Response:
        if not self.up:
            return Response("down for the test", status_code=503)
        answer = await self.client.request(request.method, request.url.path, params=request.query_params,
                                           content=await request.body(),
                                           headers={"content-type": request.headers.get("content-type", "")})
        return Response(answer.content, answer.status_code, media_type=answer.headers.get("content-type"))


DRIVERS = {"telegram": telegram, "wechat": wechat, "web": web}


@pytest.fixture(params=CHANNELS)
def channel(request) -> str:
    return request.param


def skip_what_cannot_be_done(script: str, channel: str) -> None:
    reason = CANNOT.get((script, channel))
    if reason:
        pytest.skip(f"{channel} cannot: {reason}")


def driver(stack, channel: str, rasa_url: str | None = None, **settings: Any):
    return DRIVERS[channel](stack, rasa_url or stack.rasa_url, **settings)


def user_row(db, sender_id: str) -> User | None:
    with db.session() as session:
        user = session.scalars(select(User).where(User.sender_id == sender_id)).one_or_none()
        if user is not None:
            session.expunge(user)
        return user


def transcript(db, sender_id: str) -> list[tuple[str, str, str | None]]:
    with db.session() as session:
        return [(line.direction, line.text, line.intent) for line in session.scalars(
            select(TranscriptLine).join(User).where(User.sender_id == sender_id).order_by(TranscriptLine.id))]


# --- the scripts --------------------------------------------------------------------------------------


async def test_faq_in_english(stack, channel):
    skip_what_cannot_be_done("faq_en", channel)
    async with driver(stack, channel) as chat:
        answer = texts(await chat.send("what modules are there"))
        assert all(module in answer for module in MODULES_EN), answer
        assert "Source" in answer
        lines = transcript(stack.db, chat.sender_id)
        assert lines[0][0] == "in" and lines[0][2] == "faq_modules"  # what Rasa understood, on every channel
        assert user_row(stack.db, chat.sender_id).language == "en"


async def test_faq_in_chinese(stack, channel):
    skip_what_cannot_be_done("faq_zh", channel)
    async with driver(stack, channel) as chat:
        answer = texts(await chat.send("SCORE培训有哪些模块？"))
        assert "工作场所合作" in answer and "来源" in answer, answer
        assert "Workplace Cooperation" not in answer
        user = user_row(stack.db, chat.sender_id)
        assert (user.channel, user.language) == (chat.channel, "zh")


async def test_a_button_press_chooses_the_language(stack, channel):
    skip_what_cannot_be_done("button", channel)
    async with driver(stack, channel) as chat:
        welcome = await chat.send("/start")
        assert any("中文" in r.buttons and "English" in r.buttons for r in welcome), welcome
        assert texts(await chat.press("中文")) == i18n.t("language_set", "zh")
        # English text, but 中文 was chosen: the answer stays Chinese
        answer = texts(await chat.send("what modules are there"))
        assert "工作场所合作" in answer, answer


async def test_eligibility_check_to_a_verdict(stack, channel):
    skip_what_cannot_be_done("eligibility", channel)
    async with driver(stack, channel) as chat:
        replies = await chat.send(ELIGIBILITY_ZH)
        assert "180" in texts(replies)
        yes = i18n.t("elig_button_yes", "zh")
        assert any(yes in r.buttons for r in replies), replies  # "do you commit ...?" with yes/no
        outcome = texts(await chat.press(yes))
        assert "50–500" in outcome, outcome
        with stack.db.session() as session:
            enquiry = session.scalars(select(Enquiry).join(User).where(User.sender_id == chat.sender_id)).one()
            assert (enquiry.outcome, enquiry.employees_low) == ("eligible", 180)


async def test_handoff_and_a_staff_reply_on_the_users_channel(stack, channel):
    skip_what_cannot_be_done("handoff", channel)
    async with driver(stack, channel) as chat:
        await chat.send("SCORE是什么？")
        started = await chat.send("/human")
        assert i18n.t("handoff_started", "zh") in texts(started), started
        user = user_row(stack.db, chat.sender_id)
        with stack.db.session() as session:
            handoff = session.scalars(select(Handoff).where(Handoff.user_id == user.id)).one()
            handoff_id = handoff.id
        # a staff member answers from the console: it reaches the user on their own channel
        staff_text = f"您好，我是培训中心的李老师（{channel}）。"
        await asyncio.to_thread(handoffs.reply_as, stack.db, user.id, "anna", staff_text)
        assert (await chat.pushed(lambda said: said.text == staff_text)).text == staff_text
        # while staff have the conversation, the bot does not answer (staff read it)
        paused = await chat.send("模块一的费用是多少？", expect_reply=False)
        # nothing, or (web chat) a notice that the message was passed on
        assert all(said.text == i18n.t("webchat_passed_on", "zh") for said in paused), paused
        lines = transcript(stack.db, chat.sender_id)
        assert lines[-1][:2] == ("in", "模块一的费用是多少？") and lines[-1][2] is None  # not sent to Rasa
        await asyncio.to_thread(handoffs.resolve_as, stack.db, handoff_id, "anna")
        await chat.pushed(lambda said: said.text == i18n.t("handoff_resumed", "zh"))
        answer = texts(await chat.send("SCORE培训有哪些模块？"))  # the bot answers again
        assert "工作场所合作" in answer


async def test_forget_deletes_the_user(stack, channel):
    skip_what_cannot_be_done("forget", channel)
    async with driver(stack, channel) as chat:
        await chat.send("what modules are there")
        assert user_row(stack.db, chat.sender_id) is not None
        confirm = await chat.send("/forget")
        assert i18n.t("forget_confirm", "en") in texts(confirm)
        done = texts(await chat.press(i18n.t("forget_yes", "en")))
        assert done.startswith(i18n.t("forget_done", "en").split("{")[0].strip()), done  # "Done. Deleted"
        assert user_row(stack.db, chat.sender_id) is None
        assert transcript(stack.db, chat.sender_id) == []


async def test_a_message_delivered_twice_is_answered_once(stack, channel):
    skip_what_cannot_be_done("duplicate", channel)
    async with driver(stack, channel) as chat:
        replies = await chat.send_twice("what is the training format")
        assert replies and texts(replies).count("Source") == 1, replies
        inbound = [line for line in transcript(stack.db, chat.sender_id) if line[0] == "in"]
        assert [line[1] for line in inbound] == ["what is the training format"]


async def test_rasa_unavailable_is_said_and_the_next_message_answered(stack, channel):
    skip_what_cannot_be_done("rasa_unavailable", channel)
    switch = RasaSwitch(stack.rasa_url)
    async with serving(switch.app, switch.port), \
            driver(stack, channel, switch.url, rasa_hold_window=1.5) as chat:
        switch.up = False
        told = await chat.send("what modules are there")
        said = [r.text for r in told]
        unavailable = {i18n.t(key, "en") for key in ("rasa_waiting", "rasa_send_again", "unavailable")}
        assert said and set(said) <= unavailable, said
        assert said[-1] in {i18n.t("rasa_send_again", "en"), i18n.t("unavailable", "en")}
        switch.up = True
        answer = texts(await chat.send("what modules are there"))
        assert "Workplace Cooperation" in answer, answer
    await switch.client.aclose()
