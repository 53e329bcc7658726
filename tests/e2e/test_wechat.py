"""The WeChat channel end to end: WeChat (tests/fakes/wechat_api.py) calls the channel's callback
URL in safe mode, the real Rasa and action servers answer, and the answers go out through the
fake customer-service message API. The Chinese transcript is written to
var/test-logs/wechat-conversation-zh.txt."""
from __future__ import annotations

import asyncio
import contextlib
import re

import pytest
from sqlalchemy import func, select

import i18n
from bot.settings import BotSettings
from bot.wechat.app import running_channel
from bot.wechat.settings import WeChatSettings
from stack.settings import ROOT
from store import handoff as handoffs
from store.models import Booking, Enquiry, Handoff, TranscriptLine, User
from tests.fakes.bot_api import free_port
from tests.fakes.wechat_api import (
    AES_KEY,
    APP_ID,
    APP_SECRET,
    TOKEN,
    FakeWeChatApi,
    Sent,
    WeChatUsers,
)

ONE_MESSAGE = "我们是东莞的一家服装厂，有180名员工，给欧洲品牌供货，我们符合条件吗？"


@contextlib.asynccontextmanager
async def wechat_channel(stack, aes_key: str = AES_KEY):
    api = FakeWeChatApi()
    await api.start()
    settings = WeChatSettings(token=TOKEN, app_id=APP_ID, app_secret=APP_SECRET, aes_key=aes_key,
                              api_base_url=api.base_url, port=free_port(), path="wechat/callback")
    bot_settings = BotSettings(rasa_url=stack.rasa_url, rasa_token=stack.settings.rasa_token,
                               notification_interval=0.3)
    users = WeChatUsers(f"http://127.0.0.1:{settings.port}/wechat/callback", aes_key=aes_key or None)
    try:
        async with running_channel(settings, bot_settings, stack.db) as channel:
            yield channel, api, users
    finally:
        await users.close()
        await api.stop()


class WeChatChat:
    """One WeChat user: sends through the callback, reads what the fake API received."""

    def __init__(self, channel, api: FakeWeChatApi, users: WeChatUsers, openid: str) -> None:
        self.channel, self.api, self.users, self.openid = channel, api, users, openid
        self.seen = 0
        self.log: list[str] = []

    async def _answer(self, response) -> list[Sent]:
        assert (response.status_code, response.text) == (200, "success")
        await self.channel.drain()
        new = self.api.to(self.openid)[self.seen:]
        self.seen += len(new)
        self.log.extend("bot> " + s.text.replace("\n", "\n     ") for s in new)
        assert new, "no answer"
        return new

    async def say(self, text: str) -> list[str]:
        self.log.append(f"you> {text}")
        return [s.text for s in await self._answer(await self.users.text(self.openid, text))]

    async def tap(self, title: str) -> list[str]:
        """Tap the menu item `title` of the latest menu that offers it."""
        menu = next(s for s in reversed(self.api.to(self.openid)[:self.seen])
                    if any(i["content"].split(". ", 1)[1] == title for i in s.items))
        item = next(i for i in menu.items if i["content"].split(". ", 1)[1] == title)
        self.log.append(f"you> [{item['content']}]")
        response = await self.users.text(self.openid, item["content"], bizmsgmenuid=item["id"])
        return [s.text for s in await self._answer(response)]

    async def number(self, choice: int) -> list[str]:
        return await self.say(str(choice))


async def test_question_eligibility_booking_in_chinese_over_wechat(stack):
    def t(key, **v):
        return i18n.t(key, "zh", **v)

    async with wechat_channel(stack) as (channel, api, users):
        chat = WeChatChat(channel, api, users, "oWx-booking-1")
        chat.log.append("(follows the account)")
        [welcome] = await chat._answer(await users.event(chat.openid, "subscribe"))
        assert "SCORE" in welcome.text and welcome.msgtype == "msgmenu"
        assert (await chat.tap("中文")) == [t("language_set")]
        answer = await chat.say("SCORE是什么？")
        assert any("来源" in text for text in answer)

        replies = await chat.say(ONE_MESSAGE)
        assert len(replies) >= 2 and "180" in replies[0]
        outcome = "\n".join(await chat.tap(t("elig_button_yes")))
        assert "50–500" in outcome
        await chat.number(1)  # "1": the first choice offered (keep our details), typed as a number
        await chat.say("华兴服装厂")
        await chat.say("+86 769 1234 5678")

        await chat.tap(t("elig_button_book"))
        dates = "\n".join(await chat.tap("东莞"))
        assert "名额" in dates
        first_date = re.search(r"1\. (.+)", dates).group(1)
        await chat.tap(first_date)
        await chat.tap(t("booking_button_keep"))
        await chat.tap(t("booking_button_skip"))
        summary = "\n".join(await chat.tap(t("booking_button_keep")))
        assert "东莞生产力中心（南城）" in summary
        confirmed = "\n".join(await chat.tap(t("booking_button_confirm")))
        reference = re.search(r"SC-[0-9A-Z]{6}", confirmed).group(0)

    assert all(len(s.text.encode()) <= 2048 for s in api.sent if s.msgtype == "text")
    with stack.db.session() as session:
        user = session.scalars(select(User).where(User.sender_id == f"wx-{chat.openid}")).one()
        assert (user.channel, user.language) == ("wechat", "zh")
        enquiry = session.scalars(select(Enquiry).where(Enquiry.user_id == user.id)).one()
        assert (enquiry.outcome, enquiry.employees_low) == ("eligible", 180)
        booking = session.scalars(select(Booking).where(Booking.reference == reference)).one()
        assert (booking.status, booking.language, booking.contact) == ("confirmed", "zh", "+86 769 1234 5678")
    out = ROOT / "var" / "test-logs"
    out.mkdir(parents=True, exist_ok=True)
    (out / "wechat-conversation-zh.txt").write_text("\n".join(chat.log) + "\n", encoding="utf-8")


async def test_voice_message_with_recognition_is_answered_as_text(stack):
    async with wechat_channel(stack, aes_key="") as (channel, api, users):  # plain mode
        chat = WeChatChat(channel, api, users, "oWx-voice-1")
        answer = await chat._answer(await users.voice(chat.openid, "SCORE是什么？"))
        assert any("来源" in s.text for s in answer)
        # no recognition (turned off in the account): a polite answer, nothing sent to Rasa
        [polite] = await chat._answer(await users.voice(chat.openid, ""))
        assert polite.text == i18n.t("wechat_voice_unrecognised", "zh")
    with stack.db.session() as session:
        lines = session.scalars(select(TranscriptLine.text).join(User).where(
            User.sender_id == "wx-oWx-voice-1", TranscriptLine.direction == "in")).all()
        assert lines[0] == "🎤 SCORE是什么？"


async def test_a_message_delivered_again_is_answered_once(stack):
    async with wechat_channel(stack) as (channel, api, users):
        openid = "oWx-dup-1"
        msg_id = users.new_msg_id()
        # WeChat retries when it thinks the answer was late: the same MsgId, at the same time
        responses = await asyncio.gather(*(users.text(openid, "SCORE是什么？", msg_id=msg_id) for _ in range(3)))
        assert [r.text for r in responses] == ["success"] * 3
        await channel.drain()
        again = await users.text(openid, "SCORE是什么？", msg_id=msg_id)  # and later, once more
        assert again.text == "success"
        await channel.drain()
        answers = api.texts(openid)
        assert len(answers) >= 1 and sum("来源" in a for a in answers) == 1
    with stack.db.session() as session:
        inbound = session.scalar(select(func.count()).select_from(TranscriptLine).join(User).where(
            User.sender_id == f"wx-{openid}", TranscriptLine.direction == "in"))
        assert inbound == 1


async def test_staff_reply_reaches_the_wechat_user_on_wechat(stack):
    async with wechat_channel(stack) as (channel, api, users):
        chat = WeChatChat(channel, api, users, "oWx-staff-1")
        await chat._answer(await users.event(chat.openid, "subscribe"))
        await chat.say("/human")
        with stack.db.session() as session:
            user = session.scalars(select(User).where(User.sender_id == f"wx-{chat.openid}")).one()
            handoff = session.scalars(select(Handoff).where(Handoff.user_id == user.id)).one()
            user_id = user.id
        # what the console does when a staff member answers
        await asyncio.to_thread(handoffs.reply_as, stack.db, user_id, "anna", "您好，我是培训中心的李老师。")
        await api.wait_for(lambda: "您好，我是培训中心的李老师。" in api.texts(chat.openid), 15)
        # while staff have the conversation, the user's message goes to them, not to Rasa
        before = len(api.to(chat.openid))
        await users.text(chat.openid, "好的，谢谢")
        await channel.drain()
        assert len(api.to(chat.openid)) == before
        await asyncio.to_thread(handoffs.resolve_as, stack.db, handoff.id, "anna")
        await api.wait_for(lambda: len(api.to(chat.openid)) > before, 15)  # "the assistant is back"


async def test_staff_group_sees_a_wechat_handoff_and_its_reply_reaches_wechat(stack, gateway):
    """The Telegram gateway (fake Bot API, staff group) and the WeChat channel on one store."""
    from tests.e2e.conftest import STAFF_CHAT_ID, STAFF_USER_ID

    bot_api = gateway.api
    async with wechat_channel(stack) as (channel, api, users):
        chat = WeChatChat(channel, api, users, "oWx-group-1")
        await chat._answer(await users.event(chat.openid, "subscribe"))
        await chat.say("SCORE是什么？")
        assert any(i18n.t("handoff_started", "zh") in text for text in await chat.say("/human"))
        # the alert comes from the Telegram gateway's notifier, like any channel's
        await bot_api.wait_for(lambda: any("SCORE是什么" in t and "Handoff #" in t
                                           for t in bot_api.texts(STAFF_CHAT_ID)), 20)
        alert = bot_api.last_with_buttons(STAFF_CHAT_ID)
        # the user's messages while staff have the conversation are relayed to the group
        before = len(api.to(chat.openid))
        await users.text(chat.openid, "模块一的费用是多少？")
        await channel.drain()
        assert len(api.to(chat.openid)) == before  # not answered by the bot
        await bot_api.wait_for(lambda: any("模块一的费用是多少？" in t for t in bot_api.texts(STAFF_CHAT_ID)), 20)
        relayed = next(m for m in reversed([bot_api.sent_message(STAFF_CHAT_ID, i)
                                            for i in range(len(bot_api.texts(STAFF_CHAT_ID)))])
                       if "模块一的费用是多少？" in m["text"])
        # a staff member answers by replying to the relayed message
        bot_api.push(
            {
                "message": bot_api.message(
                    STAFF_USER_ID,
                    "您好，模块一的费用我稍后发给您。",
                    chat_id=STAFF_CHAT_ID,
                    chat_type="supergroup",
                    reply_to=relayed,
                    first_name="Wang",
                )
            }
        )
        await api.wait_for(lambda: "您好，模块一的费用我稍后发给您。" in api.texts(chat.openid), 20)
        bot_api.push({"message": bot_api.message(STAFF_USER_ID, "/resume", chat_id=STAFF_CHAT_ID,
                                                 chat_type="supergroup", reply_to=alert)})
        await api.wait_for(lambda: i18n.t("handoff_resumed", "zh") in api.texts(chat.openid), 20)
    # nothing for the WeChat user went to Telegram
    assert not any(str(c.params.get("chat_id")) == "None" for c in bot_api.calls if c.method == "sendMessage")


async def test_the_wechat_process_serves_the_callback(stack):
    """`python -m bot.wechat`, as the launcher starts it, from the environment alone."""
    import os
    import subprocess
    import sys

    api = FakeWeChatApi()
    await api.start()
    port = free_port()
    env = {**os.environ, "WECHAT_TOKEN": TOKEN, "WECHAT_APP_ID": APP_ID, "WECHAT_APP_SECRET": APP_SECRET,
           "WECHAT_AES_KEY": AES_KEY, "WECHAT_API_BASE_URL": api.base_url, "WECHAT_PORT": str(port),
           "RASA_URL": stack.rasa_url, "RASA_TOKEN": stack.settings.rasa_token,
           "DATABASE_URL": str(stack.db.engine.url.render_as_string(hide_password=False))}
    process = subprocess.Popen([sys.executable, "-m", "bot.wechat"], env=env, cwd=ROOT)
    users = WeChatUsers(f"http://127.0.0.1:{port}/wechat", aes_key=AES_KEY)
    try:
        for _ in range(200):
            with contextlib.suppress(Exception):
                signature = users.sign("1", "n")
                check = await users.client.get(users.url, params={"signature": signature, "timestamp": "1",
                                                                  "nonce": "n", "echostr": "ready"})
                if check.text == "ready":
                    break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the WeChat process did not come up")
        await users.voice("oWx-process-1", "SCORE是什么？")
        await api.wait_for(lambda: any("来源" in t for t in api.texts("oWx-process-1")), 30)
    finally:
        process.terminate()
        process.wait(10)
        await users.close()
        await api.stop()
