"""Booking in the conversation: classroom sessions and on-site consultations.

Flow (booking_form, slots filled by ValidateBookingForm's extract_ methods, questions asked by
the action_ask_ actions; a booking request starts afresh in ValidateBookingForm.run):
    kind -> module (a consultation needs that module's classroom session, a later classroom
    module a Module 1 session: checked here, with a button to book the missing session, and
    only dates after that session are offered) -> city (classroom) or region (consultation)
    -> date buttons with seats left
    -> factory, attendees, contact (pre-filled from the latest enquiry; "skip" allowed)
    -> action_booking_summary (Confirm / Cancel) -> action_booking_confirm.
Outside the form: my bookings, cancel (asks first), reschedule (asks first), waitlist.

One module per step:
    offers.py        what the steps share: the form's slots, modules, references, offers
    form.py          starting a booking and reading each answer (validate_booking_form)
    questions.py     the form's questions (action_ask_booking_*)
    confirmation.py  summary, confirmation, stop, waitlist
    my_bookings.py   the list, cancel, reschedule
Every button is built by actions.common.button (Telegram's 64-byte callback_data).
"""
from rasa_sdk import Action

from actions.booking.confirmation import (
    ActionBookingConfirm,
    ActionBookingStop,
    ActionBookingSummary,
    ActionJoinWaitlist,
    attendees_list,
    say_result,
)
from actions.booking.form import ValidateBookingForm, _starts_booking
from actions.booking.my_bookings import (
    ActionBookingKept,
    ActionCancelBooking,
    ActionCancelConfirmed,
    ActionMyBookings,
    ActionRescheduleAsk,
    ActionRescheduleBooking,
    ActionRescheduleConfirmed,
)
from actions.booking.offers import FORM_SLOTS, SKIPPED, UNAVAILABLE, idempotency_key, reference_in
from actions.booking.questions import (
    ActionAskBookingAttendees,
    ActionAskBookingContact,
    ActionAskBookingFactory,
    ActionAskBookingKind,
    ActionAskBookingModule,
    ActionAskBookingPlace,
    ActionAskBookingTarget,
)
from actions.common import CALLBACK_LIMIT, button
from i18n import t

__all__ = [
    "CALLBACK_LIMIT", "FORM_SLOTS", "SKIPPED", "UNAVAILABLE",
    "ActionAskBookingAttendees", "ActionAskBookingContact", "ActionAskBookingFactory",
    "ActionAskBookingKind", "ActionAskBookingModule", "ActionAskBookingPlace",
    "ActionAskBookingTarget", "ActionBookingConfirm", "ActionBookingKept", "ActionBookingStop",
    "ActionBookingSummary", "ActionCancelBooking", "ActionCancelConfirmed", "ActionJoinWaitlist",
    "ActionMyBookings", "ActionRescheduleAsk", "ActionRescheduleBooking",
    "ActionRescheduleConfirmed", "ValidateBookingForm", "_starts_booking", "attendees_list",
    "Action", "button", "idempotency_key", "reference_in", "say_result", "t",
]
