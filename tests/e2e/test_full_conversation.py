"""One whole conversation as a factory manager has it: welcome → question → eligibility →
booking, in English and in Chinese, through Telegram's buttons. The English transcript, as the
fake Bot API recorded it, is written to var/test-logs/full-conversation-<lang>.txt."""
from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import select

import i18n
from stack.settings import ROOT
from store.models import Booking, ClassroomSession, Enquiry, User

ONE_MESSAGE = {
    "en": "We are a garment factory in Dongguan with about 180 workers, supplying European brands — are we eligible?",
    "zh": "我们是东莞的一家服装厂，有180名员工，给欧洲品牌供货，我们符合条件吗？",
}
QUESTION = {"en": "what is SCORE?", "zh": "SCORE是什么？"}
SOURCE = {"en": "Source", "zh": "来源"}
VENUE = {"en": "Dongguan productivity centre, Nancheng District", "zh": "东莞生产力中心（南城）"}


class Chat:
    """Drives one user through the fake Bot API and keeps a readable log."""

    def __init__(self, gateway, language: str) -> None:
        self.api, self.user, self.lang = gateway.api, gateway.new_user(), language
        self.code = "zh-hans" if language == "zh" else "en"
        self.seen = 0
        self.log: list[str] = []

    async def _replies(self, until, timeout: float = 30) -> list[str]:
        await self.api.wait_for(lambda: until(self.api.texts(self.user)[self.seen:]), timeout)
        # A turn may answer in several messages: wait until they stop coming.
        count = -1
        while count != len(self.api.texts(self.user)):
            count = len(self.api.texts(self.user))
            await asyncio.sleep(0.7)
        new = self.api.texts(self.user)[self.seen:]
        self.seen += len(new)
        for index, text in enumerate(new):
            message = self.api.sent_message(self.user, self.seen - len(new) + index)
            buttons = [b["text"] for row in (message.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]
            self.log.append("bot> " + text.replace("\n", "\n     ") + ("".join(f"\n     [{b}]" for b in buttons)))
        return new

    async def say(self, text: str, until) -> list[str]:
        self.log.append(f"you> {text}")
        self.api.push_text(self.user, text, language_code=self.code)
        return await self._replies(until)

    async def press(self, title: str, until) -> list[str]:
        message = next(
            m
            for m in reversed([self.api.sent_message(self.user, i) for i in range(self.seen)])
            if any(title in b["text"] for row in (m.get("reply_markup") or {}).get("inline_keyboard", []) for b in row)
        )
        self.log.append(f"you> [{title}]")
        self.api.press(self.user, message, title, self.code)
        return await self._replies(until)


def has(*parts: str):
    return lambda texts: any(all(p in t for p in parts) for t in texts)


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_welcome_question_eligibility_booking(gateway, lang):
    t = lambda key, **v: i18n.t(key, lang, **v)  # noqa: E731
    chat = Chat(gateway, lang)
    await chat.say("/start", has("SCORE"))
    await chat.press("中文" if lang == "zh" else "English", has(t("language_set")))
    await chat.say(QUESTION[lang], has(SOURCE[lang]))

    # One message fills size, sector, place and buyers; only the commitment is asked.
    replies = await chat.say(ONE_MESSAGE[lang], lambda texts: len(texts) >= 2)
    assert "180" in replies[0]
    await chat.press(t("elig_button_yes"), lambda texts: len(texts) >= 2)
    outcome = "\n".join(chat.log[-2:])
    assert "50–500" in outcome
    await chat.press(t("elig_button_yes"), lambda texts: len(texts) >= 1)  # keep our details
    await chat.say("华兴服装厂" if lang == "zh" else "Huaxing Garments", lambda texts: len(texts) >= 1)
    await chat.say("+86 769 1234 5678", lambda texts: len(texts) >= 1)

    # Book Module 1 from the outcome's button, then city, date, details, confirm.
    await chat.press(t("elig_button_book"), lambda texts: len(texts) >= 1)
    await chat.press("东莞" if lang == "zh" else "Dongguan", lambda texts: len(texts) >= 1)
    dates = chat.log[-1]
    seat_word = "名额" if lang == "zh" else "seats left"
    assert seat_word in dates
    first_date = re.search(r"\[(.+?)\]", dates).group(1)
    await chat.press(first_date, lambda texts: len(texts) >= 1)
    await chat.press(t("booking_button_keep"), lambda texts: len(texts) >= 1)  # factory name from the enquiry
    await chat.press(t("booking_button_skip"), lambda texts: len(texts) >= 1)  # attendees later
    await chat.press(t("booking_button_keep"), lambda texts: len(texts) >= 1)  # contact from the enquiry
    # the summary names the venue in the user's language (data/schedule/sessions.csv venue_zh)
    summary = chat.log[-1]
    assert VENUE[lang] in summary and (lang == "en" or "productivity centre" not in summary)
    await chat.press(t("booking_button_confirm"), has("SC-"))
    reference = re.search(r"SC-[0-9A-Z]{6}", chat.log[-1]).group(0)

    with gateway.db.session() as session:
        user = session.scalars(select(User).where(User.sender_id == f"tg-{chat.user}")).one()
        enquiry = session.scalars(select(Enquiry).where(Enquiry.user_id == user.id)).one()
        assert (enquiry.outcome, enquiry.employees_low, enquiry.city.lower()) == ("eligible", 180, "dongguan")
        assert enquiry.consent and enquiry.contact == "+86 769 1234 5678"
        booking = session.scalars(select(Booking).where(Booking.reference == reference)).one()
        assert (booking.status, booking.kind, booking.language) == ("confirmed", "classroom", lang)
        assert booking.enquiry_id == enquiry.id and booking.contact == enquiry.contact
        classroom = session.get(ClassroomSession, booking.session_id)
        assert classroom.module == 1 and classroom.city == "Dongguan" and classroom.seats_taken >= 1

    out = ROOT / "var" / "test-logs"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"full-conversation-{lang}.txt").write_text("\n".join(chat.log) + "\n", encoding="utf-8")
