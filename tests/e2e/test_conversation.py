"""Through the gateway's own code to a real Rasa server and action server, and into the store."""
from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from store.models import TranscriptLine, User

SETTLE = 2.0  # seconds of quiet (no Bot API call, nothing queued or running) that end a turn
MODULES = ["Workplace Cooperation", "Quality Management", "Clean Production",
           "Human Resource Management", "Occupational Safety and Health"]


async def test_modules_question_lists_all_five_and_is_transcribed(gateway):
    user = gateway.new_user()
    gateway.api.push_text(user, "what modules are there")
    await gateway.api.wait_for(lambda: any("Source" in t for t in gateway.api.texts(user)), 30)
    answer = "\n".join(gateway.api.texts(user))
    for module in MODULES:
        assert module in answer
    assert any(c.method == "sendChatAction" for c in gateway.api.calls)

    with gateway.db.session() as session:
        row = session.scalars(select(User).where(User.sender_id == f"tg-{user}")).one()
        lines = session.scalars(select(TranscriptLine).where(TranscriptLine.user_id == row.id)
                                .order_by(TranscriptLine.id)).all()
        assert [(line.direction, line.language) for line in lines][:2] == [("in", "en"), ("out", "en")]
        assert {line.direction for line in lines[1:]} == {"out"}
        assert lines[0].text == "what modules are there"
        assert "Workplace Cooperation" in " ".join(line.text for line in lines[1:])
        # what Rasa understood, for the console's NLU review: came back with the answer
        assert lines[0].intent == "faq_modules" and 0 < lines[0].confidence <= 1
        assert all(line.intent is None for line in lines[1:])


async def test_chinese_question_gets_chinese_answer(gateway):
    user = gateway.new_user()
    gateway.api.push_text(user, "SCORE培训有哪些模块？", language_code="zh-hans")
    await gateway.api.wait_for(lambda: any("来源" in t for t in gateway.api.texts(user)), 30)
    assert "工作场所合作" in "\n".join(gateway.api.texts(user))


async def test_a_chosen_language_holds_until_the_user_chooses_again(gateway):
    user = gateway.new_user()
    gateway.api.push_text(user, "/start")
    await gateway.api.wait_sent(user, 1)
    welcome = gateway.api.sent_message(user, 0)
    assert "SCORE" in welcome["text"]
    gateway.api.press(user, welcome, "中文")
    await gateway.api.wait_sent(user, 2)
    assert gateway.api.sent(method="answerCallbackQuery")
    assert gateway.api.sent(method="editMessageReplyMarkup")  # old keyboard removed
    gateway.api.push_text(user, "what modules are there")  # English text, but 中文 was chosen...
    texts = await gateway.api.wait_sent(user, 3, timeout=30)
    # ...and an explicit choice holds until the user chooses again.
    assert "工作场所合作" in texts[2]
    gateway.api.push_text(user, "/language en")
    await gateway.api.wait_sent(user, 4, timeout=30)
    gateway.api.push_text(user, "SCORE有哪些培训模块？")
    texts = await gateway.api.wait_sent(user, 5, timeout=30)
    assert "Workplace Cooperation" in texts[4]


async def settled(gateway, update_id: int, quiet: float = SETTLE) -> None:
    """The update was fetched and handled, and nothing was sent for `quiet` seconds after."""
    application = gateway.application
    await gateway.api.wait_for(lambda: any(
        c.method == "getUpdates" and int(c.params.get("offset") or 0) > update_id for c in gateway.api.calls), 30)
    deadline = time.monotonic() + 60
    count, since = -1, time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, "the gateway never went quiet"
        now = sum(c.method != "getUpdates" for c in gateway.api.calls)  # it polls all the time
        busy = not application.update_queue.empty() or application.update_processor.current_concurrent_updates
        if now != count or busy:
            count, since = now, time.monotonic()
        await asyncio.sleep(0.05)


async def test_duplicate_delivery_is_answered_once(gateway):
    user = gateway.new_user()
    update_id = gateway.api.push_text(user, "what is the training format")
    await gateway.api.wait_for(lambda: any("Source" in t for t in gateway.api.texts(user)), 30)
    gateway.api.repeat(update_id)
    thanks = gateway.api.push_text(user, "thanks")
    # Not "two messages arrived": a second answer may come after the answer to "thanks".
    await settled(gateway, thanks)
    texts = gateway.api.texts(user)
    assert sum("Source" in t for t in texts) == 1, texts
    with gateway.db.session() as session:
        row = session.scalars(select(User).where(User.sender_id == f"tg-{user}")).one()
        inbound = session.scalars(select(TranscriptLine.text).where(
            TranscriptLine.user_id == row.id, TranscriptLine.direction == "in").order_by(TranscriptLine.id)).all()
    assert inbound == ["what is the training format", "thanks"]
