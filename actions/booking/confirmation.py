"""The end of a booking: the summary (Confirm / Cancel), the confirmation and what it did,
stopping the form, and joining a full session's waitlist.

The reference is said only after store.booking returned, i.e. after its transaction
committed. The confirmation's idempotency key comes from the sender, the chosen session and
a nonce drawn when the flow started, so a double tap (or Telegram redelivering the update)
books once and repeats the same reference.
"""
from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.booking.offers import (
    SKIPPED,
    UNAVAILABLE,
    attempt_as_user,
    detail_or_none,
    idempotency_key,
    module_of,
    prefill_of,
    reset_slots,
    restart_button,
)
from actions.common import DomainDict, Events, button, entity_of, language_of, store_call
from i18n import t
from store import booking as store, schedule


def _given(value: Any, lang: str) -> str:
    return t("booking_not_given", lang) if value in (None, "", SKIPPED) else str(value)


def attendees_list(value: Any) -> list[dict[str, str]]:
    """'Li Wei (manager), Zhang Min，王芳' -> [{"name": ...}, ...] for Booking.attendees."""
    if value in (None, "", SKIPPED, UNAVAILABLE):
        return []
    parts = re.split(r"[,，;；、\n]+", str(value))
    return [{"name": part.strip()} for part in parts if part.strip()]


class ActionBookingSummary(Action):
    def name(self) -> str:
        return "action_booking_summary"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        lang = language_of(tracker)
        kind = tracker.get_slot("booking_kind")
        target = tracker.get_slot("booking_target")
        if target in (None, UNAVAILABLE) or not str(target).isdigit():
            return reset_slots()  # nothing to offer: already said so
        offer = await store_call(store.offer, kind, int(target))
        if offer is None:
            dispatcher.utter_message(text=t("booking_refused_not_found", lang))
            return reset_slots()
        dispatcher.utter_message(
            text=t("booking_summary", lang, **schedule.offer_values(offer, lang),
                   kind=t(f"booking_kind_{offer.kind}", lang),
                   factory=_given(tracker.get_slot("booking_factory"), lang),
                   attendees=_given(tracker.get_slot("booking_attendees"), lang),
                   contact=_given(tracker.get_slot("booking_contact"), lang)),
            buttons=[button(t("booking_button_confirm", lang), "confirm_booking"),
                     button(t("booking_button_stop", lang), "stop_form")],
        )
        return []


class ActionBookingConfirm(Action):
    def name(self) -> str:
        return "action_booking_confirm"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        lang = language_of(tracker)
        kind = tracker.get_slot("booking_kind")
        target = tracker.get_slot("booking_target")
        nonce = tracker.get_slot("booking_nonce") or ""
        if kind not in (store.CLASSROOM, store.CONSULTATION) or not str(target or "").isdigit():
            dispatcher.utter_message(text=t("booking_nothing_to_confirm", lang),
                                     buttons=[button(t("booking_button_book", lang), "start_booking")])
            return []
        prefill = await prefill_of(tracker)
        details = {
            "idempotency_key": idempotency_key(tracker.sender_id, kind, str(target), nonce),
            "factory_name": detail_or_none(tracker.get_slot("booking_factory")),
            "attendees": attendees_list(tracker.get_slot("booking_attendees")),
            "contact": detail_or_none(tracker.get_slot("booking_contact")),
            "language": lang,
            "enquiry_id": prefill.get("id"),
        }
        book = store.book_classroom if kind == store.CLASSROOM else store.book_consultation
        result = await attempt_as_user(dispatcher, tracker, "booking", book, int(target), **details)
        if result is None:
            return []
        say_result(dispatcher, result, lang, kind, tracker.get_slot("booking_module"), int(target))
        return []


def say_result(dispatcher: CollectingDispatcher, result: store.BookingResult, lang: str,
               kind: str | None, module: Any, target: int) -> None:
    """Tell the user what a booking attempt did."""
    if result.booking is not None:
        values = {**schedule.offer_values(result.booking.offer, lang), "reference": result.booking.reference}
        key = {"booked": "booking_confirmed", "duplicate": "booking_duplicate",
               "already_booked": "booking_already_booked"}[result.outcome]
        dispatcher.utter_message(text=t(key, lang, **values),
                                 buttons=[button(t("booking_button_my_bookings", lang), "my_bookings")])
    elif result.outcome == "full" and kind == store.CLASSROOM:
        dispatcher.utter_message(text=t("booking_full", lang), buttons=[
            button(t("booking_button_join_waitlist", lang), "join_waitlist", session_id=str(target)),
            restart_button(lang, kind, module),
        ])
    elif result.outcome == "full":
        dispatcher.utter_message(text=t("booking_slot_taken", lang),
                                 buttons=[restart_button(lang, kind, module)])
    else:
        reason = result.reason or "booking_error"
        buttons = []
        if reason == "booking_refused_module1_first":
            buttons = [button(schedule.module_title(1, lang), "book_classroom", module="1")]
        elif reason == "booking_refused_classroom_first":
            buttons = [button(t("booking_button_classroom", lang), "book_classroom",
                              module=str(module_of(module) or 1))]
        dispatcher.utter_message(text=t(reason, lang), buttons=buttons)


class ActionBookingStop(Action):
    def name(self) -> str:
        return "action_booking_stop"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        dispatcher.utter_message(text=t("booking_stopped", language_of(tracker)))
        return reset_slots() + [SlotSet("requested_slot", None)]


class ActionJoinWaitlist(Action):
    def name(self) -> str:
        return "action_join_waitlist"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        lang = language_of(tracker)
        session_id = entity_of(tracker, "session_id") or tracker.get_slot("booking_target")
        if not str(session_id or "").isdigit():
            dispatcher.utter_message(text=t("booking_refused_not_found", lang))
            return []
        prefill = await prefill_of(tracker)
        result = await attempt_as_user(
            dispatcher, tracker, "waitlist", store.join_waitlist, int(session_id),
            factory_name=detail_or_none(tracker.get_slot("booking_factory")) or prefill.get("factory_name"),
            contact=detail_or_none(tracker.get_slot("booking_contact")) or prefill.get("contact"),
            language=lang, enquiry_id=prefill.get("id"),
        )
        if result is None:
            return []
        if result.outcome == "joined":
            dispatcher.utter_message(text=t("booking_waitlist_joined", lang, position=result.position))
        elif result.outcome == "already_waiting":
            dispatcher.utter_message(text=t("booking_waitlist_already", lang, position=result.position))
        elif result.outcome == "not_full":
            dispatcher.utter_message(text=t("booking_waitlist_not_full", lang), buttons=[
                button(t("booking_button_book", lang), "book_classroom",
                       module=str(module_of(tracker.get_slot("booking_module")) or 1))])
        elif result.outcome == "already_booked":
            dispatcher.utter_message(text=t("booking_already_booked", lang, reference="—"),
                                     buttons=[button(t("booking_button_my_bookings", lang), "my_bookings")])
        else:
            dispatcher.utter_message(text=t(result.reason or "booking_error", lang))
        return []

