"""The Telegram front end against a fake Bot API on loopback, with the real Rasa behind it."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

import i18n
from bot.telegram.app import COMMANDS
from store import notifications
from store.models import TranscriptLine, User
from tests.fakes.bot_api import BOT_USERNAME


def user_row(db, telegram_id: int) -> User | None:
    with db.session() as session:
        return session.scalars(select(User).where(User.sender_id == f"tg-{telegram_id}")).one_or_none()


async def test_commands_are_registered_in_both_languages(gateway):
    calls = gateway.api.sent(method="setMyCommands")
    by_language = {c.get("language_code"): [cmd["command"] for cmd in c["commands"]] for c in calls}
    assert set(by_language) == {None, "zh"}
    for commands in by_language.values():
        assert commands == [name for name, _ in COMMANDS["en"]]
    assert any("转人工" == cmd["description"] for c in calls for cmd in c["commands"])


@pytest.mark.parametrize("command,key", [("/help", "help"), ("/language", "choose_language"),
                                         ("/nonsense", "unknown_command")])
async def test_simple_commands(gateway, command, key):
    user = gateway.new_user()
    gateway.api.push_text(user, command)
    texts = await gateway.api.wait_sent(user, 1)
    assert texts[0] == i18n.t(key, "en").strip()


async def test_language_command_with_argument_and_chinese_help(gateway):
    user = gateway.new_user()
    gateway.api.push_text(user, "/language zh")
    await gateway.api.wait_sent(user, 1)
    gateway.api.push_text(user, "/help")
    texts = await gateway.api.wait_sent(user, 2)
    assert texts == [i18n.t("language_set", "zh"), i18n.t("help", "zh").strip()]


async def test_english_user_writing_chinese_gets_chinese(gateway):
    user = gateway.new_user()
    gateway.api.push_text(user, "what is the training format?")
    await gateway.api.wait_for(lambda: any("Source" in t for t in gateway.api.texts(user)), 30)
    count = len(gateway.api.texts(user))
    gateway.api.push_text(user, "一个模块需要多长时间？")
    await gateway.api.wait_for(lambda: any("来源" in t for t in gateway.api.texts(user)[count:]), 30)
    assert user_row(gateway.db, user).language == "zh"


@pytest.mark.parametrize("content", [
    {"photo": [{"file_id": "p", "file_unique_id": "p", "width": 10, "height": 10}]},
    {"sticker": {"file_id": "s", "file_unique_id": "s", "width": 10, "height": 10, "is_animated": False,
                 "is_video": False, "type": "regular"}},
    {"voice": {"file_id": "v", "file_unique_id": "v", "duration": 2}},
    {"video": {"file_id": "vi", "file_unique_id": "vi", "width": 1, "height": 1, "duration": 1}},
    {"document": {"file_id": "d", "file_unique_id": "d", "file_name": "price.pdf"}},
])
async def test_non_text_messages_get_a_polite_reply(gateway, content):
    user = gateway.new_user()
    gateway.api.push({"message": gateway.api.message(user, None, language_code="zh-hans", **content)})
    texts = await gateway.api.wait_sent(user, 1)
    assert texts == [i18n.t("non_text", "zh")]


async def test_location_contact_and_edited_message(gateway):
    user = gateway.new_user()
    gateway.api.push({"message": gateway.api.message(user, None, location={"latitude": 23.0, "longitude": 113.7})})
    await gateway.api.wait_sent(user, 1)
    gateway.api.push({"message": gateway.api.message(
        user, None, contact={"phone_number": "+8613800000000", "first_name": "Li", "user_id": user})})
    await gateway.api.wait_sent(user, 2)
    edited = gateway.api.message(user, "what modules are there")
    edited["edit_date"] = edited["date"] + 5
    gateway.api.push({"edited_message": edited})
    texts = await gateway.api.wait_sent(user, 3)
    assert texts[0] == i18n.t("location_received", "en")
    assert "+8613800000000" in texts[1]
    assert texts[2] == i18n.t("edited_message", "en")
    assert user_row(gateway.db, user).contact_phone == "+8613800000000"


async def test_group_chat_answers_only_mentions_and_commands(gateway):
    user = gateway.new_user()
    group = -gateway.new_user()
    gateway.api.push_text(user, "what modules are there", chat_id=group, chat_type="supergroup")
    gateway.api.push({"message": gateway.api.message(
        user, None, chat_id=group, chat_type="supergroup",
        photo=[{"file_id": "p", "file_unique_id": "p", "width": 1, "height": 1}])})
    gateway.api.push_text(user, f"@{BOT_USERNAME} what modules are there", chat_id=group, chat_type="supergroup")
    await gateway.api.wait_for(lambda: any("Workplace Cooperation" in t for t in gateway.api.texts(group)), 30)
    gateway.api.push_text(user, "/help", chat_id=group, chat_type="supergroup")
    await gateway.api.wait_for(lambda: any("/forget" in t for t in gateway.api.texts(group)), 10)
    texts = gateway.api.texts(group)
    # One answer to the mention (FAQ answer, maybe in two messages) and one to /help; no more.
    assert sum("Workplace Cooperation" in t for t in texts) == 1
    assert not any(t == i18n.t("non_text", "en") for t in texts)


async def test_ten_thousand_character_reply_is_split(gateway):
    user = gateway.new_user()
    gateway.api.push_text(user, "/help")
    await gateway.api.wait_sent(user, 1)
    long_text = "\n\n".join(f"Part {i}. " + "lorem ipsum " * 80 for i in range(11))
    assert len(long_text) >= 10_000
    row = user_row(gateway.db, user)
    with gateway.db.session() as session:
        notifications.add(session, user_id=row.id, kind="staff_reply", dedupe_key=f"long-{user}",
                          payload={"text": long_text})
    await gateway.api.wait_for(lambda: len(gateway.api.texts(user)) >= 4, 10)
    chunks = gateway.api.texts(user)[1:]
    assert all(len(c) <= 4096 for c in chunks)
    assert all(c.startswith("Part") for c in chunks)
    assert " ".join(chunks).split() == long_text.split()


async def test_flood_from_one_chat_does_not_starve_another(gateway):
    flooder, other = gateway.new_user(), gateway.new_user()
    for i in range(50):
        gateway.api.push_text(flooder, f"hello {i}")
    gateway.api.push_text(other, "/help")
    await gateway.api.wait_sent(other, 1, timeout=10)
    answered_before = len(gateway.api.texts(flooder))
    assert answered_before < 50  # the flooder is being slowed down...
    await gateway.api.wait_for(lambda: len(gateway.api.texts(flooder)) >= 50, 120)
    with gateway.db.session() as session:  # ...and its messages were handled in order
        row = session.scalars(select(User).where(User.sender_id == f"tg-{flooder}")).one()
        texts = session.scalars(select(TranscriptLine.text).where(
            TranscriptLine.user_id == row.id, TranscriptLine.direction == "in").order_by(TranscriptLine.id)).all()
    assert texts == [f"hello {i}" for i in range(50)]
    processor = gateway.application.update_processor
    assert processor.slowed[flooder] > 0 and processor.slowed[other] == 0


async def test_forget_deletes_rows_after_confirmation(gateway):
    user = gateway.new_user()
    gateway.api.push_text(user, "what modules are there")
    await gateway.api.wait_for(lambda: any("Source" in t for t in gateway.api.texts(user)), 30)
    gateway.api.push_text(user, "/forget")
    await gateway.api.wait_for(lambda: any(i18n.t("forget_confirm", "en") == t for t in gateway.api.texts(user)))
    confirm = gateway.api.last_with_buttons(user)
    gateway.api.press(user, confirm, i18n.t("forget_yes", "en"))
    await gateway.api.wait_for(lambda: any("Deleted" in t for t in gateway.api.texts(user)))
    assert user_row(gateway.db, user) is None
    with gateway.db.session() as session:
        assert session.scalar(select(func.count()).select_from(TranscriptLine).join(User)
                              .where(User.sender_id == f"tg-{user}")) == 0


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.one_of(
    st.text(max_size=50),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), min_size=3000, max_size=4096),
    st.sampled_from(["", " ", "\x00\x01\x02", "<script>alert(1)</script>", "'; DROP TABLE users; --",
                     "🙂🙂🙂", "SCORE培训 how much 多少钱?", "/start@other_bot", "\u202e\u200b"]),
))
async def test_random_text_never_escapes_as_an_exception(gateway, text):
    user = gateway.new_user()
    if text:
        gateway.api.push_text(user, text)
    else:  # Telegram never sends empty text; a message without any content is the nearest
        gateway.api.push({"message": gateway.api.message(user, None)})
    await gateway.api.wait_for(lambda: len(gateway.api.texts(user)) >= 1, 30)
    assert gateway.application.bot_data.get("errors", 0) == 0
    assert not any("Traceback" in t for t in gateway.api.texts(user))


async def test_bookings_and_cancel_commands_reach_rasa(gateway):
    user = gateway.new_user()
    gateway.api.push_text(user, "/bookings")
    await gateway.api.wait_for(lambda: any(i18n.t("booking_none", "en") in t for t in gateway.api.texts(user)), 30)
    gateway.api.push_text(user, "/cancel")
    await gateway.api.wait_for(lambda: any("nothing in progress to cancel" in t for t in gateway.api.texts(user)), 30)
    # /cancel inside a form leaves it.
    gateway.api.push_text(user, "are we eligible for SCORE?")
    await gateway.api.wait_for(lambda: len(gateway.api.texts(user)) >= 3, 30)
    gateway.api.push_text(user, "/cancel")
    await gateway.api.wait_for(lambda: any(i18n.t("elig_stopped", "en").split(".")[0] in t
                                           for t in gateway.api.texts(user)), 30)
