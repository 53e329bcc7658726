"""The seat and slot UPDATEs (store/booking.py) are plain, cacheable statements. Issue 15
reported SQLAlchemy warning at every seat update that `AnnotatedUpdate` "will not make use of
SQL compilation caching": the ORM-enabled UPDATE was annotated on each execution. The installed
SQLAlchemy (2.1.9) no longer emits that warning, so the test checks the cause as well: on SQLite
and PostgreSQL, no SQLAlchemy warning, the statement reaching the engine is not an annotated
copy (it was, before the fix: the test failed), and later executions come from the compiled
cache."""
from __future__ import annotations

import warnings

import pytest
from sqlalchemy import event
from sqlalchemy.exc import SAWarning
from sqlalchemy.sql.annotation import Annotated

from store import booking
from tests.test_booking_support import add_session, add_slot, add_users, seats_taken


@pytest.fixture
def db(any_db):
    return any_db


def test_seat_updates_are_cached_and_silent(db) -> None:
    sessions = [add_session(db, capacity=5) for _ in range(2)]
    slots = [add_slot(db) for _ in range(2)]
    users = add_users(db, 4, prefix="cache")
    seen: list[tuple[str, object, object]] = []  # (table, statement as executed, cache outcome)

    @event.listens_for(db.engine, "after_execute")
    def record(conn, clauseelement, multiparams, params, execution_options, result) -> None:
        table = getattr(getattr(clauseelement, "table", None), "name", None)
        if getattr(clauseelement, "is_update", False) and table in ("classroom_sessions", "consultation_slots"):
            seen.append((table, clauseelement, result.context.cache_hit))

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", SAWarning)
            refs = [booking.book_classroom(db, user, sessions[i % 2]).booking.reference
                    for i, user in enumerate(users)]
            for user, slot_id in zip(users, slots, strict=False):
                assert booking.book_consultation(db, user, slot_id).outcome == "booked"
            assert booking.cancel_booking(db, users[3], refs[3]).outcome == "cancelled"
    finally:
        event.remove(db.engine, "after_execute", record)
    assert seats_taken(db, sessions[0]) == 2 and seats_taken(db, sessions[1]) == 1
    for table, count in (("classroom_sessions", 5), ("consultation_slots", 2)):
        updates = [(stmt, hit) for name, stmt, hit in seen if name == table]
        assert len(updates) == count, (table, seen)
        for statement, _ in updates:
            assert not isinstance(statement, Annotated), type(statement).__name__
    seat_updates = [hit.name for name, _, hit in seen if name == "classroom_sessions"]
    # four seat takes: compiled once, then from the cache
    assert seat_updates[1:4] == ["CACHE_HIT"] * 3, seat_updates
    assert [hit.name for name, _, hit in seen if name == "consultation_slots"][1] == "CACHE_HIT"
