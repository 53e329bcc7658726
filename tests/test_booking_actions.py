"""The booking conversation's actions, against a real (SQLite) store."""
from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import actions.booking as ab
import actions.common
from actions.booking.offers import module_of
from i18n import t
from store import booking as store
from store.models import Enquiry, User
from tests.test_booking_support import (
    FUTURE,
    add_session,
    add_slot,
    confirmed_count,
    notifications,
    seats_taken,
)

SENDER = "tg-777"


@pytest.fixture
def db(sqlite_db, monkeypatch):
    monkeypatch.setattr(actions.common, "database", lambda: sqlite_db)
    return sqlite_db


def tracker(intent: str = "", text: str = "", entities: dict[str, str] | None = None,
            slots: dict[str, Any] | None = None, lang: str = "en", sender: str = SENDER) -> Tracker:
    latest = {"intent": {"name": intent, "confidence": 0.95}, "text": text,
              "entities": [{"entity": k, "value": v} for k, v in (entities or {}).items()],
              "metadata": {"language": lang}}
    return Tracker(sender, {"language": lang, **(slots or {})}, latest,
                   [{"event": "user", "text": text, "parse_data": latest}], False, None, {},
                   "action_listen")


async def run(action, t: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, t, {})
    return dispatcher.messages, events


def buttons(messages) -> list[dict[str, str]]:
    return [b for m in messages for b in m.get("buttons") or []]


def slots_of(events) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def form_slots(session_id: int, **extra: Any) -> dict[str, Any]:
    return {"booking_kind": "classroom", "booking_module": "1", "booking_place": "Dongguan",
            "booking_target": str(session_id), "booking_factory": "Pearl Garments",
            "booking_attendees": "Li Wei, Zhang Min", "booking_contact": "+86 138 0000 0000",
            "booking_nonce": "n1", **extra}


# --- buttons --------------------------------------------------------------------------------


def test_every_payload_fits_telegram_callback_data():
    longest = ab.button("x", "confirm_reschedule", ref="SC-7K3F9Q", session_id="9999999")
    assert len(longest["payload"].encode()) <= 64
    with pytest.raises(ValueError):
        ab.button("x", "confirm_reschedule", ref="SC-7K3F9Q" * 3, session_id="1")
    assert json.loads("{" + longest["payload"].split("{", 1)[1]) == {"ref": "SC-7K3F9Q", "session_id": "9999999"}


async def test_date_buttons_show_local_date_city_and_seats(db):
    sid = add_session(db, city="Dongguan", capacity=5, seats_taken=2,
                      starts_at=dt.datetime(2027, 1, 12, 1, 0, tzinfo=dt.UTC))
    slots = {"booking_kind": "classroom", "booking_module": "1", "booking_place": "Dongguan"}
    msgs, _ = await run(ab.ActionAskBookingTarget(), tracker(slots=slots))
    assert buttons(msgs) == [{"title": "12 Jan 2027 (Tue), Dongguan, 3 seats left",
                              "payload": f'/choose_session{{"session_id":"{sid}"}}'}]
    msgs, _ = await run(ab.ActionAskBookingTarget(), tracker(slots=slots, lang="zh"))
    assert buttons(msgs)[0]["title"] == "2027年1月12日（周二），东莞，剩3个名额"


async def test_full_sessions_offer_the_waitlist(db):
    sid = add_session(db, city="Foshan", capacity=2, seats_taken=2)
    slots = {"booking_kind": "classroom", "booking_module": "1", "booking_place": "Foshan"}
    msgs, _ = await run(ab.ActionAskBookingTarget(), tracker(slots=slots))
    assert "waitlist" in msgs[0]["text"]
    assert buttons(msgs)[0]["payload"] == f'/join_waitlist{{"session_id":"{sid}"}}'


async def test_place_question_lists_places_with_dates(db):
    add_session(db, city="Chengdu")
    add_session(db, city="Dalian", capacity=1, seats_taken=1)
    msgs, _ = await run(
        ab.ActionAskBookingPlace(), tracker(slots={"booking_kind": "classroom", "booking_module": "1"}, lang="zh")
    )
    # Dalian's only date is full: still listed, its date button offers the waitlist
    assert [(b["title"], b["payload"]) for b in buttons(msgs)] == [
        ("成都", '/choose_place{"place":"Chengdu"}'), ("大连", '/choose_place{"place":"Dalian"}')]
    add_session(db, city="Shanghai", module=3, capacity=1, seats_taken=1)
    msgs, _ = await run(
        ab.ActionAskBookingPlace(), tracker(slots={"booking_kind": "consultation", "booking_module": "1"})
    )
    assert buttons(msgs) == []


# --- the form -------------------------------------------------------------------------------


DOMAIN = yaml.safe_load(open("domain.yml", encoding="utf-8"))


def in_form(t: Tracker, requested: str) -> Tracker:
    t.active_loop = {"name": "booking_form"}
    t.slots["requested_slot"] = requested
    return t


async def test_start_at_activation_reads_kind_module_and_draws_a_nonce(db):
    add_session(db, city="Dongguan", module=2)
    old = {"booking_target": "99", "booking_place": "Shanghai", "booking_factory": "Old Ltd"}
    t = tracker("book_classroom", entities={"module": "2"}, slots={"requested_slot": "booking_kind", **old})
    messages, events = await run(ab.ValidateBookingForm(), t)
    values = slots_of(events)
    assert values["booking_kind"] == "classroom" and values["booking_module"] == "2"
    assert values["booking_target"] is None and values["booking_place"] is None
    assert values["booking_factory"] is None and len(values["booking_nonce"]) == 12
    # the start is validated as slots set before the form would be: no complaint about the
    # emptied ones, the nonce drawn once
    assert [e["name"] for e in events if e["event"] == "slot"].count("booking_nonce") == 1
    assert messages == []


async def test_start_runs_once_per_message(db):
    t = tracker("book_classroom", slots={"requested_slot": "booking_kind"})
    t.events.append({"event": "slot", "name": "booking_nonce", "value": "n1"})
    assert not ab._starts_booking(t)  # this message already started a booking


async def test_a_new_request_while_the_form_asks_starts_again(db):
    t = in_form(tracker("book_consultation", slots=form_slots(7)), "booking_factory")
    _, events = await run(ab.ValidateBookingForm(), t)
    values = slots_of(events)
    assert values["booking_kind"] == "consultation" and values["booking_target"] is None
    assert values["booking_nonce"] != "n1"


async def test_classroom_as_the_answer_to_which_kind_fills_the_kind(db):
    t = in_form(tracker("book_classroom", "classroom please", slots={"booking_module": "3"}), "booking_kind")
    assert not ab._starts_booking(t)
    t = in_form(tracker("start_booking", "I want to book", slots={"booking_module": "3"}), "booking_kind")
    assert ab._starts_booking(t)  # a new request, not an answer


async def test_extraction_reads_only_the_requested_slot(db):
    form = ab.ValidateBookingForm()
    d = CollectingDispatcher()
    asked_place = tracker("inform_factory", "我们在东莞", slots={"requested_slot": "booking_place"})
    assert await form.extract_booking_place(d, asked_place, {}) == {"booking_place": "Dongguan"}
    assert await form.extract_booking_module(d, asked_place, {}) == {}
    asked_module = tracker("faq_module2", "module 2", slots={"requested_slot": "booking_module"})
    assert await form.extract_booking_module(d, asked_module, {}) == {"booking_module": "2"}
    stop = tracker("stop_form", "stop", slots={"requested_slot": "booking_factory"})
    assert await form.extract_booking_factory(d, stop, {}) == {}
    skip = tracker("skip", "跳过", slots={"requested_slot": "booking_attendees"})
    assert await form.extract_booking_attendees(d, skip, {}) == {"booking_attendees": ab.SKIPPED}
    typed = tracker("nlu_fallback", "Pearl <b>Garments</b>", slots={"requested_slot": "booking_factory"})
    assert await form.extract_booking_factory(d, typed, {}) == {"booking_factory": "Pearl bGarments/b"}


async def test_keep_uses_the_enquiry(db):
    with db.session() as s:
        user = User(channel="telegram", external_id="777", sender_id=SENDER)
        s.add(user)
        s.flush()
        s.add(Enquiry(user_id=user.id, outcome="eligible", reason="ok", consent=True,
                      factory_name="Dongguan Pearl Garments", contact="pearl@example.com"))
    msgs, _ = await run(ab.ActionAskBookingFactory(), tracker())
    assert "Dongguan Pearl Garments" in msgs[0]["text"]
    assert buttons(msgs)[0]["payload"] == "/affirm"
    form = ab.ValidateBookingForm()
    keep = tracker("affirm", "/affirm", slots={"requested_slot": "booking_contact"})
    assert await form.extract_booking_contact(CollectingDispatcher(), keep, {}) == {
        "booking_contact": "pearl@example.com"}
    # The prompt says "Keep it, or type another name": typed, it keeps the name too.
    for intent, text in (("keep_booking", "keep it"), ("keep_booking", "保留"), ("affirm", "ok")):
        typed = tracker(intent, text, slots={"requested_slot": "booking_factory"})
        assert await form.extract_booking_factory(CollectingDispatcher(), typed, {}) == {
            "booking_factory": "Dongguan Pearl Garments"}


async def test_ok_or_keep_with_nothing_to_keep_is_not_taken_as_the_answer(db):
    """No enquiry, so no Keep button: "ok" is not a factory's name, nor "keep it" a contact."""
    form = ab.ValidateBookingForm()
    for intent, text, slot in (("affirm", "ok", "booking_factory"), ("keep_booking", "keep it", "booking_contact"),
                               ("affirm", "好的", "booking_attendees")):
        d = CollectingDispatcher()
        typed = tracker(intent, text, slots={"requested_slot": slot})
        extract = getattr(form, f"extract_{slot}")
        assert await extract(d, typed, {}) == {}
        assert [m["text"] for m in d.messages] == [t("booking_type_answer", "en")]


def module_1_seat(db) -> int:
    """A Module 1 classroom seat for SENDER (later modules follow it); returns the user id."""
    user = store.ensure_user(db, SENDER)
    assert store.book_classroom(db, user, add_session(db, module=1)).outcome == "booked"
    return user


async def test_no_dates_for_a_module_ends_the_form_politely(db):
    module_1_seat(db)
    form = ab.ValidateBookingForm()
    d = CollectingDispatcher()
    result = await form.validate_booking_module("5", d, tracker(slots={"booking_kind": "classroom"}), {})
    assert result["booking_target"] == ab.UNAVAILABLE
    assert "no open dates" in d.messages[0]["text"]
    msgs, events = await run(ab.ActionBookingSummary(), tracker(slots={"booking_target": ab.UNAVAILABLE}))
    assert msgs == [] and slots_of(events)["booking_target"] is None


# --- confirmation ---------------------------------------------------------------------------


async def test_summary_then_confirm_twice_books_once(db):
    sid = add_session(db, city="Dongguan")
    msgs, _ = await run(ab.ActionBookingSummary(), tracker(slots=form_slots(sid)))
    assert "Pearl Garments" in msgs[0]["text"] and "Li Wei, Zhang Min" in msgs[0]["text"]
    assert [b["payload"] for b in buttons(msgs)] == ["/confirm_booking", "/stop_form"]
    first, _ = await run(ab.ActionBookingConfirm(), tracker("confirm_booking", slots=form_slots(sid)))
    again, _ = await run(ab.ActionBookingConfirm(), tracker("confirm_booking", slots=form_slots(sid)))
    (booking,) = store.my_bookings(db, store.ensure_user(db, SENDER))
    assert booking.reference in first[0]["text"] and first[0]["text"].startswith("Booked!")
    assert booking.reference in again[0]["text"] and "already confirmed" in again[0]["text"]
    assert booking.attendees == [{"name": "Li Wei"}, {"name": "Zhang Min"}]
    assert seats_taken(db, sid) == 1


async def test_no_reference_unless_committed(db, monkeypatch):
    sid = add_session(db)

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(store, "book_classroom", broken)
    msgs, _ = await run(ab.ActionBookingConfirm(), tracker("confirm_booking", slots=form_slots(sid)))
    assert "SC-" not in msgs[0]["text"] and "nothing was booked" in msgs[0]["text"]
    assert confirmed_count(db, sid) == 0


async def test_full_at_confirmation_offers_the_waitlist(db):
    sid = add_session(db, capacity=1)
    other = store.ensure_user(db, "tg-other")
    store.book_classroom(db, other, sid)
    msgs, _ = await run(ab.ActionBookingConfirm(), tracker("confirm_booking", slots=form_slots(sid), lang="zh"))
    assert "候补" in msgs[0]["text"]
    assert buttons(msgs)[0]["payload"] == f'/join_waitlist{{"session_id":"{sid}"}}'
    msgs, _ = await run(ab.ActionJoinWaitlist(), tracker("join_waitlist", entities={"session_id": str(sid)}, lang="zh"))
    assert "第1位" in msgs[0]["text"]


async def test_module_two_before_module_one_is_explained(db):
    sid = add_session(db, module=2)
    msgs, _ = await run(
        ab.ActionBookingConfirm(), tracker("confirm_booking", slots=form_slots(sid, booking_module="2"))
    )
    assert "starts with Module 1" in msgs[0]["text"]
    assert buttons(msgs)[0]["payload"] == '/book_classroom{"module":"1"}'


async def test_consultation_confirmation(db):
    sid = add_session(db)
    slot = add_slot(db)
    user = store.ensure_user(db, SENDER)
    store.book_classroom(db, user, sid)
    slots = form_slots(slot, booking_kind="consultation", booking_place="Guangdong")
    msgs, _ = await run(ab.ActionBookingConfirm(), tracker("confirm_booking", slots=slots))
    assert msgs[0]["text"].startswith("Booked!")


# --- my bookings, cancel, reschedule --------------------------------------------------------


async def test_my_bookings_cancel_flow(db):
    sid = add_session(db)
    user = store.ensure_user(db, SENDER)
    ref = store.book_classroom(db, user, sid).booking.reference
    msgs, _ = await run(ab.ActionMyBookings(), tracker("my_bookings", "/my_bookings"))
    assert ref in msgs[0]["text"]
    assert f'/cancel_booking{{"ref":"{ref}"}}' in [b["payload"] for b in buttons(msgs)]
    msgs, _ = await run(ab.ActionCancelBooking(), tracker("cancel_booking", f"please cancel {ref.lower()}"))
    assert ref in msgs[0]["text"] and confirmed_count(db, sid) == 1  # asked, not cancelled
    assert buttons(msgs)[0]["payload"] == f'/confirm_cancel{{"ref":"{ref}"}}'
    msgs, _ = await run(ab.ActionCancelConfirmed(), tracker("confirm_cancel", entities={"ref": ref}))
    assert "cancelled" in msgs[0]["text"] and confirmed_count(db, sid) == 0


async def test_someone_elses_reference_looks_like_a_missing_one(db):
    sid = add_session(db)
    owner = store.ensure_user(db, "tg-owner")
    ref = store.book_classroom(db, owner, sid).booking.reference
    theirs, _ = await run(ab.ActionCancelConfirmed(), tracker("confirm_cancel", entities={"ref": ref}))
    missing, _ = await run(ab.ActionCancelConfirmed(), tracker("confirm_cancel", entities={"ref": "SC-XXXXXX"}))
    assert theirs[0]["text"].replace(ref, "REF") == missing[0]["text"].replace("SC-XXXXXX", "REF")
    assert confirmed_count(db, sid) == 1


async def test_reschedule_flow(db):
    old = add_session(db, city="Dongguan")
    new = add_session(db, city="Shenzhen", starts_at=FUTURE + dt.timedelta(days=7))
    user = store.ensure_user(db, SENDER)
    ref = store.book_classroom(db, user, old).booking.reference
    msgs, _ = await run(ab.ActionRescheduleBooking(), tracker("reschedule_booking", entities={"ref": ref}))
    move = buttons(msgs)[0]["payload"]
    assert move == f'/reschedule_to{{"ref":"{ref}","session_id":"{new}"}}'
    msgs, _ = await run(
        ab.ActionRescheduleAsk(), tracker("reschedule_to", entities={"ref": ref, "session_id": str(new)})
    )
    assert buttons(msgs)[0]["payload"] == f'/confirm_reschedule{{"ref":"{ref}","session_id":"{new}"}}'
    assert seats_taken(db, old) == 1  # only asked
    msgs, _ = await run(
        ab.ActionRescheduleConfirmed(),
        tracker("confirm_reschedule", entities={"ref": ref, "session_id": str(new)}, lang="zh"),
    )
    assert ref in msgs[0]["text"] and "深圳" in msgs[0]["text"]
    assert (seats_taken(db, old), seats_taken(db, new)) == (0, 1)


# --- data -----------------------------------------------------------------------------------


def test_domain_declares_every_booking_action_and_intent():
    domain = yaml.safe_load(open(ab.__file__.replace("actions/booking/__init__.py", "domain.yml"), encoding="utf-8"))
    import inspect
    names = {cls().name() for cls in vars(ab).values()
             if isinstance(cls, type) and issubclass(cls, ab.Action)
             and cls.__module__.startswith(ab.__name__ + ".") and not inspect.isabstract(cls)}
    assert names <= set(domain["actions"])
    for intent in ("book_classroom", "book_consultation", "my_bookings", "cancel_booking",
                   "reschedule_booking", "choose_session", "confirm_booking", "join_waitlist"):
        assert intent in domain["intents"]
    assert domain["forms"]["booking_form"]["required_slots"] == list(ab.FORM_SLOTS)


async def test_no_dates_message_is_said_once_when_kind_and_module_arrive_together(db):
    # "/book_classroom{"module":"4"}" activates the form; module 4 has no dates
    module_1_seat(db)
    form = ab.ValidateBookingForm()
    latest = {"intent": {"name": "book_classroom"}, "text": "", "entities": [{"entity": "module", "value": "4"}],
              "metadata": {}}
    t = Tracker(SENDER, {"requested_slot": "booking_kind"},
                latest, [{"event": "user", "text": "", "parse_data": latest},
                         {"event": "slot", "name": "requested_slot", "value": "booking_kind"},
                         {"event": "action", "name": "booking_form"}],
                False, None, {}, "booking_form")
    d = CollectingDispatcher()
    events = await form.run(d, t, {"forms": {"booking_form": {"required_slots": list(ab.FORM_SLOTS)}},
                                  "slots": {s: {} for s in ab.FORM_SLOTS}})
    assert len(d.messages) == 1 and "no open dates" in d.messages[0]["text"]
    assert slots_of(events)["booking_target"] == ab.UNAVAILABLE


def test_a_partly_extracted_reference_falls_back_to_the_text():
    t = tracker("cancel_booking", "取消预约 SC-CC34YC", entities={"ref": "SC-"})
    assert ab.reference_in(t) == "SC-CC34YC"
    assert ab.reference_in(tracker("cancel_booking", "x", entities={"ref": "sc-cc34yc"})) == "SC-CC34YC"
    assert ab.reference_in(tracker("cancel_booking", "cancel my booking")) is None


# --- a consultation follows its module's classroom session ----------------------------------


NEEDS_CLASSROOM = {"en": "no classroom session of Module 2: Quality Management booked yet",
                   "zh": "还没有预约模块2：质量管理的课堂培训"}


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_consultation_without_its_classroom_is_refused_when_the_module_is_chosen(db, lang):
    add_slot(db, module=2)
    form = ab.ValidateBookingForm()
    d = CollectingDispatcher()
    result = await form.validate_booking_module(
        "2", d, tracker(slots={"booking_kind": "consultation"}, lang=lang), {})
    # the form ends here: no factory, attendees or contact asked before the refusal
    assert {result[s] for s in ("booking_place", "booking_target", "booking_factory",
                                "booking_attendees", "booking_contact")} == {ab.UNAVAILABLE}
    (message,) = d.messages
    assert NEEDS_CLASSROOM[lang] in message["text"]
    assert buttons(d.messages) == [{"title": ab.t("booking_button_classroom_of_module", lang, number=2),
                                    "payload": '/book_classroom{"module":"2"}'}]
    # the module first, then the kind: the same answer
    d = CollectingDispatcher()
    result = await form.validate_booking_kind(
        "consultation", d, tracker(slots={"booking_module": "2"}, lang=lang), {})
    assert result["booking_kind"] == "consultation" and result["booking_factory"] == ab.UNAVAILABLE
    assert NEEDS_CLASSROOM[lang] in d.messages[0]["text"]
    msgs, events = await run(ab.ActionBookingSummary(), tracker(slots=result, lang=lang))
    assert msgs == [] and slots_of(events)["booking_target"] is None


async def test_consultation_request_naming_the_module_is_refused_once(db):
    # "/book_consultation{"module":"2"}" activates the form: kind and module arrive together
    add_slot(db, module=2)
    latest = {"intent": {"name": "book_consultation"}, "text": "", "metadata": {"language": "zh"},
              "entities": [{"entity": "module", "value": "2"}]}
    t = Tracker(SENDER, {"requested_slot": "booking_kind", "language": "zh"},
                latest, [{"event": "user", "text": "", "parse_data": latest},
                         {"event": "slot", "name": "requested_slot", "value": "booking_kind"},
                         {"event": "action", "name": "booking_form"}],
                False, None, {}, "booking_form")
    d = CollectingDispatcher()
    events = await ab.ValidateBookingForm().run(
        d, t, {"forms": {"booking_form": {"required_slots": list(ab.FORM_SLOTS)}},
               "slots": {s: {} for s in ab.FORM_SLOTS}})
    assert len(d.messages) == 1 and NEEDS_CLASSROOM["zh"] in d.messages[0]["text"]
    assert slots_of(events)["booking_contact"] == ab.UNAVAILABLE


def _classroom_of_module_2(db) -> tuple[int, dt.datetime]:
    """The factory holds Module 1 and Module 2 classroom seats; returns (user, when Module 2 ends)."""
    user = store.ensure_user(db, SENDER)
    store.book_classroom(db, user, add_session(db, module=1))
    module_2 = add_session(db, module=2, starts_at=FUTURE + dt.timedelta(days=7))
    assert store.book_classroom(db, user, module_2).outcome == "booked"
    return user, store.offer(db, "classroom", module_2).ends_at


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_with_its_classroom_the_consultation_offers_visits_after_it(db, lang):
    _, classroom_ends = _classroom_of_module_2(db)
    add_slot(db, module=2, starts_at=classroom_ends - dt.timedelta(hours=3))  # during the class
    later = add_slot(db, module=2, starts_at=classroom_ends + dt.timedelta(days=5))
    form = ab.ValidateBookingForm()
    d = CollectingDispatcher()
    slots = {"booking_kind": "consultation"}
    assert await form.validate_booking_module("2", d, tracker(slots=slots, lang=lang), {}) == {
        "booking_module": "2"}
    assert d.messages == []
    slots = {"booking_kind": "consultation", "booking_module": "2", "booking_place": "Guangdong"}
    msgs, _ = await run(ab.ActionAskBookingTarget(), tracker(slots=slots, lang=lang))
    assert [b["payload"] for b in buttons(msgs)] == [f'/choose_session{{"slot_id":"{later}"}}']


async def test_only_visits_during_the_classroom_session_is_nothing_to_offer(db):
    _, classroom_ends = _classroom_of_module_2(db)
    add_slot(db, module=2, starts_at=classroom_ends - dt.timedelta(hours=3))
    d = CollectingDispatcher()
    result = await ab.ValidateBookingForm().validate_booking_module(
        "2", d, tracker(slots={"booking_kind": "consultation"}), {})
    assert result["booking_target"] == ab.UNAVAILABLE and "no open dates" in d.messages[0]["text"]


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_the_confirmation_still_checks_the_classroom_session(db, lang):
    # The early check is advice; the booking's transaction decides (here the classroom seat
    # was cancelled after the module was chosen).
    user = store.ensure_user(db, SENDER)
    reference = store.book_classroom(db, user, add_session(db)).booking.reference
    slot = add_slot(db)
    store.cancel_booking(db, user, reference)
    slots = form_slots(slot, booking_kind="consultation", booking_place="Guangdong")
    msgs, _ = await run(ab.ActionBookingConfirm(), tracker("confirm_booking", slots=slots, lang=lang))
    assert msgs[0]["text"] == ab.t("booking_refused_classroom_first", lang)
    assert buttons(msgs)[0]["payload"] == '/book_classroom{"module":"1"}'


# --- the attendees question -----------------------------------------------------------------


@pytest.mark.parametrize("lang,classroom_rule", [("en", "2 managers and 2 workers"), ("zh", "2名管理人员和2名员工")])
async def test_attendees_question_is_the_classrooms_only_for_a_classroom_session(db, lang, classroom_rule):
    msgs, _ = await run(ab.ActionAskBookingAttendees(), tracker(slots={"booking_kind": "classroom"}, lang=lang))
    assert classroom_rule in msgs[0]["text"]
    msgs, _ = await run(ab.ActionAskBookingAttendees(), tracker(slots={"booking_kind": "consultation"}, lang=lang))
    (text,) = [m["text"] for m in msgs]
    assert text == ab.t("booking_ask_attendees_consultation", lang)
    # no figure: the number of people at a visit is not published (score-facts.md)
    assert classroom_rule not in text and not any(ch.isdigit() for ch in text)
    assert ("visit" if lang == "en" else "现场咨询") in text
    assert [b["payload"] for b in buttons(msgs)] == ["/skip"]


# --- consultation date buttons --------------------------------------------------------------


@pytest.mark.parametrize("lang,titles", [
    ("en", ["18 Mar 2030 (Mon) 09:00, Guangdong, with Chen Jing",
            "18 Mar 2030 (Mon) 09:00, Guangdong, with Liang Min"]),
    ("zh", ["2030年3月18日（周一） 09:00，广东，专家：Chen Jing",
            "2030年3月18日（周一） 09:00，广东，专家：Liang Min"]),
])
async def test_two_experts_at_the_same_hour_are_two_different_buttons(db, lang, titles):
    user = store.ensure_user(db, SENDER)
    store.book_classroom(db, user, add_session(db))
    first = add_slot(db, expert="Chen Jing")
    second = add_slot(db, expert="Liang Min")
    slots = {"booking_kind": "consultation", "booking_module": "1", "booking_place": "Guangdong"}
    msgs, _ = await run(ab.ActionAskBookingTarget(), tracker(slots=slots, lang=lang))
    assert buttons(msgs) == [
        {"title": titles[0], "payload": f'/choose_session{{"slot_id":"{first}"}}'},
        {"title": titles[1], "payload": f'/choose_session{{"slot_id":"{second}"}}'}]
    # rescheduling a visit lists the other one by its expert too
    ref = store.book_consultation(db, user, first).booking.reference
    msgs, _ = await run(ab.ActionRescheduleBooking(), tracker("reschedule_booking", entities={"ref": ref}, lang=lang))
    assert buttons(msgs)[0]["title"] == titles[1]
    assert all(len(b["payload"].encode()) <= ab.CALLBACK_LIMIT for b in buttons(msgs))


# --- venue names ----------------------------------------------------------------------------


@pytest.mark.parametrize("lang,venue", [("en", "Test venue"), ("zh", "东莞生产力中心（南城）")])
async def test_the_summary_names_the_venue_in_the_users_language(db, lang, venue):
    sid = add_session(db, city="Dongguan", venue_zh="东莞生产力中心（南城）")
    msgs, _ = await run(ab.ActionBookingSummary(), tracker(slots=form_slots(sid), lang=lang))
    assert venue in msgs[0]["text"]
    if lang == "zh":
        assert "Test venue" not in msgs[0]["text"] and "东莞" in msgs[0]["text"]
    # reminders are written in the booking's language with the same venue
    await run(ab.ActionBookingConfirm(), tracker("confirm_booking", slots=form_slots(sid), lang=lang))
    (reminder, *_) = notifications(db, "reminder")
    assert reminder.payload["values"]["detail"] == venue


async def test_a_session_without_a_chinese_venue_name_shows_the_venue_as_written(db):
    sid = add_session(db, city="Dongguan")
    msgs, _ = await run(ab.ActionBookingSummary(), tracker(slots=form_slots(sid), lang="zh"))
    assert "东莞，Test venue" in msgs[0]["text"]


# --- a later module follows Module 1 --------------------------------------------------------


@pytest.mark.parametrize("lang,says", [("en", "Every factory starts with Module 1"), ("zh", "每家工厂都从模块1")])
async def test_a_later_classroom_module_without_module_1_is_refused_when_the_module_is_chosen(db, lang, says):
    add_session(db, module=2)
    d = CollectingDispatcher()
    result = await ab.ValidateBookingForm().validate_booking_module(
        "2", d, tracker(slots={"booking_kind": "classroom"}, lang=lang), {})
    assert result["booking_place"] == ab.UNAVAILABLE and result["booking_factory"] == ab.UNAVAILABLE
    (message,) = d.messages
    assert says in message["text"]
    assert buttons(d.messages) == [{"title": ab.t("booking_button_classroom_of_module", lang, number=1),
                                    "payload": '/book_classroom{"module":"1"}'}]


async def test_with_module_1_a_later_module_offers_sessions_after_it(db):
    module_1_seat(db)  # starts at FUTURE
    add_session(db, module=2, city="Dongguan", starts_at=FUTURE - dt.timedelta(days=7))
    later = add_session(db, module=2, city="Shenzhen", starts_at=FUTURE + dt.timedelta(days=7))
    d = CollectingDispatcher()
    slots = {"booking_kind": "classroom"}
    assert await ab.ValidateBookingForm().validate_booking_module("2", d, tracker(slots=slots), {}) == {
        "booking_module": "2"}
    assert d.messages == []
    msgs, _ = await run(ab.ActionAskBookingPlace(), tracker(slots={"booking_kind": "classroom", "booking_module": "2"}))
    assert [b["payload"] for b in buttons(msgs)] == ['/choose_place{"place":"Shenzhen"}']
    slots = {"booking_kind": "classroom", "booking_module": "2", "booking_place": "Guangdong"}
    msgs, _ = await run(ab.ActionAskBookingTarget(), tracker(slots=slots))
    assert [b["payload"] for b in buttons(msgs)] == [f'/choose_session{{"session_id":"{later}"}}']


def module_patterns() -> list[str]:
    """nlu/booking.yml's `regex: module` lines, which Rasa's RegexEntityExtractor applies."""
    data = yaml.safe_load(open("nlu/booking.yml", encoding="utf-8"))["nlu"]
    (entry,) = [item for item in data if item.get("regex") == "module"]
    return [line.removeprefix("- ").strip() for line in entry["examples"].splitlines() if line.strip()]


def modules_named(text: str) -> list[int | None]:
    # as RegexEntityExtractor with case_sensitive: false
    return [module_of(m.group(0)) for p in module_patterns() for m in re.finditer(p, text, re.IGNORECASE)]


@pytest.mark.parametrize(("text", "module"), [
    ("book module 3 classroom", 3), ("reserve the Module 2 class pls", 2), ("mod 4 workshop booking", 4),
    ("book the module three course", 3), ("we want the 2nd module class", 2), ("third module consultation", 3),
    ("module #5 expert visit", 5), ("MODULE 1", 1), ("帮我约模块2的课", 2), ("预约第三个模块的课堂", 3),
    ("模块 五 的现场辅导", 5), ("第4模块报名", 4), ("一号模块的课", 1),
])
def test_a_module_named_in_a_booking_message_is_extracted_with_its_number(text, module):
    assert modules_named(text) and set(modules_named(text)) == {module}


@pytest.mark.parametrize("text", [
    "book a classroom session for 3 managers", "module 12", "what modules are there", "五个模块都讲什么",
    "我们厂有三百人，想报名", "one of our managers wants to book", "modules 1 to 5", "the first session in May",
])
def test_numbers_that_do_not_name_a_module_are_not_extracted(text):
    assert modules_named(text) == []


@pytest.mark.parametrize(("answer", "module"), [
    ("module one", 1), ("one", 1), ("the third one", 3), ("Two", 2), ("2nd", 2), ("模块四", 4),
    ("the one about safety", None), ("one of the later ones", None), ("not sure", None),
])
def test_an_answer_to_which_module_names_it_in_words_or_not_at_all(answer, module):
    assert module_of(answer) == module
