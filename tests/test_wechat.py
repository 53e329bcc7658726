"""The WeChat channel without a Rasa model: callback signatures, safe mode, duplicate delivery,
the access token, splitting and buttons; the fake WeChat API on loopback answers the sends."""
from __future__ import annotations

import asyncio
import contextlib

import uvicorn
from hypothesis import given, settings as hsettings, strategies as st

import i18n
from bot.conversation import ConversationService
from bot.rasa_client import Button, RasaClient, Reply
from bot.telegram.notifications import TELEGRAM_CHANNELS
from bot.wechat.api import WeChatApi
from bot.wechat.rendering import Menus, split_text, to_messages
from bot.wechat.server import WeChatChannel
from bot.wechat.settings import WeChatSettings
from store import notifications
from store.models import Notification, User
from tests.fakes.bot_api import free_port
from tests.fakes.wechat_api import (
    AES_KEY,
    APP_ID,
    APP_SECRET,
    TOKEN,
    FakeWeChatApi,
    WeChatUsers,
)


@contextlib.asynccontextmanager
async def channel_on(db, aes_key: str = "", buttons: str = "menu", rate: int = 5, rate_window: float = 3.0):
    """The channel's own server against the fake WeChat API; Rasa is not running (port closed),
    so only turns that need no Rasa are used here."""
    api = FakeWeChatApi()
    await api.start()
    settings = WeChatSettings(token=TOKEN, app_id=APP_ID, app_secret=APP_SECRET, aes_key=aes_key,
                              api_base_url=api.base_url, port=free_port(), path="wechat", buttons=buttons)
    rasa = RasaClient(f"http://127.0.0.1:{free_port()}", "t", 1.0)
    client = WeChatApi(api.base_url, APP_ID, APP_SECRET)
    channel = WeChatChannel(ConversationService(db, rasa, hold_window=0.5), client, settings, rate, rate_window)
    server = uvicorn.Server(uvicorn.Config(channel.app, host="127.0.0.1", port=settings.port,
                                           log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    users = WeChatUsers(f"http://127.0.0.1:{settings.port}/wechat", aes_key=aes_key or None)
    try:
        yield channel, api, users
    finally:
        await channel.drain()
        await users.close()
        server.should_exit = True
        await serving
        await client.close()
        await rasa.close()
        await api.stop()


async def test_url_verification_accepts_the_right_signature_only(sqlite_db):
    async with channel_on(sqlite_db) as (_channel, _api, users):
        good = users.sign("1700000000", "abc")
        ok = await users.client.get(users.url, params={"signature": good, "timestamp": "1700000000",
                                                       "nonce": "abc", "echostr": "echo-42"})
        assert (ok.status_code, ok.text) == (200, "echo-42")
        bad = await users.client.get(users.url, params={"signature": "0" * 40, "timestamp": "1700000000",
                                                        "nonce": "abc", "echostr": "echo-42"})
        assert bad.status_code == 403 and "echo-42" not in bad.text
        # a signature for another timestamp is refused too
        moved = await users.client.get(users.url, params={"signature": good, "timestamp": "1700000001",
                                                          "nonce": "abc", "echostr": "x"})
        assert moved.status_code == 403


async def test_plain_message_with_a_wrong_signature_is_refused(sqlite_db):
    async with channel_on(sqlite_db) as (channel, api, users):
        refused = await users.other("o-forged", "image", PicUrl="http://x/y.jpg", signature="f" * 40)
        assert refused.status_code == 403
        accepted = await users.other("o-real", "image", PicUrl="http://x/y.jpg")
        assert (accepted.status_code, accepted.text) == (200, "success")
        await channel.drain()
        assert api.texts("o-real") == [i18n.t("non_text", "zh")]  # a new WeChat user: Chinese
        assert api.texts("o-forged") == []


async def test_safe_mode_round_trip(sqlite_db):
    async with channel_on(sqlite_db, aes_key=AES_KEY) as (channel, api, users):
        answer = await users.other("o-safe", "location", Location_X="23.02", Location_Y="113.75", Label="东莞")
        assert (answer.status_code, answer.text) == (200, "success")
        await channel.drain()
        assert api.texts("o-safe") == [i18n.t("location_received", "zh")]
        # a tampered msg_signature is refused, and nothing is answered
        refused = await users.other("o-safe-2", "image", signature="0" * 40)
        assert refused.status_code == 403
        # an encrypted body under another key is refused
        other = WeChatUsers(users.url, aes_key="B" * 43)
        try:
            assert (await other.other("o-safe-3", "image")).status_code == 403
        finally:
            await other.close()
        await channel.drain()
        assert api.texts("o-safe-2") == [] and api.texts("o-safe-3") == []


async def test_encrypted_message_without_an_aes_key_is_refused(sqlite_db):
    async with channel_on(sqlite_db) as (_channel, _api, users):
        encrypting = WeChatUsers(users.url, aes_key=AES_KEY)
        try:
            assert (await encrypting.other("o-x", "image")).status_code == 403
        finally:
            await encrypting.close()


async def test_the_same_message_id_is_handled_once(sqlite_db):
    async with channel_on(sqlite_db) as (channel, api, users):
        msg_id = users.new_msg_id()
        first = await users.post("o-dup", {"MsgType": "image", "PicUrl": "x", "MsgId": msg_id})
        again = await users.post("o-dup", {"MsgType": "image", "PicUrl": "x", "MsgId": msg_id})
        assert first.text == again.text == "success"  # WeChat must stop retrying either way
        await channel.drain()
        assert api.texts("o-dup") == [i18n.t("non_text", "zh")]
        # events have no MsgId: sender + CreateTime + event identify a repeat
        fields = {"MsgType": "event", "Event": "subscribe", "CreateTime": 1_700_000_123}
        await users.post("o-dup-evt", fields)
        await users.post("o-dup-evt", fields)
        await channel.drain()
        assert len(api.texts("o-dup-evt")) == 1


async def test_subscribe_welcomes_in_chinese_and_unsubscribe_is_silent(sqlite_db):
    async with channel_on(sqlite_db) as (channel, api, users):
        await users.event("o-new", "subscribe")
        await channel.drain()
        [welcome] = api.to("o-new")
        assert welcome.msgtype == "msgmenu"
        assert welcome.body["msgmenu"]["head_content"] == i18n.t("welcome", "zh").strip()
        assert [i["content"] for i in welcome.items] == ["1. English", "2. 中文"]
        await users.event("o-new", "unsubscribe")
        await channel.drain()
        assert len(api.to("o-new")) == 1
        with sqlite_db.session() as session:
            user = session.query(User).filter_by(sender_id="wx-o-new").one()
            assert (user.channel, user.language) == ("wechat", "zh")


async def test_menu_tap_and_number_press_the_offered_button(sqlite_db):
    async with channel_on(sqlite_db) as (channel, api, users):
        await users.event("o-lang", "subscribe")
        await channel.drain()
        english = api.to("o-lang")[0].items[0]
        await users.text("o-lang", english["content"], bizmsgmenuid=english["id"])
        await channel.drain()
        assert api.texts("o-lang")[-1] == i18n.t("language_set", "en")
        # the same item tapped again: that menu was used
        await users.text("o-lang", english["content"], bizmsgmenuid=english["id"])
        await channel.drain()
        assert api.texts("o-lang")[-1] == i18n.t("button_expired", "en")
        # numbered choices on an account without menus: "2" presses 中文
        await users.text("o-lang", "/language")
        await channel.drain()
        await users.text("o-lang", "2")
        await channel.drain()
        assert api.texts("o-lang")[-1] == i18n.t("language_set", "zh")


async def test_access_token_is_cached_and_refreshed_when_expired(sqlite_db):
    api = FakeWeChatApi()
    await api.start()
    client = WeChatApi(api.base_url, APP_ID, APP_SECRET)
    try:
        for text in ("一", "二"):
            await client.send({"touser": "o-t", "msgtype": "text", "text": {"content": text}})
        assert api.token_requests == 1  # cached
        api.expire_tokens()  # WeChat says 42001 on the next send
        await client.send({"touser": "o-t", "msgtype": "text", "text": {"content": "三"}})
        assert api.refused == [42001] and api.token_requests == 2
        assert api.texts("o-t") == ["一", "二", "三"]
        # a token WeChat no longer knows (another server fetched a new one): 40001, refreshed
        api.tokens.clear()
        await client.send({"touser": "o-t", "msgtype": "text", "text": {"content": "四"}})
        assert api.refused == [42001, 40001] and api.texts("o-t")[-1] == "四"
        # UTF-8 on the wire, not \\u escapes
        assert "四".encode() in api.raw_bodies[-1]
    finally:
        await client.close()
        await api.stop()


async def test_access_token_refreshes_before_it_expires():
    api = FakeWeChatApi(expires_in=1)
    await api.start()
    client = WeChatApi(api.base_url, APP_ID, APP_SECRET)
    try:
        await client.send({"touser": "o", "msgtype": "text", "text": {"content": "a"}})
        await asyncio.sleep(1.1)
        await client.send({"touser": "o", "msgtype": "text", "text": {"content": "b"}})
        assert api.token_requests == 2 and api.refused == []  # fetched anew, never refused
        # concurrent sends share one refresh
        api.expire_tokens()
        client._expires_at = 0
        await asyncio.gather(*(client.send({"touser": "o", "msgtype": "text", "text": {"content": str(i)}})
                               for i in range(5)))
        assert api.token_requests == 3
    finally:
        await client.close()
        await api.stop()


def test_long_chinese_text_splits_under_2048_bytes():
    text = "培训" * 3000
    parts = split_text(text)
    assert all(len(p.encode()) <= 2048 for p in parts)
    assert "".join(parts) == text
    paragraphs = "\n\n".join(f"第{i}段：" + "内容" * 200 for i in range(10))
    parts = split_text(paragraphs)
    assert all(len(p.encode()) <= 2048 and p.startswith("第") for p in parts)


@given(st.text(max_size=6000))
@hsettings(max_examples=200, deadline=None)
def test_split_never_exceeds_the_byte_limit_or_loses_words(text):
    parts = split_text(text)
    assert all(0 < len(p.encode()) <= 2048 for p in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())


def test_buttons_become_a_menu_or_numbered_text():
    buttons = [Button("是", "/affirm"), Button("否", "/deny")]
    menus = Menus()
    [menu] = to_messages("o", [Reply("您的工厂有多少名员工？", buttons)], menus, "menu", "zh")
    assert menu["msgtype"] == "msgmenu" and menu["msgmenu"]["head_content"] == "您的工厂有多少名员工？"
    assert [i["content"] for i in menu["msgmenu"]["list"]] == ["1. 是", "2. 否"]
    assert menus.by_item("o", menu["msgmenu"]["list"][1]["id"]).payload == "/deny"
    [text] = to_messages("o", [Reply("继续吗？", buttons)], menus, "numbers", "zh")
    assert text["msgtype"] == "text" and "1. 是\n2. 否" in text["text"]["content"]
    assert menus.by_number("o", 3) is None
    assert menus.by_number("o", 1).payload == "/affirm"
    assert menus.by_number("o", 1) is None  # pressed already: "1" is text again
    # a long answer goes first as text, the menu follows with a short head
    long = "说明" * 200  # 1200 bytes: too long for a menu head
    messages = to_messages("o", [Reply(long, buttons)], menus, "menu", "zh")
    assert [m["msgtype"] for m in messages] == ["text", "msgmenu"]
    assert messages[1]["msgmenu"]["head_content"] == i18n.t("wechat_choose", "zh")


def test_each_gateway_claims_its_own_channels_notifications(any_db):
    """On SQLite and PostgreSQL (FOR UPDATE SKIP LOCKED with the channel subquery)."""
    with any_db.session() as session:
        tg = User(channel="telegram", external_id="1", sender_id="tg-1", chat_id=1)
        wx = User(channel="wechat", external_id="o1", sender_id="wx-o1")
        session.add_all([tg, wx])
        session.flush()
        for user, kind in ((tg, "staff_reply"), (wx, "staff_reply"), (wx, "handoff_opened"),
                           (wx, "handoff_user_message")):
            session.add(Notification(user_id=user.id, kind=kind, payload={"text": kind},
                                     dedupe_key=f"{user.sender_id}-{kind}"))
    wechat = notifications.claim_due(any_db, "wx-worker", channels=("wechat",), staff_alerts=False)
    assert [(n.kind, n.user_id) for n in wechat] == [("staff_reply", wx.id)]
    telegram = notifications.claim_due(any_db, "tg-worker", channels=TELEGRAM_CHANNELS)
    # the WeChat user's handoff alert goes to the staff group, from the Telegram gateway
    assert sorted((n.kind, n.user_id) for n in telegram) == [
        ("handoff_opened", wx.id), ("handoff_user_message", wx.id), ("staff_reply", tg.id)]


def test_the_launcher_runs_the_channel_only_when_configured():
    from stack import processes

    full = {"WECHAT_TOKEN": "t", "WECHAT_APP_ID": "wx1", "WECHAT_APP_SECRET": "s"}
    assert processes.wechat_configured(full)
    assert not processes.wechat_configured({**full, "WECHAT_APP_SECRET": " "})
    assert not processes.wechat_configured({})
    assert WeChatSettings(token="t", app_id="wx1", app_secret="").missing() == ["WECHAT_APP_SECRET"]


async def test_a_users_messages_are_answered_in_order_and_a_flood_is_slowed(sqlite_db):
    async with channel_on(sqlite_db, rate=2, rate_window=1.0) as (channel, api, users):
        started = asyncio.get_running_loop().time()
        for kind in ("image", "location", "image", "location"):
            await users.other("o-flood", kind)
        await channel.drain()
        took = asyncio.get_running_loop().time() - started
        non_text, location = i18n.t("non_text", "zh"), i18n.t("location_received", "zh")
        assert api.texts("o-flood") == [non_text, location, non_text, location]
        assert took >= 0.9  # the 3rd and 4th waited for the window


async def test_bad_callback_bodies_get_a_clear_refusal(sqlite_db):
    async with channel_on(sqlite_db) as (channel, api, users):
        timestamp, nonce = "1700000000", "n1"
        params = {"signature": users.sign(timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
        bomb = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
                b"<xml><FromUserName>&b;</FromUserName></xml>")
        for body in (b"garbage", b"<xml>text</xml>", b"", b"<xml><MsgType>text</MsgType></xml>", bomb):
            response = await users.client.post(users.url, params=params, content=body)
            assert response.status_code == 400, body
        too_big = await users.client.post(users.url, params=params, content=b"<xml>" + b"x" * 70_000 + b"</xml>")
        assert too_big.status_code == 413
        await channel.drain()
        assert api.sent == []
