"""What the booking steps share: the form's slots, reading a module or a reference, and
the offers (dates with seats, consultation slots) this factory may book."""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from typing import Any, TypeVar

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (
    Button,
    Events,
    attempt,
    button,
    entity_of,
    language_of,
    store_call,
    text_of,
)
from i18n import t
from store import booking as store, schedule

T = TypeVar("T")

FORM_SLOTS = ("booking_kind", "booking_module", "booking_place", "booking_target",
              "booking_factory", "booking_attendees", "booking_contact")
SKIPPED = "-"  # a detail the user chose not to give
UNAVAILABLE = "unavailable"  # fills the rest of the form when nothing can be booked
MAX_BUTTONS = 8
# Intents that mean "leave the form / do something else", never a slot value.
INTERRUPTS = frozenset({"stop_form", "deny", "request_human", "my_bookings", "cancel_booking",
                        "reschedule_booking", "goodbye", "start_booking", "join_waitlist",
                        "confirm_booking"})
REFERENCE = re.compile(r"\bSC[-\s]?([A-Z0-9]{6})\b", re.IGNORECASE)
FULL_REFERENCE = re.compile(r"SC-[A-Z0-9]{6}")
CHINESE_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5}
# "one" names a module only as "module one" or alone: "the one about safety" does not.
ENGLISH_NUMBERS = re.compile(
    r"\bmodule\s+(one)\b|^\W*(one)\W*$|\b(first|two|second|three|third|four|fourth|five|fifth)\b", re.IGNORECASE)
ENGLISH_VALUES = {"one": 1, "first": 1, "two": 2, "second": 2, "three": 3, "third": 3, "four": 4, "fourth": 4,
                  "five": 5, "fifth": 5}


def module_of(value: Any) -> int | None:
    """'2', 'module 2', 'module two', 'third module', '模块二', '第三个模块' -> the module
    number, or None."""
    text = str(value or "")
    digits = re.findall(r"[1-5]", text)
    if digits:
        return int(digits[0])
    word = ENGLISH_NUMBERS.search(text)
    if word:
        return ENGLISH_VALUES[next(g for g in word.groups() if g).lower()]
    for char, number in CHINESE_DIGITS.items():
        if char in text:
            return number
    return None


def kind_and_module(tracker: Tracker) -> tuple[str | None, int]:
    """The kind and module chosen so far (Module 1 until one is chosen)."""
    return tracker.get_slot("booking_kind"), module_of(tracker.get_slot("booking_module")) or 1


def reference_in(tracker: Tracker) -> str | None:
    """A booking reference from the ref entity or the message text."""
    # A button's entity is exact; NLU may extract only part of a typed reference ("SC-"),
    # so a value that is not a whole reference falls back to the text.
    value = entity_of(tracker, "ref")
    if value and FULL_REFERENCE.fullmatch(store.normalise_reference(value)):
        return store.normalise_reference(value)
    match = REFERENCE.search(text_of(tracker))
    return store.normalise_reference(match.group(1)) if match else None


def idempotency_key(sender_id: str, kind: str, target: str, nonce: str) -> str:
    """Same confirmation (sender, chosen session, this flow's nonce) -> same key."""
    raw = f"{sender_id}|{kind}|{target}|{nonce}"
    return "conv:" + hashlib.sha256(raw.encode()).hexdigest()[:40]


def reset_slots() -> Events:
    return [SlotSet(name, None) for name in FORM_SLOTS]


async def user_id_of(tracker: Tracker) -> int:
    return await store_call(store.ensure_user, tracker.sender_id, language_of(tracker))


async def as_user(tracker: Tracker, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`call(database, user_id, *args, **kwargs)` for this conversation's user, off the loop."""
    return await store_call(call, await user_id_of(tracker), *args, **kwargs)


async def attempt_as_user(dispatcher: CollectingDispatcher, tracker: Tracker, what: str,
                          call: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """A booking write for this conversation's user; None after saying it failed."""
    return await attempt(dispatcher, tracker, what, as_user(tracker, call, *args, **kwargs),
                         error_key="booking_error")


def detail_or_none(value: Any) -> str | None:
    """A detail the user gave, or None (skipped, or nothing could be booked)."""
    return None if value in (None, "", SKIPPED, UNAVAILABLE) else str(value)


def module_buttons(lang: str) -> list[Button]:
    return [button(schedule.module_title(m, lang), "choose_module", module=str(m))
            for m in schedule.MODULES]


def restart_button(lang: str, kind: str | None, module: Any) -> Button:
    intent = "book_consultation" if kind == store.CONSULTATION else "book_classroom"
    return button(t("booking_button_other_date", lang), intent, module=str(module or 1))


def offer_buttons(offers: list[store.Offer], lang: str) -> list[Button]:
    buttons = []
    for offer in offers[:MAX_BUTTONS]:
        if offer.kind == store.CONSULTATION:
            buttons.append(button(schedule.offer_line(offer, lang), "choose_session",
                                  slot_id=str(offer.id)))
        elif offer.seats_left > 0:
            buttons.append(button(schedule.offer_line(offer, lang), "choose_session",
                                  session_id=str(offer.id)))
        else:
            buttons.append(button(schedule.offer_line(offer, lang), "join_waitlist",
                                  session_id=str(offer.id)))
    return buttons


def needs_earlier_classroom(kind: str | None, module: int) -> int | None:
    """The module whose classroom session the factory must hold before booking this:
    a consultation follows its own module's classroom session; a classroom session after
    Module 1 follows a Module 1 session (store.booking checks both at booking)."""
    if kind == store.CONSULTATION:
        return module
    if kind == store.CLASSROOM and module != 1:
        return 1
    return None


async def earliest_offer_time(tracker: Tracker, kind: str | None, module: int) -> dt.datetime | None:
    """From when this factory can be offered dates: the end of its classroom session of the
    module (consultation) or the start of its Module 1 session (a later classroom module).
    None when nothing is required, or when the required session is not booked."""
    required = needs_earlier_classroom(kind, module)
    if required is None:
        return None
    read = store.classroom_ends if kind == store.CONSULTATION else store.classroom_starts
    return await store_call(read, await user_id_of(tracker), required)


def time_filter(kind: str | None, offered_from: dt.datetime | None) -> dict[str, Any]:
    if offered_from is None:
        return {}
    return {"not_before": offered_from} if kind == store.CONSULTATION else {"after": offered_from}


async def offers_for(tracker: Tracker, kind: str | None, module: int, place: str | None,
                     include_full: bool = False) -> list[store.Offer]:
    later = time_filter(kind, await earliest_offer_time(tracker, kind, module))
    if kind == store.CONSULTATION:
        return await store_call(store.available_slots, module, place, **later)
    return await store_call(store.available_sessions, module, place, include_full=include_full, **later)


async def prefill_of(tracker: Tracker) -> dict[str, Any]:
    return await store_call(store.latest_enquiry, tracker.sender_id) or {}

