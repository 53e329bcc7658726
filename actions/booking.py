"""Booking in the conversation: classroom sessions and on-site consultations.

Flow (booking_form, slots filled by ValidateBookingForm's extract_ methods, questions asked by
the action_ask_ actions below; a booking request starts afresh in ValidateBookingForm.run):
    kind -> module (a consultation needs that module's classroom session, a later classroom
    module a Module 1 session: checked here, with a button to book the missing session, and
    only dates after that session are offered) -> city (classroom) or region (consultation)
    -> date buttons with seats left
    -> factory, attendees, contact (pre-filled from the latest enquiry; "skip" allowed)
    -> action_booking_summary (Confirm / Cancel) -> action_booking_confirm.
Outside the form: my bookings, cancel (asks first), reschedule (asks first), waitlist.

Every button payload fits Telegram's 64-byte callback_data. The reference is said only after
store.booking returned, i.e. after its transaction committed. The confirmation's idempotency
key comes from the sender, the chosen session and a nonce drawn when the flow started, so a
double tap (or Telegram redelivering the update) books once and repeats the same reference.
"""
from __future__ import annotations

import asyncio
import datetime as dt
from abc import ABC, abstractmethod
import hashlib
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import DomainDict, language_of
from i18n import t
from store import booking as store
from store import schedule
from store.db import Database, get_database

log = logging.getLogger(__name__)
T = TypeVar("T")
Button = dict[str, str]

FORM_SLOTS = ("booking_kind", "booking_module", "booking_place", "booking_target",
              "booking_factory", "booking_attendees", "booking_contact")
SKIPPED = "-"  # a detail the user chose not to give
UNAVAILABLE = "unavailable"  # fills the rest of the form when nothing can be booked
MAX_BUTTONS = 8
CALLBACK_LIMIT = 64  # bytes, Telegram's callback_data limit
# Intents that mean "leave the form / do something else", never a slot value.
INTERRUPTS = frozenset({"stop_form", "deny", "request_human", "my_bookings", "cancel_booking",
                        "reschedule_booking", "goodbye", "start_booking", "join_waitlist",
                        "confirm_booking"})
REFERENCE = re.compile(r"\bSC[-\s]?([A-Z0-9]{6})\b", re.IGNORECASE)
FULL_REFERENCE = re.compile(r"SC-[A-Z0-9]{6}")
CHINESE_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5}


def database() -> Database:
    """The store (tests replace this)."""
    return get_database()


async def _store(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    # Store calls block (SQLite may wait for its write lock): keep the action server's event
    # loop free for other conversations.
    return await asyncio.to_thread(call, database(), *args, **kwargs)


def button(title: str, intent: str, **entities: str) -> Button:
    payload = f"/{intent}"
    if entities:
        payload += "{" + ",".join(f'"{k}":"{v}"' for k, v in entities.items()) + "}"
    if len(payload.encode("utf-8")) > CALLBACK_LIMIT:
        raise ValueError(f"button payload longer than {CALLBACK_LIMIT} bytes: {payload}")
    return {"title": title, "payload": payload}


def _intent(tracker: Tracker) -> str:
    return str((tracker.latest_message.get("intent") or {}).get("name") or "")


def _entity(tracker: Tracker, name: str) -> str | None:
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") == name and entity.get("value") not in (None, ""):
            return str(entity["value"])
    return None


def _text(tracker: Tracker) -> str:
    return str(tracker.latest_message.get("text") or "").strip()


def _module_of(value: Any) -> int | None:
    """'2', 'module 2', '模块二', '第三个模块' -> the module number, or None."""
    text = str(value or "")
    digits = re.findall(r"[1-5]", text)
    if digits:
        return int(digits[0])
    for char, number in CHINESE_DIGITS.items():
        if char in text:
            return number
    return None


def reference_in(tracker: Tracker) -> str | None:
    """A booking reference from the ref entity or the message text."""
    # A button's entity is exact; NLU may extract only part of a typed reference ("SC-"),
    # so a value that is not a whole reference falls back to the text.
    value = _entity(tracker, "ref")
    if value and FULL_REFERENCE.fullmatch(store.normalise_reference(value)):
        return store.normalise_reference(value)
    match = REFERENCE.search(_text(tracker))
    return store.normalise_reference(match.group(1)) if match else None


def idempotency_key(sender_id: str, kind: str, target: str, nonce: str) -> str:
    """Same confirmation (sender, chosen session, this flow's nonce) -> same key."""
    raw = f"{sender_id}|{kind}|{target}|{nonce}"
    return "conv:" + hashlib.sha256(raw.encode()).hexdigest()[:40]


def _reset_slots() -> list[dict[str, Any]]:
    return [SlotSet(name, None) for name in FORM_SLOTS]


async def _user_id(tracker: Tracker) -> int:
    return await _store(store.ensure_user, tracker.sender_id, language_of(tracker))


def _module_buttons(lang: str, intent: str) -> list[Button]:
    return [button(schedule.module_title(m, lang), "choose_module", module=str(m))
            for m in schedule.MODULES]


def _restart_button(lang: str, kind: str | None, module: Any) -> Button:
    intent = "book_consultation" if kind == store.CONSULTATION else "book_classroom"
    return button(t("booking_button_other_date", lang), intent, module=str(module or 1))


def _offer_buttons(offers: list[store.Offer], lang: str) -> list[Button]:
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


def _needs_earlier_classroom(kind: str | None, module: int) -> int | None:
    """The module whose classroom session the factory must hold before booking this:
    a consultation follows its own module's classroom session; a classroom session after
    Module 1 follows a Module 1 session (store.booking checks both at booking)."""
    if kind == store.CONSULTATION:
        return module
    if kind == store.CLASSROOM and module != 1:
        return 1
    return None


async def _offered_from(tracker: Tracker, kind: str | None, module: int) -> dt.datetime | None:
    """From when this factory can be offered dates: the end of its classroom session of the
    module (consultation) or the start of its Module 1 session (a later classroom module).
    None when nothing is required, or when the required session is not booked."""
    required = _needs_earlier_classroom(kind, module)
    if required is None:
        return None
    read = store.classroom_ends if kind == store.CONSULTATION else store.classroom_starts
    return await _store(read, await _user_id(tracker), required)


def _time_filter(kind: str | None, offered_from: dt.datetime | None) -> dict[str, Any]:
    if offered_from is None:
        return {}
    return {"not_before": offered_from} if kind == store.CONSULTATION else {"after": offered_from}


async def _offers(tracker: Tracker, kind: str, module: int, place: str | None,
                  include_full: bool = False) -> list[store.Offer]:
    later = _time_filter(kind, await _offered_from(tracker, kind, module))
    if kind == store.CONSULTATION:
        return await _store(store.available_slots, module, place, **later)
    return await _store(store.available_sessions, module, place, include_full=include_full, **later)


async def _prefill(tracker: Tracker) -> dict[str, Any]:
    return await _store(store.latest_enquiry, tracker.sender_id) or {}


# --- starting ------------------------------------------------------------------------------


START_INTENTS = frozenset({"book_classroom", "book_consultation", "start_booking"})


def _starts_booking(tracker: Tracker) -> bool:
    """Does the user's message start a (new) booking that this turn has not started yet?

    At the form's activation always. While the form asks, a booking request starts again,
    except "classroom"/"consultation" as the answer to "which kind?" (that fills the kind).
    The start sets a nonce: once it is set after the message, the start has run.
    """
    intent = _intent(tracker)
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


def _start_events(tracker: Tracker) -> list[dict[str, Any]]:
    """A fresh booking: forget the last one's answers, keep what the message said."""
    events = _reset_slots()
    intent = _intent(tracker)
    if intent == "book_classroom":
        events.append(SlotSet("booking_kind", store.CLASSROOM))
    elif intent == "book_consultation":
        events.append(SlotSet("booking_kind", store.CONSULTATION))
    module = _module_of(_entity(tracker, "module"))
    if module:
        events.append(SlotSet("booking_module", str(module)))
    place = schedule.canonical_place(_entity(tracker, "place"))
    if place:
        events.append(SlotSet("booking_place", place))
    events.append(SlotSet("booking_nonce", uuid.uuid4().hex[:12]))
    return events


# --- the form ------------------------------------------------------------------------------


class ValidateBookingForm(FormValidationAction):
    def name(self) -> str:
        return "validate_booking_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[dict[str, Any]]:
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
        intent, text = _intent(tracker), _text(tracker).lower()
        if intent == "book_consultation" or "consult" in text or "咨询" in text:
            kind = store.CONSULTATION
        elif intent == "book_classroom" or "class" in text or "课堂" in text or "培训" in text:
            kind = store.CLASSROOM
        else:
            return {}
        values: dict[str, Any] = {"booking_kind": kind}
        module = _module_of(_entity(tracker, "module"))
        if module:
            values["booking_module"] = str(module)
        return values

    async def extract_booking_module(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                     domain: DomainDict) -> dict[str, Any]:
        if not self._asked(tracker, "booking_module") or _intent(tracker) in INTERRUPTS:
            return {}
        module = _module_of(_entity(tracker, "module") or _text(tracker))
        return {"booking_module": str(module)} if module else {}

    async def extract_booking_place(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                    domain: DomainDict) -> dict[str, Any]:
        if not self._asked(tracker, "booking_place") or _intent(tracker) in INTERRUPTS:
            return {}
        place = schedule.canonical_place(_entity(tracker, "place") or _text(tracker))
        if place is None:
            dispatcher.utter_message(text=t("booking_unknown_place", language_of(tracker)))
            return {}
        return {"booking_place": place}

    async def extract_booking_target(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                     domain: DomainDict) -> dict[str, Any]:
        if not self._asked(tracker, "booking_target") or _intent(tracker) in INTERRUPTS:
            return {}
        chosen = _entity(tracker, "session_id") or _entity(tracker, "slot_id")
        if chosen is None and _text(tracker).isdigit():
            # "2": the second date shown
            kind = tracker.get_slot("booking_kind")
            module = _module_of(tracker.get_slot("booking_module")) or 1
            offers = await _offers(tracker, kind, module, tracker.get_slot("booking_place"))
            index = int(_text(tracker)) - 1
            if 0 <= index < len(offers):
                chosen = str(offers[index].id)
        if chosen is None:
            dispatcher.utter_message(text=t("booking_choose_button", language_of(tracker)))
            return {}
        return {"booking_target": chosen}

    async def _free_text(self, tracker: Tracker, slot: str, prefill: str | None,
                         max_length: int = 200) -> dict[str, Any]:
        if not self._asked(tracker, slot):
            return {}
        intent, text = _intent(tracker), _text(tracker)
        if intent in INTERRUPTS or intent.startswith("faq_") and text.endswith(("?", "？")):
            return {}
        if intent == "skip" or text.lower() in ("skip", "跳过"):
            return {slot: SKIPPED}
        if intent == "affirm" and prefill:
            return {slot: prefill}  # "Keep"
        if not text or text.startswith("/"):
            return {}
        cleaned = re.sub(r"[<>]", "", text)[:max_length].strip()
        return {slot: cleaned} if cleaned else {}

    async def extract_booking_factory(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                      domain: DomainDict) -> dict[str, Any]:
        if not self._asked(tracker, "booking_factory"):
            return {}
        prefill = (await _prefill(tracker)).get("factory_name")
        return await self._free_text(tracker, "booking_factory", prefill)

    async def extract_booking_attendees(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                        domain: DomainDict) -> dict[str, Any]:
        return await self._free_text(tracker, "booking_attendees", None, max_length=600)

    async def extract_booking_contact(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                      domain: DomainDict) -> dict[str, Any]:
        if not self._asked(tracker, "booking_contact"):
            return {}
        prefill = (await _prefill(tracker)).get("contact")
        return await self._free_text(tracker, "booking_contact", prefill)

    # validation

    async def validate_booking_module(self, value: Any, dispatcher: CollectingDispatcher,
                                      tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        module = _module_of(value)
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
        module = _module_of(tracker.get_slot("booking_module"))
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
        offered_from = await _offered_from(tracker, kind, module)
        required = _needs_earlier_classroom(kind, module)
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
        places = await _store(store.places_with_offers, kind, module, include_full=True,
                              **_time_filter(kind, offered_from))
        if places:
            return {"booking_module": str(module)}
        dispatcher.utter_message(
            text=t("booking_no_offers", lang, module=schedule.module_title(module, lang)),
            buttons=[{"title": t("button_request_human", lang),
                      "payload": '/request_human{"reason":"asked"}'}],
        )
        return unavailable

    async def validate_booking_place(self, value: Any, dispatcher: CollectingDispatcher,
                                     tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        if value == UNAVAILABLE:
            return {"booking_place": value}
        kind = tracker.get_slot("booking_kind")
        module = _module_of(tracker.get_slot("booking_module")) or 1
        offers = await _offers(tracker, kind, module, value, include_full=True)
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
        chosen = await _store(store.offer, kind, int(value)) if str(value).isdigit() else None
        module = _module_of(tracker.get_slot("booking_module"))
        if chosen is None or chosen.module != module or chosen.seats_left <= 0:
            dispatcher.utter_message(text=t("booking_choose_button", language_of(tracker)))
            return {"booking_target": None}
        return {"booking_target": str(chosen.id)}


class _Ask(Action, ABC):
    """The question for one form slot. Abstract until a subclass names its `slot`, so the
    action server registers only the concrete questions."""

    @property
    @abstractmethod
    def slot(self) -> str: ...

    def name(self) -> str:
        return f"action_ask_{self.slot}"


class ActionAskBookingKind(_Ask):
    slot = "booking_kind"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[dict[str, Any]]:
        lang = language_of(tracker)
        module = _module_of(tracker.get_slot("booking_module"))
        extra = {"module": str(module)} if module else {}
        dispatcher.utter_message(text=t("booking_ask_kind", lang), buttons=[
            button(t("booking_button_classroom", lang), "book_classroom", **extra),
            button(t("booking_button_consultation", lang), "book_consultation", **extra),
        ])
        return []


class ActionAskBookingModule(_Ask):
    slot = "booking_module"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[dict[str, Any]]:
        lang = language_of(tracker)
        dispatcher.utter_message(text=t("booking_ask_module", lang),
                                 buttons=_module_buttons(lang, "choose_module"))
        return []


class ActionAskBookingPlace(_Ask):
    slot = "booking_place"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[dict[str, Any]]:
        lang = language_of(tracker)
        kind = tracker.get_slot("booking_kind")
        module = _module_of(tracker.get_slot("booking_module")) or 1
        # cities whose dates are all full stay listed: their buttons offer the waitlist
        places = await _store(store.places_with_offers, kind, module, include_full=True,
                              **_time_filter(kind, await _offered_from(tracker, kind, module)))
        key = "booking_ask_region" if kind == store.CONSULTATION else "booking_ask_city"
        dispatcher.utter_message(
            text=t(key, lang, module=schedule.module_title(module, lang)),
            buttons=[button(schedule.place_name(p, lang), "choose_place", place=p)
                     for p in places[:MAX_BUTTONS]],
        )
        return []


class ActionAskBookingTarget(_Ask):
    slot = "booking_target"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[dict[str, Any]]:
        lang = language_of(tracker)
        kind = tracker.get_slot("booking_kind")
        module = _module_of(tracker.get_slot("booking_module")) or 1
        place = tracker.get_slot("booking_place")
        values = {"module": schedule.module_title(module, lang),
                  "place": schedule.place_name(place, lang)}
        if kind == store.CONSULTATION:
            offers = await _offers(tracker, kind, module, place)
            dispatcher.utter_message(text=t("booking_ask_slot", lang, **values),
                                     buttons=_offer_buttons(offers, lang))
            return []
        offers = await _offers(tracker, kind, module, place, include_full=True)
        open_offers = [o for o in offers if o.seats_left > 0]
        if open_offers:
            dispatcher.utter_message(text=t("booking_ask_session", lang, **values),
                                     buttons=_offer_buttons(open_offers, lang))
        else:
            # every date full: each button joins that session's waitlist
            dispatcher.utter_message(text=t("booking_all_full", lang, **values),
                                     buttons=_offer_buttons(offers, lang))
        return []


class _AskDetail(_Ask, ABC):
    prefill_field: str | None = None
    ask_key = ""
    known_key = ""

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[dict[str, Any]]:
        lang = language_of(tracker)
        skip = button(t("booking_button_skip", lang), "skip")
        known = (await _prefill(tracker)).get(self.prefill_field) if self.prefill_field else None
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


# --- summary and confirmation --------------------------------------------------------------


def _given(value: Any, lang: str) -> str:
    return t("booking_not_given", lang) if value in (None, "", SKIPPED) else str(value)


def attendees_list(value: Any) -> list[dict[str, str]]:
    """'Li Wei (manager), Zhang Min，王芳' -> [{"name": ...}, ...] for Booking.attendees."""
    if value in (None, "", SKIPPED, UNAVAILABLE):
        return []
    parts = re.split(r"[,，;；、\n]+", str(value))
    return [{"name": part.strip()} for part in parts if part.strip()]


def _values(offer: store.Offer, lang: str) -> dict[str, Any]:
    return schedule.offer_values(offer, lang)


class ActionBookingSummary(Action):
    def name(self) -> str:
        return "action_booking_summary"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[dict[str, Any]]:
        lang = language_of(tracker)
        kind = tracker.get_slot("booking_kind")
        target = tracker.get_slot("booking_target")
        if target in (None, UNAVAILABLE) or not str(target).isdigit():
            return _reset_slots()  # nothing to offer: already said so
        offer = await _store(store.offer, kind, int(target))
        if offer is None:
            dispatcher.utter_message(text=t("booking_refused_not_found", lang))
            return _reset_slots()
        dispatcher.utter_message(
            text=t("booking_summary", lang, **_values(offer, lang),
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
                  domain: DomainDict) -> list[dict[str, Any]]:
        lang = language_of(tracker)
        kind = tracker.get_slot("booking_kind")
        target = tracker.get_slot("booking_target")
        nonce = tracker.get_slot("booking_nonce") or ""
        if kind not in (store.CLASSROOM, store.CONSULTATION) or not str(target or "").isdigit():
            dispatcher.utter_message(text=t("booking_nothing_to_confirm", lang),
                                     buttons=[button(t("booking_button_book", lang), "start_booking")])
            return []
        prefill = await _prefill(tracker)
        details = {
            "idempotency_key": idempotency_key(tracker.sender_id, kind, str(target), nonce),
            "factory_name": _detail(tracker.get_slot("booking_factory")),
            "attendees": attendees_list(tracker.get_slot("booking_attendees")),
            "contact": _detail(tracker.get_slot("booking_contact")),
            "language": lang,
            "enquiry_id": prefill.get("id"),
        }
        try:
            user_id = await _user_id(tracker)
            book = store.book_classroom if kind == store.CLASSROOM else store.book_consultation
            result = await _store(book, user_id, int(target), **details)
        except Exception:
            log.exception("booking failed for %s", tracker.sender_id)
            dispatcher.utter_message(text=t("booking_error", lang))
            return []
        say_result(dispatcher, result, lang, kind, tracker.get_slot("booking_module"), int(target))
        return []


def _detail(value: Any) -> str | None:
    return None if value in (None, "", SKIPPED, UNAVAILABLE) else str(value)


def say_result(dispatcher: CollectingDispatcher, result: store.BookingResult, lang: str,
               kind: str | None, module: Any, target: int) -> None:
    """Tell the user what a booking attempt did."""
    if result.booking is not None:
        values = {**_values(result.booking.offer, lang), "reference": result.booking.reference}
        key = {"booked": "booking_confirmed", "duplicate": "booking_duplicate",
               "already_booked": "booking_already_booked"}[result.outcome]
        dispatcher.utter_message(text=t(key, lang, **values),
                                 buttons=[button(t("booking_button_my_bookings", lang), "my_bookings")])
    elif result.outcome == "full" and kind == store.CLASSROOM:
        dispatcher.utter_message(text=t("booking_full", lang), buttons=[
            button(t("booking_button_join_waitlist", lang), "join_waitlist", session_id=str(target)),
            _restart_button(lang, kind, module),
        ])
    elif result.outcome == "full":
        dispatcher.utter_message(text=t("booking_slot_taken", lang),
                                 buttons=[_restart_button(lang, kind, module)])
    else:
        reason = result.reason or "booking_error"
        buttons = []
        if reason == "booking_refused_module1_first":
            buttons = [button(schedule.module_title(1, lang), "book_classroom", module="1")]
        elif reason == "booking_refused_classroom_first":
            buttons = [button(t("booking_button_classroom", lang), "book_classroom",
                              module=str(_module_of(module) or 1))]
        dispatcher.utter_message(text=t(reason, lang), buttons=buttons)


class ActionBookingStop(Action):
    def name(self) -> str:
        return "action_booking_stop"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[dict[str, Any]]:
        dispatcher.utter_message(text=t("booking_stopped", language_of(tracker)))
        return _reset_slots() + [SlotSet("requested_slot", None)]


class ActionJoinWaitlist(Action):
    def name(self) -> str:
        return "action_join_waitlist"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[dict[str, Any]]:
        lang = language_of(tracker)
        session_id = _entity(tracker, "session_id") or tracker.get_slot("booking_target")
        if not str(session_id or "").isdigit():
            dispatcher.utter_message(text=t("booking_refused_not_found", lang))
            return []
        prefill = await _prefill(tracker)
        try:
            user_id = await _user_id(tracker)
            result = await _store(
                store.join_waitlist, user_id, int(session_id),
                factory_name=_detail(tracker.get_slot("booking_factory")) or prefill.get("factory_name"),
                contact=_detail(tracker.get_slot("booking_contact")) or prefill.get("contact"),
                language=lang, enquiry_id=prefill.get("id"),
            )
        except Exception:
            log.exception("waitlist failed for %s", tracker.sender_id)
            dispatcher.utter_message(text=t("booking_error", lang))
            return []
        if result.outcome == "joined":
            dispatcher.utter_message(text=t("booking_waitlist_joined", lang, position=result.position))
        elif result.outcome == "already_waiting":
            dispatcher.utter_message(text=t("booking_waitlist_already", lang, position=result.position))
        elif result.outcome == "not_full":
            dispatcher.utter_message(text=t("booking_waitlist_not_full", lang), buttons=[
                button(t("booking_button_book", lang), "book_classroom",
                       module=str(_module_of(tracker.get_slot("booking_module")) or 1))])
        elif result.outcome == "already_booked":
            dispatcher.utter_message(text=t("booking_already_booked", lang, reference="—"),
                                     buttons=[button(t("booking_button_my_bookings", lang), "my_bookings")])
        else:
            dispatcher.utter_message(text=t(result.reason or "booking_error", lang))
        return []


# --- my bookings, cancel, reschedule -------------------------------------------------------


class ActionMyBookings(Action):
    def name(self) -> str:
        return "action_my_bookings"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[dict[str, Any]]:
        lang = language_of(tracker)
        user_id = await _user_id(tracker)
        bookings = await _store(store.my_bookings, user_id)
        if not bookings:
            dispatcher.utter_message(text=t("booking_none", lang),
                                     buttons=[button(t("booking_button_book", lang), "start_booking")])
            return []
        lines = [t("booking_list_header", lang)]
        buttons: list[Button] = []
        for item in bookings:
            values = {**_values(item.offer, lang), "reference": item.reference}
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
    user_id = await _user_id(tracker)
    reference = reference_in(tracker)
    if reference:
        found = await _store(store.booking_by_reference, user_id, reference)
        if found is None or found.status != "confirmed":
            dispatcher.utter_message(text=t("booking_not_found", lang, reference=reference),
                                     buttons=[button(t("booking_button_my_bookings", lang), "my_bookings")])
            return None
        return found
    bookings = await _store(store.my_bookings, user_id)
    if not bookings:
        dispatcher.utter_message(text=t("booking_none", lang),
                                 buttons=[button(t("booking_button_book", lang), "start_booking")])
        return None
    if len(bookings) == 1:
        return bookings[0]
    dispatcher.utter_message(text=t(question_key, lang), buttons=[
        button(t("booking_list_item", lang, **_values(b.offer, lang), reference=b.reference)[:60],
               intent, ref=b.reference)
        for b in bookings[:MAX_BUTTONS]])
    return None


class ActionCancelBooking(Action):
    """Ask before cancelling: 'Cancel SC-… (…)?' with Yes / No."""

    def name(self) -> str:
        return "action_cancel_booking"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[dict[str, Any]]:
        lang = language_of(tracker)
        chosen = await _choose_booking(dispatcher, tracker, lang, "cancel_booking", "booking_cancel_which")
        if chosen is not None:
            dispatcher.utter_message(
                text=t("booking_cancel_question", lang, **_values(chosen.offer, lang),
                       reference=chosen.reference),
                buttons=[button(t("booking_button_yes_cancel", lang), "confirm_cancel", ref=chosen.reference),
                         button(t("booking_button_keep_booking", lang), "keep_booking")])
        return []


class ActionCancelConfirmed(Action):
    def name(self) -> str:
        return "action_cancel_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[dict[str, Any]]:
        lang = language_of(tracker)
        reference = reference_in(tracker)
        if not reference:
            dispatcher.utter_message(text=t("booking_cancel_which", lang),
                                     buttons=[button(t("booking_button_my_bookings", lang), "my_bookings")])
            return []
        try:
            user_id = await _user_id(tracker)
            result = await _store(store.cancel_booking, user_id, reference)
        except Exception:
            log.exception("cancel failed for %s", tracker.sender_id)
            dispatcher.utter_message(text=t("booking_error", lang))
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
                  domain: DomainDict) -> list[dict[str, Any]]:
        dispatcher.utter_message(text=t("booking_kept", language_of(tracker)))
        return []


def _target_entity(kind: str) -> str:
    return "slot_id" if kind == store.CONSULTATION else "session_id"


class ActionRescheduleBooking(Action):
    """Which booking, then its other dates as buttons."""

    def name(self) -> str:
        return "action_reschedule_booking"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[dict[str, Any]]:
        lang = language_of(tracker)
        chosen = await _choose_booking(dispatcher, tracker, lang, "reschedule_booking",
                                       "booking_reschedule_which")
        if chosen is None:
            return []
        current = chosen.offer
        place = current.place if chosen.kind == store.CONSULTATION else None
        offers = [o for o in await _offers(tracker, chosen.kind, current.module, place)
                  if o.id != current.id]
        values = {**_values(current, lang), "reference": chosen.reference}
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
    value = _entity(tracker, "session_id") or _entity(tracker, "slot_id")
    return value if value and value.isdigit() else None


class ActionRescheduleAsk(Action):
    def name(self) -> str:
        return "action_reschedule_ask"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[dict[str, Any]]:
        lang = language_of(tracker)
        reference, target = reference_in(tracker), _target_in(tracker)
        user_id = await _user_id(tracker)
        current = await _store(store.booking_by_reference, user_id, reference) if reference else None
        new = await _store(store.offer, current.kind, int(target)) if current and target else None
        if current is None or new is None:
            dispatcher.utter_message(text=t("booking_not_found", lang, reference=reference or "—"))
            return []
        dispatcher.utter_message(
            text=t("booking_reschedule_question", lang, **_values(new, lang), reference=reference,
                   old_date=schedule.format_date(current.offer.starts_at, current.offer.timezone, lang)),
            buttons=[button(t("booking_button_yes_move", lang), "confirm_reschedule", ref=current.reference,
                            **{_target_entity(current.kind): target}),
                     button(t("booking_button_keep_booking", lang), "keep_booking")])
        return []


class ActionRescheduleConfirmed(Action):
    def name(self) -> str:
        return "action_reschedule_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[dict[str, Any]]:
        lang = language_of(tracker)
        reference, target = reference_in(tracker), _target_in(tracker)
        if not reference or not target:
            dispatcher.utter_message(text=t("booking_not_found", lang, reference=reference or "—"))
            return []
        try:
            user_id = await _user_id(tracker)
            result = await _store(store.reschedule_booking, user_id, reference, int(target))
        except Exception:
            log.exception("reschedule failed for %s", tracker.sender_id)
            dispatcher.utter_message(text=t("booking_error", lang))
            return []
        if result.outcome in ("booked", "duplicate") and result.booking is not None:
            dispatcher.utter_message(
                text=t("booking_rescheduled", lang, **_values(result.booking.offer, lang),
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
