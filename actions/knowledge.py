"""Answers from the SCORE knowledge base (data/knowledge.yml), always with their sources.

The knowledge itself is data; this module only assembles a reply: the topic's text in the
user's language, the translation note for Chinese module names, the published contact and a
"pass to staff" button when we do not have the fact, and the "Source: ..." line.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction
from rasa_sdk.executor import CollectingDispatcher

from actions.common import Button, DomainDict, Events, button, human_button, intent_of, language_of
from i18n import t

KNOWLEDGE_FILE = Path(__file__).resolve().parent.parent / "data" / "knowledge.yml"
INTENT_PREFIX = "faq_"
# The source of the published contact that staff offers add to a reply.
CONTACT_SOURCE = "PR2014"

@dataclass
class Reply:
    text: str
    buttons: list[Button] = field(default_factory=list)


@lru_cache(maxsize=1)
def knowledge() -> dict[str, Any]:
    return yaml.safe_load(KNOWLEDGE_FILE.read_text(encoding="utf-8"))


def topics() -> list[str]:
    return list(knowledge()["topics"])


def topic_of_intent(intent: str | None) -> str | None:
    """faq_<topic> -> <topic>, or None when the intent is not a known FAQ."""
    if not intent or not intent.startswith(INTENT_PREFIX):
        return None
    topic = intent.removeprefix(INTENT_PREFIX)
    return topic if topic in knowledge()["topics"] else None


def source_line(tags: list[str], lang: str) -> str:
    names = knowledge()["sources"]
    unique = list(dict.fromkeys(tags))  # keep order, drop repeats
    return t("source_line", lang, sources="; ".join(names[tag] for tag in unique))


def topic_button(topic: str, lang: str) -> Button:
    return button(knowledge()["topics"][topic]["title"][lang], f"{INTENT_PREFIX}{topic}")


def suggestion_buttons(lang: str) -> list[Button]:
    return [topic_button(topic, lang) for topic in knowledge()["suggestions"]]


def reply(topic: str, lang: str) -> Reply:
    entry = knowledge()["topics"][topic]
    parts = [entry[lang].strip()]
    tags = list(entry["sources"])
    buttons: list[Button] = []
    if entry.get("translated_titles") and t("translated_titles_note", lang):
        parts.append(t("translated_titles_note", lang))
    if entry.get("unknown") or entry.get("offer_staff"):
        # We never guess a missing fact: we point to people who know it (the handoff
        # capability owns the button's intent; its reason tells staff why).
        parts.append(t("staff_offer", lang, contact=t("contact_short", lang)))
        tags.append(CONTACT_SOURCE)
        buttons.append(human_button(lang, "unknown_fact" if entry.get("unknown") else "asked"))
    parts.append(source_line(tags, lang))
    return Reply("\n\n".join(parts), buttons)


def answer(topic: str, lang: str) -> str:
    return reply(topic, lang).text


def back_to_form(tracker: Tracker) -> Events:
    """Resume an active form (eligibility_form, booking_form, ...) after a side answer.

    Without this the form stays active but silent, and the user no longer sees its question.
    """
    loop = tracker.active_loop_name
    return [FollowupAction(loop)] if loop else []


class ActionAnswerFaq(Action):
    def name(self) -> str:
        return "action_answer_faq"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        topic = topic_of_intent(intent_of(tracker))
        lang = language_of(tracker)
        if topic is None:
            # A faq_ intent without a knowledge entry is a data bug; don't stay silent.
            dispatcher.utter_message(text=t("fallback_rephrase", lang), buttons=suggestion_buttons(lang))
        else:
            answered = reply(topic, lang)
            dispatcher.utter_message(text=answered.text, buttons=answered.buttons)
        return back_to_form(tracker)
