"""Booking rules, cancel, reschedule, waitlist promotion and reminders."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from store import booking
from store.models import WaitlistEntry
from tests.test_booking_support import (
    FUTURE,
    add_session,
    add_slot,
    add_users,
    confirmed_count,
    notifications,
    seats_taken,
)

DAY = dt.timedelta(days=1)


@pytest.fixture
def db(any_db):
    return any_db


# --- references ---------------------------------------------------------------------------


def test_reference_is_short_and_unambiguous():
    for _ in range(200):
        ref = booking.new_reference()
        assert re.fullmatch(r"SC-[34679ACDEFGHJKMNPQRTUVWXY]{6}", ref)
    assert booking.normalise_reference(" sc 7k3f9q ") == "SC-7K3F9Q"
    assert booking.normalise_reference("7K3F9Q") == "SC-7K3F9Q"


def test_reference_collision_draws_again(db, monkeypatch):
    sid = add_session(db)
    a, b = add_users(db, 2)
    first = booking.book_classroom(db, a, sid).booking.reference
    draws = iter([first, first, "SC-AAAAAA"])
    monkeypatch.setattr(booking, "new_reference", lambda: next(draws))
    assert booking.book_classroom(db, b, sid).booking.reference == "SC-AAAAAA"


def test_reference_race_is_retried_by_the_transaction(db, monkeypatch):
    # Two transactions that drew the same fresh reference: the unique constraint fails the
    # insert, and the whole transaction runs again with a new draw.
    sid = add_session(db)
    a, b = add_users(db, 2)
    first = booking.book_classroom(db, a, sid).booking.reference
    draws = iter([first, "SC-CCCCCC"])
    monkeypatch.setattr(booking, "_unused_reference", lambda session: next(draws))
    result = booking.book_classroom(db, b, sid)
    assert result.outcome == "booked" and result.booking.reference == "SC-CCCCCC"
    assert seats_taken(db, sid) == 2


# --- rules ----------------------------------------------------------------------------------


def test_module_one_comes_first(db):
    m1 = add_session(db, module=1, starts_at=FUTURE)
    m2 = add_session(db, module=2, starts_at=FUTURE + 30 * DAY)
    m2_early = add_session(db, module=2, starts_at=FUTURE - 30 * DAY)
    (user,) = add_users(db, 1)
    refused = booking.book_classroom(db, user, m2)
    assert refused.outcome == "refused" and refused.reason == "booking_refused_module1_first"
    assert seats_taken(db, m2) == 0
    assert booking.book_classroom(db, user, m1).outcome == "booked"
    assert booking.book_classroom(db, user, m2_early).reason == "booking_refused_module1_first"
    assert booking.book_classroom(db, user, m2).outcome == "booked"


def test_consultation_follows_the_classroom_session_of_its_module(db):
    session = add_session(db, module=1, starts_at=FUTURE)
    before = add_slot(db, module=1, starts_at=FUTURE + dt.timedelta(hours=3))
    after = add_slot(db, module=1, starts_at=FUTURE + 10 * DAY)
    other_module = add_slot(db, module=2, starts_at=FUTURE + 10 * DAY)
    user, rival = add_users(db, 2)
    assert booking.book_consultation(db, user, after).reason == "booking_refused_classroom_first"
    booking.book_classroom(db, user, session)
    booking.book_classroom(db, rival, session)
    assert booking.book_consultation(db, user, before).reason == "booking_refused_classroom_first"
    assert booking.book_consultation(db, user, other_module).reason == "booking_refused_classroom_first"
    booked = booking.book_consultation(db, user, after, idempotency_key="c1")
    assert booked.outcome == "booked" and booked.booking.kind == "consultation"
    assert booking.book_consultation(db, user, after, idempotency_key="c1").outcome == "duplicate"
    assert booking.book_consultation(db, rival, after).outcome == "full"


def test_visits_are_offered_from_the_end_of_the_classroom_session(db):
    session = add_session(db, module=1, starts_at=FUTURE)
    during = add_slot(db, module=1, starts_at=FUTURE + dt.timedelta(hours=3))
    after = add_slot(db, module=1, region="Sichuan", starts_at=FUTURE + 10 * DAY)
    user, rival, other = add_users(db, 3)
    assert booking.classroom_ends(db, user, 1) is None
    booking.book_classroom(db, user, session)
    booking.book_classroom(db, rival, session)
    ends = booking.classroom_ends(db, user, 1)
    assert ends == FUTURE + dt.timedelta(days=1, hours=8) and ends.tzinfo is not None
    assert booking.classroom_ends(db, user, 2) is None and booking.classroom_ends(db, other, 1) is None
    assert [o.id for o in booking.available_slots(db, 1)] == [during, after]
    assert [o.id for o in booking.available_slots(db, 1, not_before=ends)] == [after]
    assert booking.places_with_offers(db, "consultation", 1) == ["Guangdong", "Sichuan"]
    assert booking.places_with_offers(db, "consultation", 1, not_before=ends) == ["Sichuan"]
    # a cancelled classroom seat no longer counts
    booking.cancel_booking(db, user, booking.my_bookings(db, user)[0].reference)
    assert booking.classroom_ends(db, user, 1) is None


def test_later_modules_are_offered_after_the_start_of_module_1(db):
    module_1 = add_session(db, module=1, city="Shenzhen", starts_at=FUTURE)
    before = add_session(db, module=2, city="Dongguan", starts_at=FUTURE - 7 * DAY)
    same_time = add_session(db, module=2, city="Foshan", starts_at=FUTURE)
    after = add_session(db, module=2, city="Chengdu", starts_at=FUTURE + 7 * DAY)
    (user,) = add_users(db, 1)
    assert booking.classroom_starts(db, user, 1) is None
    booking.book_classroom(db, user, module_1)
    starts = booking.classroom_starts(db, user, 1)
    assert starts == FUTURE
    assert [o.id for o in booking.available_sessions(db, 2)] == [before, same_time, after]
    assert [o.id for o in booking.available_sessions(db, 2, after=starts)] == [after]
    assert booking.places_with_offers(db, "classroom", 2, after=starts) == ["Chengdu"]
    # what is offered is what the booking's own check accepts
    assert booking.book_classroom(db, user, same_time).reason == "booking_refused_module1_first"
    assert booking.book_classroom(db, user, after).outcome == "booked"


def test_no_booking_in_the_past(db):
    now = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    past = add_session(db, starts_at=now - DAY)
    (user,) = add_users(db, 1)
    result = booking.book_classroom(db, user, past, now=now)
    assert result.outcome == "refused" and result.reason == "booking_refused_past"
    assert seats_taken(db, past) == 0
    assert booking.available_sessions(db, 1, now=now) == []


def test_one_factory_one_seat_per_session(db):
    sid = add_session(db)
    (user,) = add_users(db, 1)
    first = booking.book_classroom(db, user, sid, idempotency_key="a")
    again = booking.book_classroom(db, user, sid, idempotency_key="b")
    assert again.outcome == "already_booked"
    assert again.booking.reference == first.booking.reference
    assert seats_taken(db, sid) == 1


def test_same_confirmation_returns_the_same_booking(db):
    sid = add_session(db)
    (user,) = add_users(db, 1)
    first = booking.book_classroom(db, user, sid, idempotency_key="nonce-1")
    second = booking.book_classroom(db, user, sid, idempotency_key="nonce-1")
    assert (first.outcome, second.outcome) == ("booked", "duplicate")
    assert first.booking.reference == second.booking.reference
    assert seats_taken(db, sid) == 1
    assert len(notifications(db, "reminder")) == 2


def test_full_session_and_check_constraint(db):
    sid = add_session(db, capacity=1)
    a, b = add_users(db, 2)
    assert booking.book_classroom(db, a, sid).outcome == "booked"
    assert booking.book_classroom(db, b, sid).outcome == "full"
    assert seats_taken(db, sid) == 1
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    from store.models import ClassroomSession
    with pytest.raises(IntegrityError):  # the database itself refuses overbooking
        with db.session() as s:
            s.execute(update(ClassroomSession).values(seats_taken=2))


# --- lookups --------------------------------------------------------------------------------


def test_available_sessions_filters(db):
    now = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    dongguan = add_session(db, city="Dongguan", starts_at=FUTURE)
    shenzhen = add_session(db, city="Shenzhen", starts_at=FUTURE + DAY)
    chengdu = add_session(db, city="Chengdu", starts_at=FUTURE + 2 * DAY)
    full = add_session(db, city="Dongguan", capacity=2, seats_taken=2, starts_at=FUTURE + 3 * DAY)
    add_session(db, city="Dongguan", module=2)
    add_session(db, city="Dongguan", starts_at=now - DAY)
    ids = lambda offers: [o.id for o in offers]  # noqa: E731
    assert ids(booking.available_sessions(db, 1, now=now)) == [dongguan, shenzhen, chengdu]
    assert ids(booking.available_sessions(db, 1, "Guangdong", now=now)) == [dongguan, shenzhen]
    assert ids(booking.available_sessions(db, 1, "东莞", now=now)) == [dongguan]
    assert ids(booking.available_sessions(db, 1, "dongguan", now=now, include_full=True)) == [dongguan, full]
    assert booking.available_sessions(db, 1, "Dongguan", now=now)[0].seats_left == 5
    assert booking.places_with_offers(db, "classroom", 1, now=now) == ["Dongguan", "Shenzhen", "Chengdu"]
    add_session(db, city="Dalian", capacity=1, seats_taken=1, starts_at=FUTURE + 4 * DAY)
    assert booking.places_with_offers(db, "classroom", 1, now=now)[-1] == "Chengdu"
    assert booking.places_with_offers(db, "classroom", 1, now=now, include_full=True)[-1] == "Dalian"


def test_my_bookings_only_mine_and_confirmed(db):
    a_sid, b_sid = add_session(db), add_session(db, starts_at=FUTURE + DAY)
    me, other = add_users(db, 2)
    mine = booking.book_classroom(db, me, a_sid).booking
    cancelled = booking.book_classroom(db, me, b_sid).booking
    booking.book_classroom(db, other, a_sid)
    booking.cancel_booking(db, me, cancelled.reference)
    assert [b.reference for b in booking.my_bookings(db, me)] == [mine.reference]


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_frees_the_seat_and_voids_reminders(db):
    sid = add_session(db)
    (user,) = add_users(db, 1)
    ref = booking.book_classroom(db, user, sid).booking.reference
    assert len(notifications(db, "reminder")) == 2
    result = booking.cancel_booking(db, user, ref.lower())
    assert result.outcome == "cancelled"
    assert seats_taken(db, sid) == 0 and confirmed_count(db, sid) == 0
    assert notifications(db, "reminder") == []
    assert booking.cancel_booking(db, user, ref).outcome == "already_cancelled"
    # the factory can book the same session again after cancelling
    assert booking.book_classroom(db, user, sid).outcome == "booked"


def test_cancel_someone_elses_reference_reveals_nothing(db):
    sid = add_session(db)
    owner, stranger = add_users(db, 2)
    ref = booking.book_classroom(db, owner, sid).booking.reference
    theirs = booking.cancel_booking(db, stranger, ref)
    missing = booking.cancel_booking(db, stranger, "SC-XXXXXX")
    assert theirs == missing == booking.CancelResult("not_found")
    assert confirmed_count(db, sid) == 1
    assert booking.booking_by_reference(db, stranger, ref) is None


def test_cancel_after_start_is_refused(db):
    sid = add_session(db, starts_at=FUTURE)
    (user,) = add_users(db, 1)
    ref = booking.book_classroom(db, user, sid, now=FUTURE - DAY).booking.reference
    result = booking.cancel_booking(db, user, ref, now=FUTURE + dt.timedelta(hours=1))
    assert result.outcome == "refused" and result.reason == "booking_refused_started"
    assert confirmed_count(db, sid) == 1


# --- waitlist -------------------------------------------------------------------------------


def test_waitlist_join_positions(db):
    sid = add_session(db, capacity=1)
    a, b, c = add_users(db, 3)
    assert booking.join_waitlist(db, b, sid).outcome == "not_full"
    booking.book_classroom(db, a, sid)
    assert booking.join_waitlist(db, a, sid).outcome == "already_booked"
    assert booking.join_waitlist(db, b, sid) == booking.WaitlistResult("joined", 1)
    assert booking.join_waitlist(db, c, sid) == booking.WaitlistResult("joined", 2)
    assert booking.join_waitlist(db, b, sid) == booking.WaitlistResult("already_waiting", 1)


def test_cancel_promotes_the_first_waiting_factory_and_tells_them(db):
    sid = add_session(db, capacity=2)
    a, b, first, second = add_users(db, 4)
    ref = booking.book_classroom(db, a, sid).booking.reference
    booking.book_classroom(db, b, sid)
    booking.join_waitlist(db, first, sid, language="zh", factory_name="Pearl Garments")
    booking.join_waitlist(db, second, sid)
    result = booking.cancel_booking(db, a, ref)
    assert result.promoted_user_id == first
    assert seats_taken(db, sid) == confirmed_count(db, sid) == 2
    (promoted,) = booking.my_bookings(db, first)
    assert promoted.factory_name == "Pearl Garments"
    assert booking.my_bookings(db, second) == []
    with db.session() as s:
        statuses = {e.user_id: e.status for e in s.scalars(select(WaitlistEntry))}
    assert statuses == {first: "promoted", second: "waiting"}
    (note,) = notifications(db, "waitlist_promoted")
    assert note.user_id == first
    assert note.payload["text_key"] == "booking_waitlist_promoted"
    assert note.payload["language"] == "zh"
    assert note.payload["values"]["reference"] == promoted.reference
    from store.notifications import render
    assert promoted.reference in render(note.payload) and "东莞" in render(note.payload)
    # the promoted factory gets its reminders like any booking
    assert {n.user_id for n in notifications(db, "reminder")} >= {first}


def test_promotion_skips_a_factory_that_booked_meanwhile(db):
    sid = add_session(db, capacity=1)
    a, b = add_users(db, 2)
    ref = booking.book_classroom(db, a, sid).booking.reference
    booking.join_waitlist(db, b, sid)
    booking.cancel_booking(db, a, ref)  # b promoted
    assert confirmed_count(db, sid) == 1
    assert booking.my_bookings(db, b)[0].offer.id == sid


# --- reschedule -----------------------------------------------------------------------------


def test_reschedule_moves_the_seat_in_one_step(db):
    old = add_session(db, capacity=2)
    new = add_session(db, capacity=2, starts_at=FUTURE + 7 * DAY)
    (user,) = add_users(db, 1)
    ref = booking.book_classroom(db, user, old).booking.reference
    result = booking.reschedule_booking(db, user, ref, new)
    assert result.outcome == "booked"
    assert result.booking.reference == ref and result.booking.offer.id == new
    assert (seats_taken(db, old), seats_taken(db, new)) == (0, 1)
    due = sorted(n.due_at for n in notifications(db, "reminder"))
    assert due == [FUTURE + 7 * DAY - dt.timedelta(hours=24), FUTURE + 7 * DAY - dt.timedelta(hours=1)]
    assert booking.reschedule_booking(db, user, ref, new).outcome == "duplicate"


def test_reschedule_to_a_full_session_keeps_the_old_seat(db):
    old = add_session(db, capacity=2)
    full = add_session(db, capacity=1, starts_at=FUTURE + 7 * DAY)
    user, other = add_users(db, 2)
    ref = booking.book_classroom(db, user, old).booking.reference
    booking.book_classroom(db, other, full)
    result = booking.reschedule_booking(db, user, ref, full)
    assert result.outcome == "full"
    assert (seats_taken(db, old), seats_taken(db, full)) == (1, 1)
    assert booking.my_bookings(db, user)[0].offer.id == old
    assert len([n for n in notifications(db, "reminder") if n.user_id == user]) == 2


def test_reschedule_refusals(db):
    old = add_session(db)
    other_module = add_session(db, module=2, starts_at=FUTURE + 7 * DAY)
    user, stranger = add_users(db, 2)
    ref = booking.book_classroom(db, user, old).booking.reference
    assert booking.reschedule_booking(db, user, ref, other_module).reason == "booking_refused_other_module"
    assert booking.reschedule_booking(db, stranger, ref, old).reason == "booking_refused_not_found"
    assert seats_taken(db, old) == 1


def test_reschedule_promotes_the_waitlist_of_the_old_session(db):
    old = add_session(db, capacity=1)
    new = add_session(db, capacity=1, starts_at=FUTURE + 7 * DAY)
    user, waiting = add_users(db, 2)
    ref = booking.book_classroom(db, user, old).booking.reference
    booking.join_waitlist(db, waiting, old)
    booking.reschedule_booking(db, user, ref, new)
    assert booking.my_bookings(db, waiting)[0].offer.id == old
    assert seats_taken(db, old) == confirmed_count(db, old) == 1


def _visit_booked(db) -> tuple[int, str, int, int]:
    """A factory with its classroom seat and a visit booked in slot A; slot B is free.
    Returns (user, the visit's reference, slot A, slot B)."""
    session = add_session(db)
    slot_a = add_slot(db, starts_at=FUTURE + 10 * DAY)
    slot_b = add_slot(db, starts_at=FUTURE + 12 * DAY)
    (user,) = add_users(db, 1)
    booking.book_classroom(db, user, session)
    ref = booking.book_consultation(db, user, slot_a).booking.reference
    return user, ref, slot_a, slot_b


def test_reschedule_consultation(db):
    user, ref, slot_a, slot_b = _visit_booked(db)
    assert booking.reschedule_booking(db, user, ref, slot_b).outcome == "booked"
    assert [o.id for o in booking.available_slots(db, 1)] == [slot_a]


def test_reschedule_consultation_onto_a_slot_the_factory_holds(db):
    # One path reschedules both kinds: a slot the factory already holds with another booking
    # is `already_booked`, as for a classroom session, and both bookings stay as they were.
    user, ref, slot_a, slot_b = _visit_booked(db)
    booking.book_consultation(db, user, slot_b)
    result = booking.reschedule_booking(db, user, ref, slot_b)
    assert result.outcome == "already_booked" and result.booking.offer.id == slot_a
    visits = [b.offer.id for b in booking.my_bookings(db, user) if b.kind == "consultation"]
    assert sorted(visits) == sorted([slot_a, slot_b])


# --- reminders ------------------------------------------------------------------------------


def test_reminders_due_before_start(db):
    sid = add_session(db)
    (user,) = add_users(db, 1)
    ref = booking.book_classroom(db, user, sid, language="en").booking.reference
    rows = notifications(db, "reminder")
    assert sorted(r.due_at for r in rows) == [FUTURE - dt.timedelta(hours=24), FUTURE - dt.timedelta(hours=1)]
    assert all(r.user_id == user and r.payload["values"]["reference"] == ref for r in rows)
    assert len({r.dedupe_key for r in rows}) == 2


def test_reminder_offsets_from_the_environment(db, monkeypatch):
    monkeypatch.setenv("REMINDER_OFFSETS_HOURS", "48, 2")
    sid = add_session(db)
    (user,) = add_users(db, 1)
    booking.book_classroom(db, user, sid)
    assert sorted(r.due_at for r in notifications(db, "reminder")) == [
        FUTURE - dt.timedelta(hours=48), FUTURE - dt.timedelta(hours=2)]


def test_reminders_already_past_are_skipped(db):
    sid = add_session(db, starts_at=FUTURE)
    (user,) = add_users(db, 1)
    booking.book_classroom(db, user, sid, now=FUTURE - dt.timedelta(hours=3))
    assert [r.due_at for r in notifications(db, "reminder")] == [FUTURE - dt.timedelta(hours=1)]


def test_user_for_sender_creates_once(db):
    first = booking.ensure_user(db, "tg-12345")
    assert booking.ensure_user(db, "tg-12345") == first
    with db.session() as s:
        from store.models import User
        user = s.get(User, first)
        assert (user.channel, user.external_id) == ("telegram", "12345")

