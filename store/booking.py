"""Booking services: classroom seats, consultation slots, cancel, reschedule, waitlist.

One protocol books both kinds (`book`); what differs between a classroom seat and a
consultation slot is described once in store.booking_kinds:

1. replay: the same confirmation already booked (idempotency key) or a seat the factory
   already holds answers as before, without touching the seat;
2. open the target and check the kind's rules (Refused -> `refused`);
3. take the seat with the kind's conditional UPDATE (none left -> replay again, else `full`);
4. replay again: holding the seat's row lock, a twin that raced us has committed by now; if
   there is one, roll back (the seat is given back) and answer as the twin did;
5. write the booking and its reminders.

Every public function is one database transaction, retried as a whole when a concurrent
transaction wins a unique constraint or PostgreSQL reports a deadlock (store.transactions),
so a caller that gets a result knows it is committed: the conversation confirms a reference
only after that.

A "factory" is the store's User (one Telegram account books for one factory).

Capacity is enforced by the database, not by reading a count in Python: see
store.booking_kinds.take_seat and the CHECK constraint ck_session_seats. Idempotency:
Booking.idempotency_key is unique, so the same confirmation delivered twice books once and
returns the same booking.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, TypedDict, Unpack

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.booking_kinds import (
    CLASSROOM_KIND,
    KINDS,
    BookingKind,
    Refused,
    kind_of,
)
from store.booking_notices import (  # noqa: F401
    reminder_offsets,
    void_reminders,
    write_promotion_notice,
    write_reminders,
)
from store.booking_queries import (  # noqa: F401  (the read services, re-exported)
    available_sessions,
    available_slots,
    booking_by_reference,
    classroom_ends,
    classroom_starts,
    latest_enquiry,
    my_bookings,
    offer,
    places_with_offers,
    seats_consistent,
)
from store.booking_results import (  # noqa: F401
    BookingResult,
    BookingView,
    CancelResult,
    WaitlistOutcome,
    WaitlistResult,
    view,
)
from store.db import Database
from store.kinds import BookingStatus, WaitlistStatus
from store.models import Booking, WaitlistEntry, utcnow
from store.offers import CLASSROOM, CONSULTATION, Offer  # noqa: F401
from store.references import (  # noqa: F401
    REFERENCE_ALPHABET,
    REFERENCE_LENGTH,
    REFERENCE_PREFIX,
    new_reference,
    normalise_reference,
)
from store.transactions import MAX_ATTEMPTS, Rollback, transaction  # noqa: F401

# Find-or-create lives in store.users; these names stay part of the booking API.
from store.users import ensure_user, find_or_create as user_for_sender  # noqa: F401

# --- writing a booking -----------------------------------------------------------------------


def _unused_reference(session: Session) -> str:
    # A collision is rare (1 in ~10^8 per booking) but possible: try another. Two concurrent
    # transactions drawing the same new reference are caught by the unique constraint and the
    # whole transaction is retried.
    for _ in range(20):
        reference = new_reference()
        if session.scalar(select(Booking.id).where(Booking.reference == reference)) is None:
            return reference
    raise RuntimeError("could not draw an unused booking reference")


def _new_booking(session: Session, *, kind: BookingKind, user_id: int, target: Offer,
                 key: str | None, factory_name: str | None, attendees: list[Any] | None,
                 contact: str | None, language: str, enquiry_id: int | None,
                 now: dt.datetime) -> Booking:
    booking = Booking(
        reference=_unused_reference(session),
        kind=kind.name,
        user_id=user_id,
        enquiry_id=enquiry_id,
        factory_name=factory_name,
        attendees=list(attendees or []),
        contact=contact,
        language=language,
        status=BookingStatus.CONFIRMED,
        idempotency_key=key,
        created_at=now,
        updated_at=now,
    )
    kind.point(booking, target.id)
    session.add(booking)
    session.flush()
    write_reminders(session, booking, target, now)
    return booking


def _replay(session: Session, kind: BookingKind, key: str | None, user_id: int,
            target_id: int) -> BookingResult | None:
    """The answer for a confirmation this factory already made (same key) or a seat it
    already holds. Run before taking a seat and again after (see `book`)."""
    if key:
        twin = session.scalar(select(Booking).where(Booking.idempotency_key == key))
        if twin is not None:
            return BookingResult("duplicate", view(session, twin))
    held = kind.held(session, user_id, target_id)
    if held is not None:
        return BookingResult("already_booked", view(session, held))
    return None


# --- booking ---------------------------------------------------------------------------------


class BookingDetails(TypedDict, total=False):
    """The keyword arguments of `book`, for the two kinds' entry points."""

    idempotency_key: str | None
    factory_name: str | None
    attendees: list[Any] | None
    contact: str | None
    language: str
    enquiry_id: int | None
    now: dt.datetime | None


def book(
    db: Database,
    kind: str,
    user_id: int,
    target_id: int,
    *,
    idempotency_key: str | None = None,
    factory_name: str | None = None,
    attendees: list[Any] | None = None,
    contact: str | None = None,
    language: str = "en",
    enquiry_id: int | None = None,
    now: dt.datetime | None = None,
) -> BookingResult:
    """Book a seat in a classroom session or a consultation slot (`kind`: CLASSROOM or
    CONSULTATION) for the factory; the steps are in the module docstring. `full` means the
    classroom session has no seat left (offer the waitlist) or someone else has the slot."""
    description = KINDS[kind]
    now = now or utcnow()

    def work(session: Session) -> BookingResult:
        replay = _replay(session, description, idempotency_key, user_id, target_id)
        if replay is not None:
            return replay
        try:
            target = description.open_target(session, target_id, now)
            description.check_rules(session, user_id, target.module, target.starts_at)
        except Refused as refused:
            return BookingResult("refused", reason=refused.reason)
        if not description.take(session, target_id):
            # Full; but a twin may have committed while we waited for the row lock
            # (PostgreSQL, READ COMMITTED: this new statement sees it).
            return _replay(session, description, idempotency_key, user_id, target_id) or \
                BookingResult("full")
        # We hold the seat row's lock now, so any twin has committed: look again, and give
        # the seat back (roll back) if this confirmation was already booked.
        replay = _replay(session, description, idempotency_key, user_id, target_id)
        if replay is not None:
            raise Rollback(replay)
        booking = _new_booking(
            session, kind=description, user_id=user_id, target=target, key=idempotency_key,
            factory_name=factory_name, attendees=attendees, contact=contact,
            language=language, enquiry_id=enquiry_id, now=now,
        )
        return BookingResult("booked", view(session, booking))

    return transaction(db, work)


def book_classroom(db: Database, user_id: int, session_id: int,
                   **details: Unpack[BookingDetails]) -> BookingResult:
    """Book one seat for the factory in a classroom session; `full` means offer the waitlist."""
    return book(db, CLASSROOM, user_id, session_id, **details)


def book_consultation(db: Database, user_id: int, slot_id: int,
                      **details: Unpack[BookingDetails]) -> BookingResult:
    """Book an on-site consultation slot; `full` means someone else has it."""
    return book(db, CONSULTATION, user_id, slot_id, **details)


# --- waitlist --------------------------------------------------------------------------------


def join_waitlist(
    db: Database,
    user_id: int,
    session_id: int,
    *,
    factory_name: str | None = None,
    contact: str | None = None,
    language: str = "en",
    enquiry_id: int | None = None,
    now: dt.datetime | None = None,
) -> WaitlistResult:
    """Wait for a seat in a full session; the first waiting factory gets the next free seat."""
    now = now or utcnow()

    def work(session: Session) -> WaitlistResult:
        try:
            target = CLASSROOM_KIND.open_target(session, session_id, now)
            CLASSROOM_KIND.check_rules(session, user_id, target.module, target.starts_at)
        except Refused as refused:
            return WaitlistResult("refused", reason=refused.reason)
        if CLASSROOM_KIND.held(session, user_id, session_id) is not None:
            return WaitlistResult("already_booked")
        waiting = session.scalar(
            select(WaitlistEntry).where(WaitlistEntry.session_id == session_id,
                                        WaitlistEntry.user_id == user_id,
                                        WaitlistEntry.status == WaitlistStatus.WAITING)
        )
        if waiting is None:
            if target.seats_left > 0:
                return WaitlistResult("not_full")
            waiting = WaitlistEntry(
                session_id=session_id, user_id=user_id, enquiry_id=enquiry_id,
                factory_name=factory_name, contact=contact, language=language,
                status=WaitlistStatus.WAITING, created_at=now,
            )
            session.add(waiting)
            session.flush()
            outcome: WaitlistOutcome = "joined"
        else:
            outcome = "already_waiting"
        position = session.scalar(
            select(func.count(WaitlistEntry.id)).where(
                WaitlistEntry.session_id == session_id, WaitlistEntry.status == WaitlistStatus.WAITING,
                WaitlistEntry.id <= waiting.id,
            )
        )
        return WaitlistResult(outcome, position=int(position or 0))

    return transaction(db, work)


def _promote_waiting(session: Session, session_id: int, now: dt.datetime) -> int | None:
    """Give a just-freed seat to the first factory waiting for it; book it and write the
    Notification that tells them. Returns the promoted user id, or None."""
    try:
        target = CLASSROOM_KIND.open_target(session, session_id, now)
    except Refused:
        return None  # gone, closed or started: nobody is promoted into it
    entries = session.scalars(
        select(WaitlistEntry)
        .where(WaitlistEntry.session_id == session_id, WaitlistEntry.status == WaitlistStatus.WAITING)
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
        .with_for_update()
    ).all()
    for entry in entries:
        if entry.user_id is None or CLASSROOM_KIND.held(session, entry.user_id, session_id):
            entry.status = WaitlistStatus.LEFT  # the account is gone, or they booked a seat meanwhile
            continue
        if not CLASSROOM_KIND.take(session, session_id):
            return None  # no seat after all (someone booked it in this transaction's view)
        booking = _new_booking(
            session, kind=CLASSROOM_KIND, user_id=entry.user_id, target=target,
            key=f"waitlist:{entry.id}", factory_name=entry.factory_name, attendees=[],
            contact=entry.contact, language=entry.language, enquiry_id=entry.enquiry_id,
            now=now,
        )
        entry.status = WaitlistStatus.PROMOTED
        entry.booking_id = booking.id
        write_promotion_notice(session, booking, target, entry.id, now)
        return entry.user_id
    return None


# --- cancel and reschedule -------------------------------------------------------------------


def _own_booking(session: Session, user_id: int, reference: str) -> Booking | None:
    # Lock the row: a concurrent cancel of the same booking waits, then sees it cancelled.
    return session.scalar(
        select(Booking)
        .where(Booking.reference == normalise_reference(reference), Booking.user_id == user_id)
        .with_for_update()
    )


def _give_back(session: Session, kind: BookingKind, target_id: int,
               now: dt.datetime) -> int | None:
    """Free the seat a booking no longer holds; a classroom seat goes to the first waiting
    factory. Returns the promoted user id, or None."""
    kind.free(session, target_id)
    return _promote_waiting(session, target_id, now) if kind.waitlist else None


def cancel_booking(
    db: Database, user_id: int, reference: str, now: dt.datetime | None = None
) -> CancelResult:
    """Cancel the factory's booking, void its reminders and promote the first waiting factory.

    A reference that is someone else's gives the same `not_found` as one that does not exist,
    so references can't be probed."""
    now = now or utcnow()

    def work(session: Session) -> CancelResult:
        booking = _own_booking(session, user_id, reference)
        if booking is None:
            return CancelResult("not_found")
        current = view(session, booking)
        if booking.status != BookingStatus.CONFIRMED:
            return CancelResult("already_cancelled", current)
        if current.offer.starts_at <= now:
            return CancelResult("refused", current, reason="booking_refused_started")
        kind, target_id = kind_of(booking), current.offer.id
        booking.status = BookingStatus.CANCELLED
        booking.cancelled_at = now
        booking.updated_at = now
        session.flush()  # leave the partial unique index before a promotion books the seat
        void_reminders(session, booking.id)
        promoted = _give_back(session, kind, target_id, now)
        return CancelResult("cancelled", view(session, booking), promoted_user_id=promoted)

    return transaction(db, work)


def reschedule_booking(
    db: Database,
    user_id: int,
    reference: str,
    new_target_id: int,
    now: dt.datetime | None = None,
) -> BookingResult:
    """Move the factory's booking to another session (or slot) of the same module.

    One transaction: the new seat is taken first and the old one given up only after that,
    so a full new session leaves the booking as it was. The reference stays the same; a
    repeated request (already moved) returns the booking unchanged as `duplicate`."""
    now = now or utcnow()

    def work(session: Session) -> BookingResult:
        booking = _own_booking(session, user_id, reference)
        if booking is None or booking.status != BookingStatus.CONFIRMED:
            return BookingResult("refused", reason="booking_refused_not_found")
        old = view(session, booking)
        kind, old_id = kind_of(booking), old.offer.id
        if old_id == new_target_id:
            return BookingResult("duplicate", old)
        if old.offer.starts_at <= now:
            return BookingResult("refused", old, reason="booking_refused_started")
        try:
            new_target = kind.open_target(session, new_target_id, now)
            if new_target.module != old.offer.module:
                raise Refused("booking_refused_other_module")
            kind.check_rules(session, user_id, new_target.module, new_target.starts_at)
        except Refused as refused:
            return BookingResult("refused", old, reason=refused.reason)
        if kind.held(session, user_id, new_target_id) is not None:
            return BookingResult("already_booked", old)
        if not kind.take(session, new_target_id):
            return BookingResult("full", old)
        # The new seat is ours: only now give up the old one.
        kind.point(booking, new_target_id)
        booking.updated_at = now
        session.flush()
        void_reminders(session, booking.id)
        write_reminders(session, booking, new_target, now)
        _give_back(session, kind, old_id, now)
        return BookingResult("booked", view(session, booking))

    return transaction(db, work)
