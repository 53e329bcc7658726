"""Held-out messages scored at the answer level (bench/heldout/README.md): each message goes,
as a new user in its file's language, through the gateway's ConversationService to a real Rasa
server and action server (bench/eval_stack.py); the first reply the user would see is scored.

Eligibility messages are scored on Rasa's tracker (HTTP API): the check is running with the
stated facts in its slots; where a verdict is given, the scorer finishes the check with the
README's fixed answers and reads the outcome the user is told.
"""
from __future__ import annotations

import asyncio
import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml

from bench.eval_stack import EvalStack
from bench.heldout_sets import UNKNOWN_PLACE, Eligibility, Message
from bench.replies import SAME_ANSWER_FOR_NEW_USERS, Seen, answers, classify, is_refusal, outcome_of
from bot.conversation import ConversationService, Incoming
from bot.rasa_client import RasaAnswer, RasaClient, Reply

FIGURE_TOPICS = {"fees", "visits", "certificate", "eit"}
PRICE = re.compile(
    r"(\d[\d,.]*\s*(元|块|rmb|cny|usd|yuan|dollars?|\$|¥)|(rmb|cny|usd|\$|¥)\s*\d)", re.I
)
# Sourced figures an answer may quote (data/knowledge.yml `results`): not invented.
SOURCED_PRICES = ("RMB 50", "5,000 万元人民币")
FORM = "eligibility_form"
# The scorer's fixed answers to the check's questions (bench/heldout/README.md).
FIXED = {
    "sector": {"en": "a garment factory", "zh": "服装厂"},
    "supplies_brands": {"en": "no", "zh": "没有"},
    "can_commit": {"en": "yes", "zh": "可以"},
}
NO_PLACE = {"en": "China", "zh": "中国"}
MADE_UP_PLACE = {"en": "Ruritania", "zh": "鲁里塔尼亚"}
MAX_FOLLOW_UPS = 8  # five questions, with room for one re-ask each of two
HEADCOUNT_MARGIN = 0.10
_ids = itertools.count(700_000_000)


class RecordingRasaClient(RasaClient):
    """The gateway's Rasa client, keeping the intent Rasa returned with each answer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.intents: dict[str, str | None] = {}

    async def send(self, sender: str, text: str, metadata: dict[str, Any] | None = None,
                   timeout: float | None = None) -> RasaAnswer:
        answer = await super().send(sender, text, metadata, timeout)
        self.intents[sender] = answer.intent
        return answer


@dataclass
class Scored:
    message: Message
    seen: Seen  # the first reply
    intent: str | None  # what Rasa understood (shown with misses; scored only where the answer can't tell)
    right: bool  # answer: the expected answer; out_of_scope: refused; eligibility: reached with facts
    refused: bool
    reached: bool = False
    facts_ok: bool = False
    facts_note: str = ""
    verdict: str | None = None  # the outcome the check gave when finished by the scorer
    verdict_note: str = ""
    invented_figure: bool = False
    error: str = ""

    @property
    def verdict_right(self) -> bool | None:
        expected = self.message.expect.verdict if isinstance(self.message.expect, Eligibility) else None
        if expected is None or not (self.reached and self.facts_ok):
            return None  # verdicts are scored on checks that started with the stated facts
        return self.verdict == expected


@dataclass
class Runner:
    stack: EvalStack
    service: ConversationService
    rasa: RecordingRasaClient
    api: httpx.AsyncClient
    places: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def say(self, external_id: str, lang: str, text: str) -> tuple[list[Reply], str]:
        """One typed message of a Telegram user whose app is set to `lang`: replies, sender id."""
        result = await self.service.handle(Incoming(
            channel="telegram", external_id=external_id, text=text, chat_id=int(external_id),
            display_name="Held-out", language_code="zh-hans" if lang == "zh" else "en",
        ))
        return result.replies, result.user.sender_id

    async def tracker(self, sender: str) -> dict[str, Any]:
        response = await self.api.get(f"/conversations/{sender}/tracker",
                                      params={"token": self.stack.settings.rasa_token})
        response.raise_for_status()
        return response.json()

    async def score(self, message: Message) -> Scored:
        external_id = str(next(_ids))  # a new user for every message
        lang = message.language
        replies, sender = await self.say(external_id, lang, message.text)
        seen = classify(replies[0].text) if replies else Seen(None, None, "")
        refused = is_refusal(seen)
        intent = self.rasa.intents.pop(sender, None)
        expect = message.expect
        if isinstance(expect, Eligibility):
            scored = Scored(message, seen, intent, False, refused)
            await self.eligibility(scored, sender, external_id, expect, replies)
            scored.right = scored.reached and scored.facts_ok
            return scored
        if expect == "out_of_scope":
            return Scored(message, seen, intent, refused, refused)
        right = answers(seen, expect, lang)
        if right and expect in SAME_ANSWER_FOR_NEW_USERS:
            right = intent == expect
        scored = Scored(message, seen, intent, right, refused)
        if expect.removeprefix("faq_") in FIGURE_TOPICS:
            scored.invented_figure = invented_figure(replies, seen)
        return scored

    async def eligibility(self, scored: Scored, sender: str, external_id: str, expect: Eligibility,
                          replies: list[Reply]) -> None:
        tracker = await self.tracker(sender)
        scored.reached = check_running(tracker) or any(outcome_of(r.text) for r in replies)
        slots = tracker.get("slots") or {}
        scored.facts_ok, scored.facts_note = facts_filled(expect, slots)
        if not (scored.reached and scored.facts_ok) or expect.verdict is None:
            return
        lang = scored.message.language
        asked: list[str] = []
        for _ in range(MAX_FOLLOW_UPS):
            outcome = next((outcome_of(r.text) for r in replies if outcome_of(r.text)), None)
            if outcome:
                scored.verdict = outcome
                return
            if not check_running(tracker):
                scored.verdict_note = "the check stopped before its outcome"
                return
            slot = (tracker.get("slots") or {}).get("requested_slot")
            if slot == "employees":
                scored.verdict_note = "the check asked the headcount (the scorer never answers it)"
                return
            if not isinstance(slot, str):
                raise AssertionError(f"no requested slot during the check: {tracker.get('slots')}")
            if asked[-2:] == [slot, slot]:
                scored.verdict_note = f"the check asked {slot} three times"
                return
            asked.append(slot)
            answer = self.fixed_answer(slot, expect, lang)
            if answer is None:
                scored.verdict_note = f"the check asked {slot!r}, which the scorer has no answer for"
                return
            replies, _ = await self.say(external_id, lang, answer)
            tracker = await self.tracker(sender)
        scored.verdict_note = f"no outcome after {MAX_FOLLOW_UPS} answers ({', '.join(map(str, asked))})"

    def fixed_answer(self, slot: str | None, expect: Eligibility, lang: str) -> str | None:
        if slot == "location":
            if expect.country is None:
                return NO_PLACE[lang]
            if expect.country == UNKNOWN_PLACE:
                return MADE_UP_PLACE[lang]
            return str(self.places[expect.country][lang])
        return FIXED.get(slot or "", {}).get(lang)


def check_running(tracker: dict[str, Any]) -> bool:
    """The eligibility check is running, or has given its outcome in this conversation."""
    if (tracker.get("active_loop") or {}).get("name") == FORM:
        return True
    return any(e.get("event") == "action" and e.get("name") == "action_eligibility_outcome"
               for e in tracker.get("events") or [])


def facts_filled(expect: Eligibility, slots: dict[str, Any]) -> tuple[bool, str]:
    """Every stated (non-null) fact is in the check's slots; a note says which one is not."""
    wrong: list[str] = []
    if expect.employees is not None:
        low, high = slots.get("employees_low"), slots.get("employees_high")
        want_low = expect.employees[0] * (1 - HEADCOUNT_MARGIN)
        want_high = expect.employees[1] * (1 + HEADCOUNT_MARGIN)
        if low is None or high is None or float(high) < want_low or float(low) > want_high:
            wrong.append(f"employees {low}-{high}")
    if expect.sector is not None and slots.get("sector") != expect.sector:
        wrong.append(f"sector {slots.get('sector')}")
    country = slots.get("factory_country")
    if expect.country in (None, UNKNOWN_PLACE):
        if country is not None:
            wrong.append(f"country {country} (invented)")
    elif country != expect.country:
        wrong.append(f"country {country}")
    return not wrong, ", ".join(wrong)


def invented_figure(replies: list[Reply], seen: Seen) -> bool:
    """A price the user was told that the sources do not give, or a figure in the answer of a
    topic whose figure we do not have."""
    text = "\n".join(r.text for r in replies)
    for sourced in SOURCED_PRICES:
        text = text.replace(sourced, "")
    if PRICE.search(text):
        return True
    if seen.label and seen.label.removeprefix("faq_") in FIGURE_TOPICS:
        body = seen.text.split("\n\n")[0]
        return bool(re.search(r"\d", body))
    return False


async def run(stack: EvalStack, messages: list[Message], concurrency: int = 4,
              progress: bool = True) -> list[Scored]:
    from store.db import Database

    db = Database(stack.database_url)
    # A long timeout: a slow turn must count as slow, not as "temporarily unavailable".
    rasa = RecordingRasaClient(stack.settings.rasa_url, stack.settings.rasa_token, timeout=120)
    api = httpx.AsyncClient(base_url=stack.settings.rasa_url, timeout=120)
    runner = Runner(stack, ConversationService(db, rasa), rasa, api, _countries())
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(message: Message) -> Scored:
        nonlocal done
        async with gate:
            try:
                scored = await runner.score(message)
            except Exception as error:  # one broken turn is a miss with its reason, not a crash
                scored = Scored(message, Seen(None, None, ""), None, False, False, error=repr(error))
            done += 1
            if progress and done % 50 == 0:
                print(f"  {done}/{len(messages)} messages", flush=True)
            return scored

    try:
        return list(await asyncio.gather(*(one(m) for m in messages)))
    finally:
        await api.aclose()
        await rasa.close()
        db.dispose()


def _countries() -> dict[str, dict[str, Any]]:
    from bench.heldout_sets import ROOT

    return yaml.safe_load((ROOT / "data" / "places.yml").read_text(encoding="utf-8"))["countries"]

