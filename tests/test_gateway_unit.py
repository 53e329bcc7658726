"""Gateway parts that need no Rasa model: splitting, payloads, language, faults, start-up."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings, strategies as st

import i18n
from bot.conversation import ConversationService, Incoming
from bot.processor import ChatRateLimit
from bot.rasa_client import RasaClient
from bot.rendering import CALLBACK_LIMIT, CallbackPayloads, split_text
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


@pytest.mark.parametrize("rasa_behaviour", ["down", "slow"])
async def test_rasa_down_or_slow_gives_unavailable_within_five_seconds(sqlite_db, rasa_behaviour):
    server = None
    if rasa_behaviour == "down":
        url = f"http://127.0.0.1:{free_port()}"
    else:
        async def never_answers(reader, writer):
            await asyncio.sleep(30)
        server = await asyncio.start_server(never_answers, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    rasa = RasaClient(url, timeout=4.5)
    service = ConversationService(sqlite_db, rasa)
    started = time.monotonic()
    result = await service.handle(Incoming(channel="telegram", external_id="5", text="你好，有哪些模块", chat_id=5))
    assert time.monotonic() - started < 5.0
    assert [r.text for r in result.replies] == [i18n.t("unavailable", "zh")]
    await rasa.close()
    if server:
        server.close()


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
