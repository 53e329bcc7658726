"""Issue 13's report, replayed through the Telegram gateway against the real servers: a fact
stated out of the blue gets one helpful answer, and the conversation goes on normally."""
from __future__ import annotations

import asyncio


async def settle(gateway, user: int, count: int) -> list[str]:
    """Wait for `count` messages, then a moment more: nothing else may follow."""
    await gateway.api.wait_sent(user, count, timeout=30)
    await asyncio.sleep(1.5)
    return gateway.api.texts(user)


async def test_a_headcount_after_an_faq_answer_gets_one_answer_and_the_offer(gateway):
    user = gateway.new_user()
    gateway.api.push_text(user, "/start")
    await settle(gateway, user, 1)
    gateway.api.push_text(user, "how do we sign up for SCORE?")
    await settle(gateway, user, 2)
    gateway.api.push_text(user, "we have about 120 people")
    texts = await settle(gateway, user, 3)
    assert len(texts) == 3, texts
    assert "120" in texts[2] and "SCORE" in texts[2]
    offer = gateway.api.sent_message(user, 2)
    gateway.api.press(user, offer, "check eligibility")
    texts = await settle(gateway, user, 4)
    # The check starts with the headcount known: it asks the next thing, not the headcount.
    assert "120" in "\n".join(texts[3:]) and "how many" not in texts[-1].lower()
    gateway.api.push_text(user, "/cancel")
    count = len(await settle(gateway, user, len(texts) + 1))
    gateway.api.push_text(user, "what is SCORE?")
    texts = await settle(gateway, user, count + 1)
    assert len(texts) == count + 1 and "Sustaining Competitive and Responsible Enterprises" in texts[-1]


async def test_a_city_alone_after_choosing_english_then_questions_are_answered(gateway):
    user = gateway.new_user()
    gateway.api.push_text(user, "/start")
    await settle(gateway, user, 1)
    gateway.api.press(user, gateway.api.sent_message(user, 0), "English")
    await settle(gateway, user, 2)
    gateway.api.push_text(user, "东莞")
    texts = await settle(gateway, user, 3)
    assert len(texts) == 3, texts
    for question in ["what are the modules", "/start", "what is SCORE?"]:
        before = len(texts)
        gateway.api.push_text(user, question)
        texts = await settle(gateway, user, before + 1)
        assert len(texts) == before + 1, texts[before:]
    assert "Sustaining Competitive and Responsible Enterprises" in texts[-1]
