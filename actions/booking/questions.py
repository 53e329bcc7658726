"""The booking form's questions (action_ask_<slot>): kind, module, place, date, details."""
from __future__ import annotations

from abc import ABC

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.booking.offers import (
    MAX_BUTTONS,
    earliest_offer_time,
    kind_and_module,
    module_buttons,
    module_of,
    offer_buttons,
    offers_for,
    prefill_of,
    time_filter,
)
from actions.common import DomainDict, Events, Question, button, language_of, store_call
from i18n import t
from store import booking as store, schedule


class ActionAskBookingKind(Question):
    slot = "booking_kind"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        lang = language_of(tracker)
        module = module_of(tracker.get_slot("booking_module"))
        extra = {"module": str(module)} if module else {}
        dispatcher.utter_message(text=t("booking_ask_kind", lang), buttons=[
            button(t("booking_button_classroom", lang), "book_classroom", **extra),
            button(t("booking_button_consultation", lang), "book_consultation", **extra),
        ])
        return []


class ActionAskBookingModule(Question):
    slot = "booking_module"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        lang = language_of(tracker)
        dispatcher.utter_message(text=t("booking_ask_module", lang),
                                 buttons=module_buttons(lang))
        return []


class ActionAskBookingPlace(Question):
    slot = "booking_place"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        lang = language_of(tracker)
        kind, module = kind_and_module(tracker)
        # cities whose dates are all full stay listed: their buttons offer the waitlist
        places = await store_call(store.places_with_offers, kind, module, include_full=True,
                              **time_filter(kind, await earliest_offer_time(tracker, kind, module)))
        key = "booking_ask_region" if kind == store.CONSULTATION else "booking_ask_city"
        dispatcher.utter_message(
            text=t(key, lang, module=schedule.module_title(module, lang)),
            buttons=[button(schedule.place_name(p, lang), "choose_place", place=p)
                     for p in places[:MAX_BUTTONS]],
        )
        return []


class ActionAskBookingTarget(Question):
    slot = "booking_target"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        lang = language_of(tracker)
        kind, module = kind_and_module(tracker)
        place = tracker.get_slot("booking_place")
        values = {"module": schedule.module_title(module, lang),
                  "place": schedule.place_name(place, lang)}
        if kind == store.CONSULTATION:
            offers = await offers_for(tracker, kind, module, place)
            dispatcher.utter_message(text=t("booking_ask_slot", lang, **values),
                                     buttons=offer_buttons(offers, lang))
            return []
        offers = await offers_for(tracker, kind, module, place, include_full=True)
        open_offers = [o for o in offers if o.seats_left > 0]
        if open_offers:
            dispatcher.utter_message(text=t("booking_ask_session", lang, **values),
                                     buttons=offer_buttons(open_offers, lang))
        else:
            # every date full: each button joins that session's waitlist
            dispatcher.utter_message(text=t("booking_all_full", lang, **values),
                                     buttons=offer_buttons(offers, lang))
        return []


class _AskDetail(Question, ABC):
    prefill_field: str | None = None
    ask_key = ""
    known_key = ""

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        lang = language_of(tracker)
        skip = button(t("booking_button_skip", lang), "skip")
        known = (await prefill_of(tracker)).get(self.prefill_field) if self.prefill_field else None
        if known:
            dispatcher.utter_message(text=t(self.known_key, lang, value=known),
                                     buttons=[button(t("booking_button_keep", lang), "affirm"), skip])
        else:
            dispatcher.utter_message(text=t(self.question(tracker), lang), buttons=[skip])
        return []

    def question(self, tracker: Tracker) -> str:
        """The key of the question (when nothing is known to offer)."""
        return self.ask_key


class ActionAskBookingFactory(_AskDetail):
    slot = "booking_factory"
    prefill_field = "factory_name"
    ask_key = "booking_ask_factory"
    known_key = "booking_ask_factory_known"


class ActionAskBookingAttendees(_AskDetail):
    slot = "booking_attendees"
    ask_key = "booking_ask_attendees"

    def question(self, tracker: Tracker) -> str:
        # "2 managers and 2 workers" is the classroom's rule; a visit has its own question
        if tracker.get_slot("booking_kind") == store.CONSULTATION:
            return "booking_ask_attendees_consultation"
        return self.ask_key


class ActionAskBookingContact(_AskDetail):
    slot = "booking_contact"
    prefill_field = "contact"
    ask_key = "booking_ask_contact"
    known_key = "booking_ask_contact_known"

