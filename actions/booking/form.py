"""The booking form: how a booking starts, and how each answer is read and checked.

Slots are filled by ValidateBookingForm's extract_ methods (only the slot being asked reads
the message); a booking request starts afresh in ValidateBookingForm.run. The questions are
in actions/booking/questions.py.
"""
from __future__ import annotations

import re
import uuid
from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.booking.offers import (
    FORM_SLOTS,
    INTERRUPTS,
    SKIPPED,
    UNAVAILABLE,
    earliest_offer_time,
    kind_and_module,
    module_of,
    needs_earlier_classroom,
    offers_for,
    prefill_of,
    reset_slots,
    time_filter,
)
from actions.common import (
    DomainDict,
    Events,
    button,
    entity_of,
    human_button,
    intent_of,
    language_of,
    store_call,
    text_of,
)
from i18n import t
from store import booking as store, schedule

# --- starting ------------------------------------------------------------------------------


START_INTENTS = frozenset({"book_classroom", "book_consultation", "start_booking"})
# The "Keep" button sends affirm; its prompt says "Keep it, or type another name", so people type it.
KEEP = frozenset({"affirm", "keep_booking"})


def _starts_booking(tracker: Tracker) -> bool:
    """Does the user's message start a (new) booking that this turn has not started yet?

    At the form's activation always. While the form asks, a booking request starts again,
    except "classroom"/"consultation" as the answer to "which kind?" (that fills the kind).
    The start sets a nonce: once it is set after the message, the start has run.
    """
    intent = intent_of(tracker)
    if intent not in START_INTENTS:
        return False
    asking = (tracker.active_loop or {}).get("name") == "booking_form"
    if asking and tracker.get_slot("requested_slot") == "booking_kind" and intent != "start_booking":
        return False
    since_message = []
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            break
        since_message.append(event)
    return not any(e.get("event") == "slot" and e.get("name") == "booking_nonce" for e in since_message)


def _start_events(tracker: Tracker) -> Events:
    """A fresh booking: forget the last one's answers, keep what the message said."""
    events = reset_slots()
    intent = intent_of(tracker)
    if intent == "book_classroom":
        events.append(SlotSet("booking_kind", store.CLASSROOM))
    elif intent == "book_consultation":
        events.append(SlotSet("booking_kind", store.CONSULTATION))
    module = module_of(entity_of(tracker, "module"))
    if module:
        events.append(SlotSet("booking_module", str(module)))
    place = schedule.canonical_place(entity_of(tracker, "place"))
    if place:
        events.append(SlotSet("booking_place", place))
    events.append(SlotSet("booking_nonce", uuid.uuid4().hex[:12]))
    return events


# --- the form ------------------------------------------------------------------------------


class ValidateBookingForm(FormValidationAction):
    def name(self) -> str:
        return "validate_booking_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        if not _starts_booking(tracker):
            return await super().run(dispatcher, tracker, domain)
        # A booking request: start afresh here rather than in an action before the form (one
        # action call less per booking start). The start's values are then validated exactly
        # as Rasa validates form slots filled before the form's activation: the filled ones
        # are the candidates (the SlotSet events after the user's message).
        start = _start_events(tracker)
        values = {event["name"]: event["value"] for event in start}
        since = max((i for i, e in enumerate(tracker.events) if e.get("event") == "user"), default=-1)
        tracker.events = tracker.events[:since + 1] + [
            SlotSet(name, value) for name, value in values.items()
            if name in FORM_SLOTS and value is not None
        ]
        tracker.slots.update(values)
        return start + await super().run(dispatcher, tracker, domain)

    @staticmethod
    def _asked(tracker: Tracker, slot: str) -> bool:
        return tracker.get_slot("requested_slot") == slot

    # extraction: only the slot being asked reads the message, so a stray entity or an
    # interrupting intent never fills a slot by accident (the form then rejects, and the
    # rules for stop/deny/waitlist take over).

    async def extract_booking_kind(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                   domain: DomainDict) -> dict[str, Any]:
        if not self._asked(tracker, "booking_kind"):
            return {}
        intent, text = intent_of(tracker), text_of(tracker).lower()
        if intent == "book_consultation" or "consult" in text or "咨询" in text:
            kind = store.CONSULTATION
        elif intent == "book_classroom" or "class" in text or "课堂" in text or "培训" in text:
            kind = store.CLASSROOM
        else:
            return {}
        values: dict[str, Any] = {"booking_kind": kind}
        module = module_of(entity_of(tracker, "module"))
        if module:
            values["booking_module"] = str(module)
        return values

    async def extract_booking_module(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                     domain: DomainDict) -> dict[str, Any]:
        if not self._asked(tracker, "booking_module") or intent_of(tracker) in INTERRUPTS:
            return {}
        module = module_of(entity_of(tracker, "module") or text_of(tracker))
        return {"booking_module": str(module)} if module else {}

    async def extract_booking_place(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                    domain: DomainDict) -> dict[str, Any]:
        if not self._asked(tracker, "booking_place") or intent_of(tracker) in INTERRUPTS:
            return {}
        place = schedule.canonical_place(entity_of(tracker, "place") or text_of(tracker))
        if place is None:
            dispatcher.utter_message(text=t("booking_unknown_place", language_of(tracker)))
            return {}
        return {"booking_place": place}

    async def extract_booking_target(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                     domain: DomainDict) -> dict[str, Any]:
        if not self._asked(tracker, "booking_target") or intent_of(tracker) in INTERRUPTS:
            return {}
        chosen = entity_of(tracker, "session_id") or entity_of(tracker, "slot_id")
        if chosen is None and text_of(tracker).isdigit():
            # "2": the second date shown
            kind, module = kind_and_module(tracker)
            offers = await offers_for(tracker, kind, module, tracker.get_slot("booking_place"))
            index = int(text_of(tracker)) - 1
            if 0 <= index < len(offers):
                chosen = str(offers[index].id)
        if chosen is None:
            dispatcher.utter_message(text=t("booking_choose_button", language_of(tracker)))
            return {}
        return {"booking_target": chosen}

    async def _free_text(self, dispatcher: CollectingDispatcher, tracker: Tracker, slot: str,
                         prefill: str | None, max_length: int = 200) -> dict[str, Any]:
        if not self._asked(tracker, slot):
            return {}
        intent, text = intent_of(tracker), text_of(tracker)
        if intent in INTERRUPTS or intent.startswith("faq_") and text.endswith(("?", "？")):
            return {}
        if intent == "skip" or text.lower() in ("skip", "跳过"):
            return {slot: SKIPPED}
        if intent in KEEP:
            if prefill:
                return {slot: prefill}  # "Keep", pressed or typed ("keep it", "保留")
            # "ok" / "keep it" with nothing to keep is not a name: say so, the question follows.
            dispatcher.utter_message(text=t("booking_type_answer", language_of(tracker)))
            return {}
        if not text or text.startswith("/"):
            return {}
        cleaned = re.sub(r"[<>]", "", text)[:max_length].strip()
        return {slot: cleaned} if cleaned else {}

    async def extract_booking_factory(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                      domain: DomainDict) -> dict[str, Any]:
        if not self._asked(tracker, "booking_factory"):
            return {}
        prefill = (await prefill_of(tracker)).get("factory_name")
        return await self._free_text(dispatcher, tracker, "booking_factory", prefill)

    async def extract_booking_attendees(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                        domain: DomainDict) -> dict[str, Any]:
        return await self._free_text(dispatcher, tracker, "booking_attendees", None, max_length=600)

    async def extract_booking_contact(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                      domain: DomainDict) -> dict[str, Any]:
        if not self._asked(tracker, "booking_contact"):
            return {}
        prefill = (await prefill_of(tracker)).get("contact")
        return await self._free_text(dispatcher, tracker, "booking_contact", prefill)

    # validation

    async def validate_booking_module(self, value: Any, dispatcher: CollectingDispatcher,
                                      tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        module = module_of(value)
        if module is None:
            return {"booking_module": None}
        kind = tracker.get_slot("booking_kind")
        if kind is None:
            return {"booking_module": str(module)}
        return await self._unless_nothing_to_offer(kind, module, dispatcher, tracker)

    async def validate_booking_kind(self, value: Any, dispatcher: CollectingDispatcher,
                                    tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        if value not in (store.CLASSROOM, store.CONSULTATION):
            return {"booking_kind": None}
        module = module_of(tracker.get_slot("booking_module"))
        if module is None or "booking_module" in tracker.slots_to_validate():
            # validate_booking_module checks the offers when both arrive together: say the
            # "no dates" message once
            return {"booking_kind": value}
        result = await self._unless_nothing_to_offer(value, module, dispatcher, tracker)
        return {"booking_kind": value, **result}

    async def _unless_nothing_to_offer(self, kind: str, module: int, dispatcher: CollectingDispatcher,
                                       tracker: Tracker) -> dict[str, Any]:
        """Nothing this factory can book for this module: say why and complete the form with
        UNAVAILABLE so the conversation moves on (action_booking_summary then says nothing
        more). A consultation needs the module's classroom session first, a later classroom
        module a Module 1 session: said here, when the module is known, rather than after
        every detail was asked (book_consultation and book_classroom check it again, in their
        transaction)."""
        lang = language_of(tracker)
        unavailable = {"booking_module": str(module), **{
            slot: UNAVAILABLE for slot in FORM_SLOTS if slot not in ("booking_kind", "booking_module")
        }}
        offered_from = await earliest_offer_time(tracker, kind, module)
        required = needs_earlier_classroom(kind, module)
        if required is not None and offered_from is None:
            if kind == store.CONSULTATION:
                text = t("booking_consultation_needs_classroom", lang,
                         module=schedule.module_title(module, lang))
            else:
                text = t("booking_refused_module1_first", lang)
            dispatcher.utter_message(text=text, buttons=[
                button(t("booking_button_classroom_of_module", lang, number=required),
                       "book_classroom", module=str(required))])
            return unavailable
        places = await store_call(store.places_with_offers, kind, module, include_full=True,
                              **time_filter(kind, offered_from))
        if places:
            return {"booking_module": str(module)}
        dispatcher.utter_message(
            text=t("booking_no_offers", lang, module=schedule.module_title(module, lang)),
            buttons=[human_button(lang, "asked")],
        )
        return unavailable

    async def validate_booking_place(self, value: Any, dispatcher: CollectingDispatcher,
                                     tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        if value == UNAVAILABLE:
            return {"booking_place": value}
        kind, module = kind_and_module(tracker)
        offers = await offers_for(tracker, kind, module, value, include_full=True)
        if not offers:
            # Known place, but nothing there for this module: ask again (the question lists
            # the places that do have dates).
            return {"booking_place": None}
        return {"booking_place": value}

    async def validate_booking_target(self, value: Any, dispatcher: CollectingDispatcher,
                                      tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        if value == UNAVAILABLE:
            return {"booking_target": value}
        kind = tracker.get_slot("booking_kind")
        chosen = await store_call(store.offer, kind, int(value)) if str(value).isdigit() else None
        module = module_of(tracker.get_slot("booking_module"))
        if chosen is None or chosen.module != module or chosen.seats_left <= 0:
            dispatcher.utter_message(text=t("booking_choose_button", language_of(tracker)))
            return {"booking_target": None}
        return {"booking_target": str(chosen.id)}

