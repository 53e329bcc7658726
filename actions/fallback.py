"""What the assistant says when it did not understand (nlu_fallback), the question is not
about SCORE (out_of_scope), or a message has no place in the conversation at this point
(RulePolicy's core fallback: a "yes" to nothing, a button from an old message).

First miss: ask to rephrase and suggest topics as buttons. Second miss in a row (or more):
offer a person (button /request_human, owned by the handoff capability) and the published
contact. Misses are counted from the tracker's user events, so nothing extra is stored.
After this action the rule "after the fallback answer, wait for the user" (stories/core.yml)
hands the turn back to the user; an active form is resumed instead (back_to_form).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import DomainDict, Events, human_button, intent_of, language_of
from actions.knowledge import CONTACT_SOURCE, back_to_form, source_line, suggestion_buttons
from i18n import t

MISS_INTENTS = frozenset({"nlu_fallback", "out_of_scope"})
# A new session or a restart starts the count again.
RESET_EVENTS = frozenset({"session_started", "restart"})


def is_miss(intent: str | None) -> bool:
    # No intent at all (empty text, emoji only) is a miss too.
    return not intent or intent in MISS_INTENTS


def consecutive_misses(events: Iterable[dict[str, Any]]) -> int:
    """How many of the latest user messages, counted back from the newest, were misses."""
    count = 0
    for event in reversed(list(events)):
        kind = event.get("event")
        if kind in RESET_EVENTS:
            break
        if kind != "user":
            continue
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if not is_miss(intent):
            break
        count += 1
    return count


class ActionFallback(Action):
    def name(self) -> str:
        return "action_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        lang = language_of(tracker)
        misses = max(1, consecutive_misses(tracker.events))
        if misses >= 2:
            text = t("fallback_offer_human", lang, contact=t("contact_short", lang))
            text = f"{text}\n\n{source_line([CONTACT_SOURCE], lang)}"
            dispatcher.utter_message(text=text, buttons=[human_button(lang, "misunderstood")])
        else:
            intent = intent_of(tracker)
            if intent == "out_of_scope":
                key = "out_of_scope_rephrase"
            elif is_miss(intent):
                key = "fallback_rephrase"
            else:  # understood, but nothing in the conversation it could answer
                key = "fallback_out_of_context"
            dispatcher.utter_message(text=t(key, lang), buttons=suggestion_buttons(lang))
        return back_to_form(tracker)
