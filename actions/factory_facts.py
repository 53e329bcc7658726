"""Facts about the factory stated before anyone asked ("we have about 120 people", "东莞").

A manager often starts with a fact instead of a question. Outside a form, such a message
(intent inform_factory) is read with the eligibility check's own reader, kept in the check's
slots, and answered with what was understood and an offer to run the check. The slot
`noted_facts` names the slots kept this way: the check's first turn keeps them (instead of
clearing them as answers left over from an interrupted check), so it asks only the rest.
"""
from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import DomainDict, Events, button, intent_of, language_of
from actions.eligibility_answers import FORM_SLOTS, HELPER_SLOTS, read_turn, summary
from actions.knowledge import suggestion_buttons
from i18n import t

NOTED_SLOT = "noted_facts"
FACT_SLOTS = tuple(name for name in (*FORM_SLOTS, *HELPER_SLOTS) if name != "eligibility_retries")


def noted_slots(tracker: Tracker) -> set[str]:
    """The slots a fact stated outside the check filled (kept for the next check)."""
    value = tracker.get_slot(NOTED_SLOT)
    return {str(name) for name in value} if isinstance(value, list) else set()


class ActionNoteFactoryFacts(Action):
    def name(self) -> str:
        return "action_note_factory_facts"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        lang = language_of(tracker)
        text = tracker.latest_message.get("text") or ""
        intent = intent_of(tracker)
        slots = dict(tracker.slots)
        # requested=None: nothing was asked, so only facts that say what they are count
        # ("120 people", a known place, "garment factory"), not a bare number. Read against no
        # known facts: a figure stated again replaces the one noted before.
        found = {k: v for k, v in read_turn(text, intent, None, {}).items() if k in FACT_SLOTS}
        if not found:
            # Understood as an answer about the factory, but nothing we can use: don't guess.
            dispatcher.utter_message(text=t("facts_not_read", lang), buttons=suggestion_buttons(lang))
            return []
        noted = sorted(noted_slots(tracker) | set(found))
        known = summary({**slots, **found}, lang)
        dispatcher.utter_message(
            text=t("facts_noted_offer_check", lang, facts=known),
            buttons=[
                button(t("facts_button_check", lang), "check_eligibility"),
                button(t("facts_button_not_now", lang), "deny"),
            ],
        )
        return [SlotSet(name, value) for name, value in found.items()] + [SlotSet(NOTED_SLOT, noted)]


class ActionFactoryFactsDeclined(Action):
    """"No" to the offer: the facts stay noted for later; the user gets the topics."""

    def name(self) -> str:
        return "action_factory_facts_declined"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        lang = language_of(tracker)
        dispatcher.utter_message(text=t("facts_check_declined", lang), buttons=suggestion_buttons(lang))
        return []
