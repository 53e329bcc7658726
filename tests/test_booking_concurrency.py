"""Concurrent bookers never overbook, on SQLite and PostgreSQL (threads, one session each)."""
from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from store import booking
from store.models import Booking
from tests.test_booking_support import add_session, add_users, confirmed_count, seats_taken


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


def test_fifty_bookers_five_seats(any_db):
    session_id = add_session(any_db, capacity=5)
    users = add_users(any_db, 50)

    def book(i):
        result = booking.book_classroom(any_db, users[i], session_id, idempotency_key=f"k{i}")
        if result.outcome == "full":
            # the conversation then offers the waitlist
            return "waitlist:" + booking.join_waitlist(any_db, users[i], session_id).outcome
        return result.outcome

    results = _run_together(50, book)
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    counts = Counter(results)
    assert counts["booked"] == 5
    assert counts["waitlist:joined"] == 45
    assert seats_taken(any_db, session_id) == 5
    assert confirmed_count(any_db, session_id) == 5


def test_same_confirmation_twice_concurrently_books_once(any_db):
    session_id = add_session(any_db, capacity=5)
    (user,) = add_users(any_db, 1)
    results = _run_together(
        8, lambda i: booking.book_classroom(any_db, user, session_id, idempotency_key="same"))
    assert not [r for r in results if isinstance(r, Exception)]
    assert {r.booking.reference for r in results} and len({r.booking.reference for r in results}) == 1
    assert sorted(r.outcome for r in results).count("booked") == 1
    assert all(r.outcome in ("booked", "duplicate", "already_booked") for r in results)
    assert seats_taken(any_db, session_id) == 1
    with any_db.session() as s:
        assert s.scalar(select(func.count(Booking.id))) == 1


def test_cancel_and_book_racing_for_the_last_seat(any_db):
    for round_ in range(4):
        session_id = add_session(any_db, capacity=2)
        holder, other, racer, waiting = add_users(any_db, 4, prefix=f"r{round_}-")
        kept = booking.book_classroom(any_db, holder, session_id).booking
        booking.book_classroom(any_db, other, session_id)
        if round_ % 2:  # half the rounds with a factory on the waitlist too
            assert booking.join_waitlist(any_db, waiting, session_id).outcome == "joined"

        def race(i):
            if i == 0:
                return booking.cancel_booking(any_db, holder, kept.reference).outcome
            return booking.book_classroom(any_db, racer, session_id).outcome

        results = _run_together(2, race)
        assert not [r for r in results if isinstance(r, Exception)]
        assert results[0] == "cancelled"
        assert results[1] in ("booked", "full")
        # The freed seat goes to the racer or the waiting factory if the cancel came first;
        # if the racer came first it found the session full.
        expected = 2 if (round_ % 2 or results[1] == "booked") else 1
        assert seats_taken(any_db, session_id) == confirmed_count(any_db, session_id) == expected


def test_concurrent_reschedules_in_opposite_directions_keep_counts(any_db):
    a = add_session(any_db, capacity=3)
    b = add_session(any_db, capacity=3)
    users = add_users(any_db, 6)
    refs = []
    for i, user in enumerate(users):
        refs.append(booking.book_classroom(any_db, user, a if i < 3 else b).booking.reference)
    # both full: every move must fail cleanly; then free one seat in each and race again
    results = _run_together(
        6, lambda i: booking.reschedule_booking(any_db, users[i], refs[i], b if i < 3 else a))
    assert not [r for r in results if isinstance(r, Exception)]
    assert {r.outcome for r in results} == {"full"}
    booking.cancel_booking(any_db, users[0], refs[0])
    booking.cancel_booking(any_db, users[3], refs[3])
    results = _run_together(
        4, lambda i: booking.reschedule_booking(
            any_db, users[[1, 2, 4, 5][i]], refs[[1, 2, 4, 5][i]], b if i < 2 else a))
    assert not [r for r in results if isinstance(r, Exception)]
    for sid in (a, b):
        assert seats_taken(any_db, sid) == confirmed_count(any_db, sid) <= 3
