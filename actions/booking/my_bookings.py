"""A factory's bookings: the list, cancelling (asks first) and rescheduling (asks first)."""
from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.booking.offers import MAX_BUTTONS, attempt_as_user, offers_for, reference_in, user_id_of
from actions.common import Button, DomainDict, Events, button, entity_of, language_of, store_call
from i18n import t
from store import booking as store, schedule
from store.kinds import BookingStatus


class ActionMyBookings(Action):
    def name(self) -> str:
        return "action_my_bookings"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        lang = language_of(tracker)
        user_id = await user_id_of(tracker)
        bookings = await store_call(store.my_bookings, user_id)
        if not bookings:
            dispatcher.utter_message(text=t("booking_none", lang),
                                     buttons=[button(t("booking_button_book", lang), "start_booking")])
            return []
        lines = [t("booking_list_header", lang)]
        buttons: list[Button] = []
        for item in bookings:
            values = {**schedule.offer_values(item.offer, lang), "reference": item.reference}
            lines.append(t("booking_list_item", lang, **values))
            buttons.append(button(t("booking_button_reschedule_ref", lang, reference=item.reference),
                                  "reschedule_booking", ref=item.reference))
            buttons.append(button(t("booking_button_cancel_ref", lang, reference=item.reference),
                                  "cancel_booking", ref=item.reference))
        dispatcher.utter_message(text="\n".join(lines), buttons=buttons[:2 * MAX_BUTTONS])
        return []


async def _choose_booking(dispatcher: CollectingDispatcher, tracker: Tracker, lang: str,
                          intent: str, question_key: str) -> store.BookingView | None:
    """The booking the message names, the only one the factory has, or None after asking
    which (buttons) / saying there is none / saying it is not theirs."""
    user_id = await user_id_of(tracker)
    reference = reference_in(tracker)
    if reference:
        found = await store_call(store.booking_by_reference, user_id, reference)
        if found is None or found.status != BookingStatus.CONFIRMED:
            dispatcher.utter_message(text=t("booking_not_found", lang, reference=reference),
                                     buttons=[button(t("booking_button_my_bookings", lang), "my_bookings")])
            return None
        return found
    bookings = await store_call(store.my_bookings, user_id)
    if not bookings:
        dispatcher.utter_message(text=t("booking_none", lang),
                                 buttons=[button(t("booking_button_book", lang), "start_booking")])
        return None
    if len(bookings) == 1:
        return bookings[0]
    dispatcher.utter_message(text=t(question_key, lang), buttons=[
        button(t("booking_list_item", lang, **schedule.offer_values(b.offer, lang), reference=b.reference)[:60],
               intent, ref=b.reference)
        for b in bookings[:MAX_BUTTONS]])
    return None


class ActionCancelBooking(Action):
    """Ask before cancelling: 'Cancel SC-… (…)?' with Yes / No."""

    def name(self) -> str:
        return "action_cancel_booking"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        lang = language_of(tracker)
        chosen = await _choose_booking(dispatcher, tracker, lang, "cancel_booking", "booking_cancel_which")
        if chosen is not None:
            dispatcher.utter_message(
                text=t("booking_cancel_question", lang, **schedule.offer_values(chosen.offer, lang),
                       reference=chosen.reference),
                buttons=[button(t("booking_button_yes_cancel", lang), "confirm_cancel", ref=chosen.reference),
                         button(t("booking_button_keep_booking", lang), "keep_booking")])
        return []


class ActionCancelConfirmed(Action):
    def name(self) -> str:
        return "action_cancel_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        lang = language_of(tracker)
        reference = reference_in(tracker)
        if not reference:
            dispatcher.utter_message(text=t("booking_cancel_which", lang),
                                     buttons=[button(t("booking_button_my_bookings", lang), "my_bookings")])
            return []
        result = await attempt_as_user(dispatcher, tracker, "cancel", store.cancel_booking, reference)
        if result is None:
            return []
        if result.outcome == "cancelled":
            dispatcher.utter_message(text=t("booking_cancelled", lang, reference=reference))
        elif result.outcome == "already_cancelled":
            dispatcher.utter_message(text=t("booking_already_cancelled", lang, reference=reference))
        elif result.outcome == "refused":
            dispatcher.utter_message(text=t(result.reason or "booking_error", lang))
        else:  # not found, or someone else's: the same answer
            dispatcher.utter_message(text=t("booking_not_found", lang, reference=reference))
        return []


class ActionBookingKept(Action):
    def name(self) -> str:
        return "action_booking_kept"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        dispatcher.utter_message(text=t("booking_kept", language_of(tracker)))
        return []


def _target_entity(kind: str) -> str:
    return "slot_id" if kind == store.CONSULTATION else "session_id"


class ActionRescheduleBooking(Action):
    """Which booking, then its other dates as buttons."""

    def name(self) -> str:
        return "action_reschedule_booking"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        lang = language_of(tracker)
        chosen = await _choose_booking(dispatcher, tracker, lang, "reschedule_booking",
                                       "booking_reschedule_which")
        if chosen is None:
            return []
        current = chosen.offer
        place = current.place if chosen.kind == store.CONSULTATION else None
        offers = [o for o in await offers_for(tracker, chosen.kind, current.module, place)
                  if o.id != current.id]
        values = {**schedule.offer_values(current, lang), "reference": chosen.reference}
        if not offers:
            dispatcher.utter_message(text=t("booking_reschedule_none", lang, **values))
            return []
        dispatcher.utter_message(
            text=t("booking_reschedule_options", lang, **values),
            buttons=[button(schedule.offer_line(o, lang), "reschedule_to", ref=chosen.reference,
                            **{_target_entity(chosen.kind): str(o.id)})
                     for o in offers[:MAX_BUTTONS]]
            + [button(t("booking_button_keep_booking", lang), "keep_booking")],
        )
        return []


def _target_in(tracker: Tracker) -> str | None:
    value = entity_of(tracker, "session_id") or entity_of(tracker, "slot_id")
    return value if value and value.isdigit() else None


class ActionRescheduleAsk(Action):
    def name(self) -> str:
        return "action_reschedule_ask"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        lang = language_of(tracker)
        reference, target = reference_in(tracker), _target_in(tracker)
        user_id = await user_id_of(tracker)
        current = await store_call(store.booking_by_reference, user_id, reference) if reference else None
        new = await store_call(store.offer, current.kind, int(target)) if current and target else None
        if current is None or new is None or target is None:
            dispatcher.utter_message(text=t("booking_not_found", lang, reference=reference or "—"))
            return []
        dispatcher.utter_message(
            text=t("booking_reschedule_question", lang, **schedule.offer_values(new, lang), reference=reference,
                   old_date=schedule.format_date(current.offer.starts_at, current.offer.timezone, lang)),
            buttons=[button(t("booking_button_yes_move", lang), "confirm_reschedule", ref=current.reference,
                            **{_target_entity(current.kind): target}),
                     button(t("booking_button_keep_booking", lang), "keep_booking")])
        return []


class ActionRescheduleConfirmed(Action):
    def name(self) -> str:
        return "action_reschedule_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        lang = language_of(tracker)
        reference, target = reference_in(tracker), _target_in(tracker)
        if not reference or not target:
            dispatcher.utter_message(text=t("booking_not_found", lang, reference=reference or "—"))
            return []
        result = await attempt_as_user(dispatcher, tracker, "reschedule", store.reschedule_booking,
                                       reference, int(target))
        if result is None:
            return []
        if result.outcome in ("booked", "duplicate") and result.booking is not None:
            dispatcher.utter_message(
                text=t("booking_rescheduled", lang, **schedule.offer_values(result.booking.offer, lang),
                       reference=result.booking.reference),
                buttons=[button(t("booking_button_my_bookings", lang), "my_bookings")])
        elif result.outcome == "full":
            dispatcher.utter_message(text=t("booking_reschedule_full", lang, reference=reference))
        elif result.outcome == "already_booked":
            dispatcher.utter_message(text=t("booking_already_booked", lang, reference=reference))
        elif result.reason == "booking_refused_not_found":
            dispatcher.utter_message(text=t("booking_not_found", lang, reference=reference))
        else:
            dispatcher.utter_message(text=t(result.reason or "booking_error", lang))
        return []
