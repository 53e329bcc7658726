"""Concurrent bookers never overbook, on SQLite and PostgreSQL (threads, one session each),
for both kinds of booking: classroom seats (5 or 3 to a session, with a waitlist) and
consultation slots (one factory each)."""
from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from store import booking
from store.models import Booking, ConsultationSlot
from tests.test_booking_support import (
    FUTURE,
    add_session,
    add_slot,
    add_users,
    confirmed_count,
    seats_taken,
)


def _run_together(n: int, work):
    """Run work(i) in n threads released at the same moment; returns results or exceptions."""
    barrier = threading.Barrier(n)

    def call(i):
        barrier.wait()
        try:
            return work(i)
        except Exception as exc:  # counted as an error by the tests
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, range(n)))


@dataclass(frozen=True)
class Kind:
    """A kind of booking as these tests see it: its targets, how many factories one holds,
    and the counts to compare."""

    name: str
    seats: int  # factories one target holds: a slot holds one

    @property
    def waitlist(self) -> bool:
        return self.name == booking.CLASSROOM

    def targets(self, db, seats: int) -> list[int]:
        """Targets holding `seats` factories in all: one classroom session, or that many slots."""
        if self.name == booking.CLASSROOM:
            return [add_session(db, capacity=seats)]
        return [add_slot(db, starts_at=FUTURE + dt.timedelta(days=14, hours=i))
                for i in range(seats)]

    def users(self, db, n: int, prefix: str = "u") -> list[int]:
        """n factories that meet the booking rules: a consultation needs a classroom seat of
        its module that ends before the visit."""
        users = add_users(db, n, prefix=prefix)
        if self.name == booking.CONSULTATION:
            session_id = add_session(db, capacity=n, seats_taken=n)
            with db.session() as s:
                s.add_all(Booking(reference=f"SC-{prefix.upper()}{user}", kind=booking.CLASSROOM,
                                  session_id=session_id, user_id=user, status="confirmed")
                          for user in users)
        return users

    def book(self, db, user: int, target: int, **details) -> booking.BookingResult:
        return booking.book(db, self.name, user, target, **details)

    def taken(self, db, target: int) -> int:
        if self.name == booking.CLASSROOM:
            return seats_taken(db, target)
        with db.session() as s:
            return int(s.scalar(select(ConsultationSlot.booked).where(ConsultationSlot.id == target)))

    def confirmed(self, db, target: int) -> int:
        if self.name == booking.CLASSROOM:
            return confirmed_count(db, target)
        with db.session() as s:
            return s.scalar(select(func.count(Booking.id)).where(
                Booking.slot_id == target, Booking.status == "confirmed"))

    def bookings(self, db) -> int:
        """Every booking of this kind, whatever its status."""
        with db.session() as s:
            return s.scalar(select(func.count(Booking.id)).where(Booking.kind == self.name))


CLASSROOM = Kind(booking.CLASSROOM, seats=5)
CONSULTATION = Kind(booking.CONSULTATION, seats=1)


@pytest.fixture(params=[CLASSROOM, CONSULTATION], ids=lambda kind: kind.name)
def kind(request) -> Kind:
    return request.param


def test_fifty_bookers_never_overbook(any_db, kind):
    # classroom: fifty bookers, five seats; consultation: fifty bookers, one slot
    (target,) = kind.targets(any_db, kind.seats)
    users = kind.users(any_db, 50)

    def book(i):
        result = kind.book(any_db, users[i], target, idempotency_key=f"k{i}")
        if result.outcome == "full" and kind.waitlist:
            # the conversation then offers the waitlist
            return "waitlist:" + booking.join_waitlist(any_db, users[i], target).outcome
        return result.outcome

    results = _run_together(50, book)
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    counts = Counter(results)
    assert counts["booked"] == kind.seats
    assert counts["waitlist:joined" if kind.waitlist else "full"] == 50 - kind.seats
    assert kind.taken(any_db, target) == kind.seats
    assert kind.confirmed(any_db, target) == kind.seats


def test_same_confirmation_twice_concurrently_books_once(any_db, kind):
    (target,) = kind.targets(any_db, kind.seats)
    (user,) = kind.users(any_db, 1)
    results = _run_together(8, lambda i: kind.book(any_db, user, target, idempotency_key="same"))
    assert not [r for r in results if isinstance(r, Exception)]
    assert {r.booking.reference for r in results} and len({r.booking.reference for r in results}) == 1
    assert sorted(r.outcome for r in results).count("booked") == 1
    assert all(r.outcome in ("booked", "duplicate", "already_booked") for r in results)
    assert kind.taken(any_db, target) == 1
    assert kind.bookings(any_db) == 1


def test_cancel_and_book_racing_for_the_last_seat(any_db, kind):
    # classroom: two seats, both taken; consultation: the one slot, taken
    seats = 2 if kind.waitlist else 1
    for round_ in range(4):
        (target,) = kind.targets(any_db, seats)
        holder, racer, waiting, *others = kind.users(any_db, 2 + seats, prefix=f"r{round_}-")
        kept = kind.book(any_db, holder, target).booking
        for other in others:
            kind.book(any_db, other, target)
        with_waitlist = kind.waitlist and round_ % 2  # half the rounds with a factory waiting
        if with_waitlist:
            assert booking.join_waitlist(any_db, waiting, target).outcome == "joined"

        def race(i, holder=holder, kept=kept, racer=racer, target=target):  # this round's
            if i == 0:
                return booking.cancel_booking(any_db, holder, kept.reference).outcome
            return kind.book(any_db, racer, target).outcome

        results = _run_together(2, race)
        assert not [r for r in results if isinstance(r, Exception)]
        assert results[0] == "cancelled"
        assert results[1] in ("booked", "full")
        # The freed seat goes to the racer or the waiting factory if the cancel came first;
        # if the racer came first it found the session full.
        expected = seats if (with_waitlist or results[1] == "booked") else seats - 1
        assert kind.taken(any_db, target) == kind.confirmed(any_db, target) == expected


def test_concurrent_reschedules_in_opposite_directions_keep_counts(any_db, kind):
    # Two sides of three seats each: a classroom session of 3, or three slots.
    side_a, side_b = kind.targets(any_db, 3), kind.targets(any_db, 3)
    users = kind.users(any_db, 6)
    refs = []
    for i, user in enumerate(users):
        side = side_a if i < 3 else side_b
        refs.append(kind.book(any_db, user, side[i % len(side)]).booking.reference)
    # both full: every move must fail cleanly; then free one seat in each and race again
    results = _run_together(6, lambda i: booking.reschedule_booking(
        any_db, users[i], refs[i], (side_b if i < 3 else side_a)[i % len(side_a)]))
    assert not [r for r in results if isinstance(r, Exception)]
    assert {r.outcome for r in results} == {"full"}
    booking.cancel_booking(any_db, users[0], refs[0])
    booking.cancel_booking(any_db, users[3], refs[3])
    # the freed seats are the first of each side
    results = _run_together(
        4, lambda i: booking.reschedule_booking(
            any_db, users[[1, 2, 4, 5][i]], refs[[1, 2, 4, 5][i]], side_b[0] if i < 2 else side_a[0]))
    assert not [r for r in results if isinstance(r, Exception)]
    for target in side_a + side_b:
        assert kind.taken(any_db, target) == kind.confirmed(any_db, target) <= (3 if kind.waitlist else 1)
