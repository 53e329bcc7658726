"""What differs between booking a classroom seat and a consultation slot, described once.

store.booking runs one protocol for both kinds of booking (replay, open the target, check
the rules, take a seat, replay, write the booking); a `BookingKind` supplies the parts that
differ: which table holds the target, which Booking column points at it, the rules a factory
must meet, and how a seat is taken and given back.

Capacity is enforced by the database, not by reading a count in Python: a seat is taken by a
conditional UPDATE (see `take_seat`) and the CHECK constraint ck_session_seats refuses
seats_taken > capacity whatever code path runs.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from store.db import rowcount
from store.kinds import BookingStatus, OfferStatus
from store.models import Booking, ClassroomSession, ConsultationSlot
from store.offers import CLASSROOM, CONSULTATION, Offer


class Refused(Exception):
    """A business rule says no; `reason` is an i18n key the conversation can say."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- targets as offers -----------------------------------------------------------------------


def session_offer(row: ClassroomSession) -> Offer:
    return Offer(CLASSROOM, row.id, row.code, row.module, row.city, row.venue, row.starts_at,
                 row.ends_at, row.timezone, max(row.capacity - row.seats_taken, 0),
                 detail_zh=row.venue_zh)


def slot_offer(row: ConsultationSlot) -> Offer:
    return Offer(CONSULTATION, row.id, row.code, row.module, row.region, row.expert,
                 row.starts_at, row.ends_at, row.timezone, 0 if row.booked else 1)


# --- rules -----------------------------------------------------------------------------------


def check_module_order(session: Session, user_id: int, module: int, starts_at: dt.datetime) -> None:
    """Every factory starts with Module 1: a later module needs a confirmed Module 1 seat in
    a session that starts earlier."""
    if module == 1:
        return
    has_module_1 = session.scalar(
        select(Booking.id)
        .join(ClassroomSession, Booking.session_id == ClassroomSession.id)
        .where(Booking.user_id == user_id, Booking.status == BookingStatus.CONFIRMED,
               ClassroomSession.module == 1, ClassroomSession.starts_at < starts_at)
        .limit(1)
    )
    if has_module_1 is None:
        raise Refused("booking_refused_module1_first")


def check_consultation_follows_classroom(
    session: Session, user_id: int, module: int, starts_at: dt.datetime
) -> None:
    """On-site consultations put a module's classroom training into practice: the factory
    needs a confirmed classroom seat of the same module that ends before the visit."""
    found = session.scalar(
        select(Booking.id)
        .join(ClassroomSession, Booking.session_id == ClassroomSession.id)
        .where(Booking.user_id == user_id, Booking.status == BookingStatus.CONFIRMED,
               ClassroomSession.module == module, ClassroomSession.ends_at <= starts_at)
        .limit(1)
    )
    if found is None:
        raise Refused("booking_refused_classroom_first")


# --- seats -----------------------------------------------------------------------------------


def take_seat(session: Session, session_id: int) -> bool:
    """Take one seat, or report the session full. True when taken.

    Why a conditional UPDATE and not "read seats_taken, compare, write": two bookers reading
    the same count would both see a free seat. The UPDATE re-checks `seats_taken < capacity`
    on the row it changes, under the row's write lock (PostgreSQL re-evaluates the WHERE on
    the newest committed row version after waiting for a concurrent writer; SQLite holds the
    database write lock from BEGIN IMMEDIATE), so rowcount 1 means this transaction owns a
    seat and 0 means it is full (or closed). The CHECK constraint ck_session_seats is the
    last line of defence should any other code path write seats_taken.

    The seat and slot UPDATEs are Core statements on the tables, not ORM-enabled ones
    (`update(ClassroomSession)`): the ORM turned those into an annotated copy (AnnotatedUpdate,
    dml_strategy "orm") on every execution — the class named in the reported warning that it
    "will not make use of SQL compilation caching" (issue 15; SQLAlchemy 2.1.9, installed here,
    no longer emits it, but still annotated every statement). Nothing is lost: these UPDATEs
    never synchronised the session's objects.
    """
    table = _SESSIONS
    result = session.execute(
        update(table)
        .where(table.c.id == session_id)
        .where(table.c.seats_taken < table.c.capacity)
        .where(table.c.status == OfferStatus.OPEN)
        .values(seats_taken=table.c.seats_taken + 1)
    )
    return rowcount(result) == 1


def free_seat(session: Session, session_id: int) -> None:
    table = _SESSIONS
    session.execute(
        update(table)
        .where(table.c.id == session_id, table.c.seats_taken > 0)
        .values(seats_taken=table.c.seats_taken - 1)
    )


def take_slot(session: Session, slot_id: int) -> bool:
    """The same conditional UPDATE for a one-factory consultation slot."""
    table = _SLOTS
    result = session.execute(
        update(table)
        .where(table.c.id == slot_id)
        .where(table.c.booked.is_(False))
        .where(table.c.status == OfferStatus.OPEN)
        .values(booked=True)
    )
    return rowcount(result) == 1


def free_slot(session: Session, slot_id: int) -> None:
    table = _SLOTS
    session.execute(update(table).where(table.c.id == slot_id).values(booked=False))


_SESSIONS = cast(Table, ClassroomSession.__table__)
_SLOTS = cast(Table, ConsultationSlot.__table__)


# --- the two kinds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BookingKind:
    """One kind of booking: its target table, the Booking column that points at a target,
    the rules checked at booking, and how a seat is taken and given back."""

    name: str  # Booking.kind
    model: type[ClassroomSession | ConsultationSlot]
    column: InstrumentedAttribute[int | None]  # Booking.session_id | Booking.slot_id
    to_offer: Callable[[Any], Offer]
    check_rules: Callable[[Session, int, int, dt.datetime], None]  # raises Refused
    take: Callable[[Session, int], bool]  # True when this transaction now holds the seat
    free: Callable[[Session, int], None]
    waitlist: bool  # a freed seat goes to the first waiting factory

    def target_id(self, booking: Booking) -> int | None:
        return getattr(booking, self.column.key)

    def point(self, booking: Booking, target_id: int) -> None:
        setattr(booking, self.column.key, target_id)

    def held(self, session: Session, user_id: int, target_id: int) -> Booking | None:
        """The factory's confirmed booking of this target, if it has one."""
        return session.scalar(
            select(Booking).where(Booking.user_id == user_id, Booking.status == BookingStatus.CONFIRMED,
                                  self.column == target_id)
        )

    def load(self, session: Session, target_id: int) -> Offer | None:
        row = session.get(self.model, target_id, populate_existing=True)
        return self.to_offer(row) if row is not None else None

    def open_target(self, session: Session, target_id: int, now: dt.datetime) -> Offer:
        """The target as it is now, if it can still be booked; else Refused."""
        row = cast("ClassroomSession | ConsultationSlot | None",
                   session.get(self.model, target_id, populate_existing=True))
        if row is None:
            raise Refused("booking_refused_not_found")
        if row.status != OfferStatus.OPEN:
            raise Refused("booking_refused_closed")
        if row.starts_at <= now:
            raise Refused("booking_refused_past")
        return self.to_offer(row)


CLASSROOM_KIND = BookingKind(
    name=CLASSROOM, model=ClassroomSession, column=Booking.session_id,
    to_offer=session_offer, check_rules=check_module_order, take=take_seat, free=free_seat,
    waitlist=True,
)
CONSULTATION_KIND = BookingKind(
    name=CONSULTATION, model=ConsultationSlot, column=Booking.slot_id,
    to_offer=slot_offer, check_rules=check_consultation_follows_classroom, take=take_slot,
    free=free_slot, waitlist=False,
)
KINDS = {kind.name: kind for kind in (CLASSROOM_KIND, CONSULTATION_KIND)}


def kind_of(booking: Booking) -> BookingKind:
    """The kind of a booking row, read from the column that is set (one of them always is:
    ck_booking_one_target)."""
    return CLASSROOM_KIND if booking.session_id is not None else CONSULTATION_KIND


def kind_named(name: str | None) -> BookingKind:
    """The kind a conversation names: classroom, or else consultation (as the services have
    always read it)."""
    return CLASSROOM_KIND if name == CLASSROOM else CONSULTATION_KIND
