"""Eligibility check: a short form that tells a factory whether SCORE fits, why, and what next.

Flow: `eligibility_form` (employees, sector, location, supplies_brands, can_commit) →
`action_eligibility_outcome` (judges with data/eligibility_rules.yml, stores an Enquiry, asks
for consent) → on "yes" `enquiry_contact_form` (factory name, contact) →
`action_save_enquiry_contact`.

Slots are read from the user's own words by `read_turn` (actions/eligibility_answers.py, pure
and unit-tested); this module holds the actions around it.
"""
from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (
    Button,
    DomainDict,
    Events,
    Question,
    attempt,
    button,
    intent_of,
    language_of,
    store_call,
    text_of,
)
from actions.eligibility_answers import (
    FORM_SLOTS,
    HELPER_SLOTS,
    NEVER_ANSWER,
    RULES,
    STOP,
    facts_of,
    is_question,
    outcome_text,
    read_turn,
    reason_lines,
    sector_name,
    summary,
)
from actions.eligibility_rules import evaluate
from i18n import t
from store.enquiries import EnquiryRecord, add_contact, save_enquiry
from store.kinds import EligibilityOutcome

FORM = "eligibility_form"
CONTACT_SLOTS = ("enquiry_factory_name", "enquiry_contact")
YES_NO_SLOTS = ("supplies_brands", "can_commit")


def _slots(tracker: Tracker) -> dict[str, Any]:
    return dict(tracker.slots)


def _turn(tracker: Tracker) -> dict[str, Any]:
    return read_turn(
        tracker.latest_message.get("text") or "",
        intent_of(tracker),
        tracker.get_slot("requested_slot"),
        _slots(tracker),
    )


def _pick(tracker: Tracker, *names: str) -> dict[str, Any]:
    turn = getattr(tracker, "_eligibility_turn", None)
    if turn is None:
        turn = _turn(tracker)
    return {name: turn[name] for name in names if name in turn}


# --- the form ------------------------------------------------------------------------------


class ValidateEligibilityForm(FormValidationAction):
    """Fills the form's slots from the user's words and says what it understood."""

    def name(self) -> str:
        return "validate_eligibility_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        lang = language_of(tracker)
        before = _slots(tracker)
        activating = before.get("requested_slot") is None
        resets: Events = []
        if activating:
            # A new check starts from this message only: answers left by an interrupted
            # earlier check (carried over between sessions) must not fill this one. Facts the
            # user stated before the check (actions/factory_facts.py) are kept.
            facts = before.get("noted_facts")
            noted: list[Any] = facts if isinstance(facts, list) else []
            stale = [k for k in (*FORM_SLOTS, *HELPER_SLOTS) if before.get(k) is not None and k not in noted]
            tracker.slots.update({k: None for k in stale})
        turn = _turn(tracker)
        if activating:
            resets = [SlotSet(k, None) for k in stale if k not in turn]
            if noted:
                resets.append(SlotSet("noted_facts", None))  # used by this check
        # The SDK calls each extract_<slot> with a tracker it updates as it goes; all of them
        # must read the message against the slots as they were before this turn.
        tracker._eligibility_turn = turn
        events = await super().run(dispatcher, tracker, domain)
        if activating:
            # Rasa passes the stale values in as pre-filled candidates; the SDK would set
            # them again after the resets.
            dropped = {k for k in stale if k not in turn}
            events = [e for e in events if not (e.get("event") == "slot" and e.get("name") in dropped)]
        # The SDK drops slots outside required_slots; keep the helper slots extract_ set.
        named = {e.get("name") for e in events}
        extra = [SlotSet(k, v) for k, v in turn.items() if k in HELPER_SLOTS and k not in named]

        if activating:
            known = summary({**before, **turn}, lang)
            dispatcher.utter_message(text=t("elig_noted", lang, facts=known) if known else t("elig_intro", lang))
        elif "_corrected" in turn:
            dispatcher.utter_message(text=t("elig_corrected", lang, count=turn["_corrected"].label()))
        if turn.get("_gave_up") == "employees":
            dispatcher.utter_message(
                text=t("elig_employees_give_up", lang),
                buttons=[button(t("elig_button_staff", lang), "request_human")],
            )
        return resets + extra + events

    async def extract_employees(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return _pick(tracker, "employees", "employees_low", "employees_high")

    async def extract_sector(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return _pick(tracker, "sector", "sector_kind")

    async def extract_location(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return _pick(tracker, "location", "factory_country", "factory_province", "factory_city")

    async def extract_supplies_brands(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return _pick(tracker, "supplies_brands")

    async def extract_can_commit(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        # The retry counter rides with the last extractor so it is set once per turn.
        return _pick(tracker, "can_commit", "eligibility_retries")

    # Values arrive already normalised by read_turn; these keep the SDK from warning.
    def validate_employees(self, value: Any, *_: Any) -> dict[str, Any]:
        return {"employees": value}

    def validate_sector(self, value: Any, *_: Any) -> dict[str, Any]:
        return {"sector": value}

    def validate_location(self, value: Any, *_: Any) -> dict[str, Any]:
        return {"location": value}

    def validate_supplies_brands(self, value: Any, *_: Any) -> dict[str, Any]:
        return {"supplies_brands": value}

    def validate_can_commit(self, value: Any, *_: Any) -> dict[str, Any]:
        return {"can_commit": value}


def _yes_no_buttons(lang: str) -> list[Button]:
    return [button(t("elig_button_yes", lang), "affirm"), button(t("elig_button_no", lang), "deny")]


class _AskAction(Question):
    """Asks for one slot; after a reply that was not an answer, asks again with an example."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        lang = language_of(tracker)
        again = self.slot in FORM_SLOTS and int(tracker.get_slot("eligibility_retries") or 0) > 0
        key = f"elig_{'reask' if again else 'ask'}_{self.slot}"
        buttons = _yes_no_buttons(lang) if self.slot in YES_NO_SLOTS else []
        dispatcher.utter_message(text=t(key, lang), buttons=buttons)
        return []


class ActionAskEmployees(_AskAction):
    slot = "employees"


class ActionAskSector(_AskAction):
    slot = "sector"


class ActionAskLocation(_AskAction):
    slot = "location"


class ActionAskSuppliesBrands(_AskAction):
    slot = "supplies_brands"


class ActionAskCanCommit(_AskAction):
    slot = "can_commit"


# --- outcome, consent, contact -------------------------------------------------------------


def _reset(names: tuple[str, ...]) -> Events:
    return [SlotSet(name, None) for name in names]


class ActionEligibilityOutcome(Action):
    """Says the outcome and why, offers the next step, stores the enquiry, asks for consent."""

    def name(self) -> str:
        return "action_eligibility_outcome"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        lang = language_of(tracker)
        slots = _slots(tracker)
        facts = facts_of(slots)
        decision = evaluate(facts, RULES)
        text = outcome_text(decision, lang)
        if decision.outcome == EligibilityOutcome.ELIGIBLE:
            buttons = [button(t("elig_button_book", lang), "book_classroom", module="1")]
            dispatcher.utter_message(text=f"{text}\n\n{t('elig_next_eligible', lang)}", buttons=buttons)
        elif decision.outcome == EligibilityOutcome.BORDERLINE:
            buttons = [button(t("elig_button_staff", lang), "request_human")]
            dispatcher.utter_message(text=f"{text}\n\n{t('elig_next_borderline', lang)}", buttons=buttons)
        else:
            dispatcher.utter_message(text=f"{text}\n\n{t('elig_next_not_eligible', lang)}")

        answers = {name: slots.get(name) for name in (*FORM_SLOTS, *HELPER_SLOTS[:-1])}
        answers.update(reasons=decision.codes, band=asdict(decision.band))
        record = EnquiryRecord(
            sender_id=tracker.sender_id,
            outcome=decision.outcome,
            reason="\n".join(reason_lines(decision, lang)),
            language=lang,
            answers=answers,
            employees_low=facts.employees_low,
            employees_high=facts.employees_high,
            sector=facts.sector,
            sector_kind=sector_name(facts.sector, facts.sector_kind, "en") if facts.sector_kind else None,
            country=facts.country,
            province=slots.get("factory_province"),
            city=slots.get("factory_city"),
            supplies_brands=facts.supplies_brands,
            can_commit=facts.can_commit,
        )
        events: Events = _reset(FORM_SLOTS + HELPER_SLOTS)
        # The answer was given: a store outage must not break the chat (nothing more is said).
        enquiry_id = await attempt(dispatcher, tracker, "storing the enquiry",
                                   store_call(save_enquiry, record), error_key=None)
        if enquiry_id is None:
            return events
        dispatcher.utter_message(text=t("elig_consent_question", lang), buttons=_yes_no_buttons(lang))
        return [*events, SlotSet("enquiry_id", enquiry_id)]


class ActionEligibilityStopped(Action):
    """The user stopped a check ("stop", "算了", the gateway's /cancel): forget its answers."""

    def name(self) -> str:
        return "action_eligibility_stopped"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        dispatcher.utter_message(text=t("elig_stopped", language_of(tracker)))
        return _reset(FORM_SLOTS + HELPER_SLOTS + CONTACT_SLOTS) + [SlotSet("requested_slot", None)]


class ActionEnquiryNoConsent(Action):
    def name(self) -> str:
        return "action_enquiry_no_consent"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        dispatcher.utter_message(text=t("elig_no_consent", language_of(tracker)))
        return []


_CONTACT_LIKE = re.compile(r"\d{5,}|@|\d[\d\s\-()+]{6,}")


class ValidateEnquiryContactForm(FormValidationAction):
    """Takes the factory name and contact as typed, unless the message is something else."""

    def name(self) -> str:
        return "validate_enquiry_contact_form"

    def _text(self, tracker: Tracker, slot: str) -> str | None:
        if tracker.get_slot("requested_slot") != slot:
            return None
        intent, text = intent_of(tracker), text_of(tracker)
        if intent in NEVER_ANSWER or STOP.match(text) or not text or text.startswith("/"):
            return None
        if intent.startswith("faq_") and is_question(text):
            return None
        return text[:200]

    async def extract_enquiry_factory_name(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = self._text(tracker, "enquiry_factory_name")
        return {"enquiry_factory_name": text} if text else {}

    async def extract_enquiry_contact(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = self._text(tracker, "enquiry_contact")
        return {"enquiry_contact": text} if text else {}

    def validate_enquiry_factory_name(self, value: Any, *_: Any) -> dict[str, Any]:
        return {"enquiry_factory_name": value}

    def validate_enquiry_contact(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value and _CONTACT_LIKE.search(str(value)):
            return {"enquiry_contact": value}
        dispatcher.utter_message(text=t("elig_reask_enquiry_contact", language_of(tracker)))
        return {"enquiry_contact": None}


class ActionAskEnquiryFactoryName(_AskAction):
    slot = "enquiry_factory_name"


class ActionAskEnquiryContact(_AskAction):
    slot = "enquiry_contact"


class ActionSaveEnquiryContact(Action):
    """Records consent, factory name and contact on the enquiry the user just made."""

    def name(self) -> str:
        return "action_save_enquiry_contact"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        lang = language_of(tracker)
        enquiry_id = tracker.get_slot("enquiry_id")
        name, contact = tracker.get_slot("enquiry_factory_name"), tracker.get_slot("enquiry_contact")
        saved = False
        if enquiry_id is not None and name and contact:
            saved = bool(await attempt(
                dispatcher, tracker, "storing the contact",
                store_call(add_contact, int(enquiry_id), tracker.sender_id, name, contact),
                error_key=None,
            ))
        dispatcher.utter_message(text=t("elig_contact_saved" if saved else "elig_contact_not_saved", lang))
        return _reset(CONTACT_SLOTS)
