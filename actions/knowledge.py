"""Answers from the SCORE knowledge base (data/knowledge.yml), always with their sources."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import DomainDict, language_of
from i18n import t

KNOWLEDGE_FILE = Path(__file__).resolve().parent.parent / "data" / "knowledge.yml"


@lru_cache(maxsize=1)
def knowledge() -> dict[str, Any]:
    return yaml.safe_load(KNOWLEDGE_FILE.read_text(encoding="utf-8"))


def answer(topic: str, lang: str) -> str:
    data = knowledge()
    entry = data["topics"][topic]
    sources = ", ".join(data["sources"][tag] for tag in entry["sources"])
    return f"{entry[lang].strip()}\n\n{t('source_line', lang, sources=sources)}"


class ActionAnswerFaq(Action):
    def name(self) -> str:
        return "action_answer_faq"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name") or ""
        topic = intent.removeprefix("faq_")
        lang = language_of(tracker)
        if topic in knowledge()["topics"]:
            dispatcher.utter_message(text=answer(topic, lang))
        return []
