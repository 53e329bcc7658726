"""Gateway parts that need no Rasa model: splitting, payloads, language, faults, start-up."""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import socket
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings, strategies as st

import i18n
from bot.conversation import ConversationService, Incoming
from bot.rasa_client import RasaClient
from bot.ratelimit import ChatRateLimit
from bot.telegram.processor import PerChatUpdateProcessor
from bot.telegram.rendering import CALLBACK_LIMIT, CallbackPayloads, split_text
from stack.processes import StackError, check_ports
from stack.settings import StackSettings
from tests.fakes.bot_api import FakeBotApi, free_port


def test_split_keeps_paragraphs_and_limit():
    paragraphs = [f"Paragraph {i}: " + "word " * 150 for i in range(20)]
    text = "\n\n".join(paragraphs)
    assert len(text) > 10_000
    chunks = split_text(text)
    assert all(len(c) <= 4096 for c in chunks)
    assert len(chunks) >= 3
    # Every chunk starts at a paragraph boundary; nothing is lost.
    assert all(c.startswith("Paragraph") for c in chunks)
    assert "".join(chunks).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(" ", "")


def test_split_hard_cuts_text_without_spaces():
    text = "培" * 10_000
    chunks = split_text(text)
    assert [len(c) for c in chunks] == [4096, 4096, 1808]


@given(st.text(max_size=12_000))
@settings(max_examples=200, deadline=None)
def test_split_never_exceeds_limit_or_loses_words(text):
    chunks = split_text(text)
    assert all(0 < len(c) <= 4096 for c in chunks)
    assert "".join(chunks).split() == text.split() or "".join("".join(chunks).split()) == "".join(text.split())


def test_long_payloads_round_trip_through_short_callback_data():
    payloads = CallbackPayloads()
    short = '/faq_modules'
    long = '/choose_session{"session_id":"12345","note":"' + "x" * 80 + '"}'
    assert payloads.encode(short) == short
    encoded = payloads.encode(long)
    assert len(encoded.encode()) <= CALLBACK_LIMIT
    assert payloads.decode(encoded) == long
    assert CallbackPayloads().decode(encoded) is None  # unknown after a restart: "expired"


@pytest.mark.parametrize(
    "text,current,expected",
    [
        ("ok", "zh", "zh"), ("5", "zh", "zh"), ("SCORE", "zh", "zh"), ("👍", "zh", "zh"),
        ("what modules are there", "zh", "en"), ("SCORE培训有哪些模块", "en", "zh"),
        ("我们是东莞的一家服装厂，有150名员工", "en", "zh"), ("Module 1", "zh", "zh"),
        ("how long does one module take?", "zh", "en"), ("", "zh", "zh"),
    ],
)
def test_language_detection(text, current, expected):
    assert i18n.detect(text, current) == expected


def test_detection_is_deterministic():
    text = "Can the training be held in our plant in Foshan next month"
    assert {i18n.detect(text, "zh") for _ in range(20)} == {"en"}


def test_langdetect_tells_english_from_chinese_with_three_profiles():
    assert i18n._langdetect("we are a garment factory with two hundred workers") == "en"
    assert i18n._langdetect("我们是一家服装厂，有两百名工人") in ("zh-cn", "zh-tw")
    # another language is "not Chinese", which is all detect() needs to know
    assert i18n._langdetect("nous sommes une usine de vêtements") == "en"
    assert i18n._langdetect("12345 !!!") is None  # nothing to go on


def test_rate_limit_slows_one_chat_only():
    limit = ChatRateLimit(rate=5, window=1.0)
    delays = [limit.delay(1) for _ in range(10)]
    assert delays[:5] == [0.0] * 5 and all(d > 0 for d in delays[5:])
    assert limit.delay(2) == 0.0  # another chat is not affected


def test_rate_limit_forgets_chats_that_went_quiet():
    limit = ChatRateLimit(rate=5, window=0.05)
    for chat in range(100):
        limit.delay(chat)
    assert len(limit) == 100
    time.sleep(0.06)
    limit.delay("new")  # a quiet window later: only the chat that just wrote is kept
    assert len(limit) == 1


async def test_update_processor_keeps_a_chat_lock_only_while_it_is_used():
    from telegram import Chat, Message, Update

    processor = PerChatUpdateProcessor(max_concurrent_updates=8, rate=100, window=1.0)
    order: list[int] = []

    async def handle(number: int) -> None:
        await asyncio.sleep(0.01 * (3 - number))  # later ones would finish first if not in order
        order.append(number)

    def update(number: int) -> Update:
        chat = Chat(id=42, type="private")
        return Update(number, message=Message(number, dt.datetime.now(dt.UTC), chat, text="hi"))

    await asyncio.gather(*(processor.do_process_update(update(n), handle(n)) for n in range(3)))
    assert order == [0, 1, 2]  # one chat's updates one after another, in arrival order
    assert len(processor._locks) == 0  # one lock per chat ever seen grew without end


@pytest.mark.parametrize("rasa_behaviour", ["down", "slow"])
async def test_rasa_down_or_slow_tells_the_user_within_five_seconds(sqlite_db, rasa_behaviour):
    server = None
    if rasa_behaviour == "down":
        url = f"http://127.0.0.1:{free_port()}"
    else:
        async def never_answers(reader, writer):
            await asyncio.sleep(30)
        server = await asyncio.start_server(never_answers, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    rasa = RasaClient(url, timeout=4.5)
    # A short hold window: the message is kept that long, then the user is asked to send it again.
    service = ConversationService(sqlite_db, rasa, hold_window=5.5)
    told: list[tuple[float, str]] = []

    async def notify(replies):
        told.extend((time.monotonic(), r.text) for r in replies)

    started = time.monotonic()
    result = await service.handle(Incoming(channel="telegram", external_id="5", text="你好，有哪些模块",
                                           chat_id=5, notify=notify))
    assert [text for _, text in told] == [i18n.t("rasa_waiting", "zh")]
    assert told[0][0] - started < 5.0
    assert [r.text for r in result.replies] == [i18n.t("rasa_send_again", "zh")]
    await rasa.close()
    if server:
        server.close()


async def test_rasa_client_tells_a_message_rasa_never_took_from_one_it_may_still_answer():
    from bot.rasa_client import RasaUnavailable, RasaUnreachable

    async def hang_up(reader, writer):  # the server dies mid-request (kill -9)
        await reader.read(100)
        writer.transport.abort()

    async def never_answers(reader, writer):
        await asyncio.sleep(30)

    dropping = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    slow = await asyncio.start_server(never_answers, "127.0.0.1", 0)
    cases = [(f"http://127.0.0.1:{free_port()}", RasaUnreachable),
             (f"http://127.0.0.1:{dropping.sockets[0].getsockname()[1]}", RasaUnreachable)]
    try:
        for url, error in cases:
            client = RasaClient(url, timeout=1.0)
            with pytest.raises(error):
                await client.send("tg-1", "hi")
            await client.close()
        client = RasaClient(f"http://127.0.0.1:{slow.sockets[0].getsockname()[1]}", timeout=1.0)
        with pytest.raises(RasaUnavailable) as raised:
            await client.send("tg-1", "hi", timeout=0.5)
        assert not isinstance(raised.value, RasaUnreachable)  # it may still answer: not resent
        await client.close()
    finally:
        dropping.close()
        slow.close()


def test_second_start_reports_busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        settings = StackSettings(rasa_port=port, action_port=free_port())
        with pytest.raises(StackError, match=f"port {port} .* busy"):
            check_ports(settings)


async def test_wrong_token_is_one_clear_error(tmp_path):
    api = FakeBotApi()
    await api.start()
    api.reject_token = True
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": "123:wrong", "TELEGRAM_BASE_URL": api.base_url,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "RASA_URL": f"http://127.0.0.1:{free_port()}"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        await api.stop()
    assert process.returncode != 0
    err = stderr.decode()
    assert "TELEGRAM_BOT_TOKEN" in err
    assert err.count("Traceback") == 0, err[-2000:]


# --- at most a few messages per turn, whatever Rasa sends (issue 13) --------------------------

def test_bounded_drops_repeats_and_cuts_to_the_limit(caplog):
    from bot.conversation import MAX_REPLIES, bounded
    from bot.rasa_client import Button, Reply

    sorry = Reply("Sorry, I didn't understand that.", [Button("Modules", "/faq_modules")])
    assert bounded([sorry] * 10, "tg-1") == [sorry]
    assert "10 messages (1 distinct)" in caplog.text
    caplog.clear()
    many = [Reply(f"message {i}") for i in range(7)]
    assert bounded(many, "tg-2") == many[:MAX_REPLIES]
    assert "tg-2" in caplog.text
    caplog.clear()
    healthy = [Reply("answer"), Reply("next question?")]
    assert bounded(healthy, "tg-3") == healthy and not caplog.text


class ScriptedRasa:
    """Stands in for the Rasa client: answers every message with the same scripted answer."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.sent: list[str] = []

    async def send(self, sender, text, metadata=None, timeout=None):
        from bot.rasa_client import RasaAnswer

        self.sent.append(text)
        return RasaAnswer(list(self.answer.replies), self.answer.intent, self.answer.confidence, self.answer.reset)


async def test_a_reset_turn_gets_one_apology_and_a_flood_is_cut(sqlite_db, caplog):
    from bot.rasa_client import RasaAnswer, Reply

    looping = RasaAnswer([Reply("Sorry?")] * 10, "inform_factory", 0.9, reset=True)
    service = ConversationService(sqlite_db, ScriptedRasa(looping))
    result = await service.handle(Incoming(channel="local", external_id="u1", text="我们有120人"))
    assert [r.text for r in result.replies] == [i18n.t("dialogue_reset", "zh")]
    assert "circuit breaker" in caplog.text

    flood = RasaAnswer([Reply(f"part {i}") for i in range(9)], "faq_modules", 0.9)
    service = ConversationService(sqlite_db, ScriptedRasa(flood))
    result = await service.handle(Incoming(channel="local", external_id="u2", text="modules?"))
    assert [r.text for r in result.replies] == ["part 0", "part 1", "part 2", "part 3"]


async def test_commands_and_presses_are_the_services_on_every_channel(sqlite_db):
    from bot.rasa_client import RasaAnswer, Reply

    rasa = ScriptedRasa(RasaAnswer([Reply("from Rasa")], "greet", 1.0))
    service = ConversationService(sqlite_db, rasa)
    incoming = Incoming(channel="local", external_id="u3", text="")
    start = await service.command(incoming, "start")
    assert rasa.sent == ["/restart"]  # a clean dialogue in Rasa
    assert [b.payload for b in start.replies[0].buttons] == ["lang:en", "lang:zh"]
    chosen = await service.press(incoming, "lang:zh", "中文")
    assert chosen.replies[0].text == i18n.t("language_set", "zh")
    assert (await service.command(incoming, "cancel")).replies[0].text == "from Rasa"
    assert rasa.sent[-1] == "/stop_form"
    unknown = await service.command(incoming, "frobnicate")
    assert unknown.replies[0].text == i18n.t("unknown_command", "zh")
    ask = await service.command(incoming, "language")
    assert [b.payload for b in ask.replies[0].buttons] == ["lang:en", "lang:zh"]
    forget = await service.command(incoming, "forget")
    assert [b.payload for b in forget.replies[0].buttons] == ["forget:yes", "forget:no"]
    kept = await service.press(incoming, "forget:no", "No")
    assert kept.replies[0].text == i18n.t("forget_kept", "zh")
    assert (await service.press(incoming, "/faq_modules", "Modules")).replies[0].text == "from Rasa"
    assert rasa.sent[-1] == "/faq_modules"


async def test_a_chosen_language_holds_and_detection_decides_only_until_then(sqlite_db):
    from bot.rasa_client import RasaAnswer, Reply

    service = ConversationService(sqlite_db, ScriptedRasa(RasaAnswer([Reply("ok")], "greet", 1.0)))
    incoming = Incoming(channel="local", external_id="u4", text="")
    english = dataclasses.replace(incoming, text="what modules do you have for garment factories")
    chinese = dataclasses.replace(incoming, text="你们有哪些培训模块")
    assert (await service.handle(chinese)).language == "zh"  # nothing chosen: detection decides
    assert (await service.handle(english)).language == "en"
    await service.press(incoming, "lang:zh", "中文")
    assert (await service.handle(english)).language == "zh"  # chosen: holds
    await service.command(incoming, "language", ["en"])
    assert (await service.handle(chinese)).language == "en"
