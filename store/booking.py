"""Booking services: classroom seats, consultation slots, cancel, reschedule, waitlist.

Every public function is one database transaction (retried as a whole when a concurrent
transaction wins a unique constraint or PostgreSQL reports a deadlock), so a caller that gets
a result knows it is committed: the conversation confirms a reference only after that.

A "factory" is the store's User (one Telegram account books for one factory).

Capacity is enforced by the database, not by reading a count in Python: the seat is taken by
a conditional UPDATE (see `_take_seat`) and the CHECK constraint ck_session_seats refuses
seats_taken > capacity whatever code path runs. Idempotency: Booking.idempotency_key is
unique, so the same confirmation delivered twice books once and returns the same booking.
"""
from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import and_, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from store import notifications, schedule
from store.db import Database
from store.models import (
    Booking,
    ClassroomSession,
    ConsultationSlot,
    Enquiry,
    User,
    WaitlistEntry,
    utcnow,
)

# No 0/O, 1/I/L, 5/S, 2/Z, 8/B: a reference read aloud on the phone or copied from a
# screenshot should not be misread. 25 symbols ** 6 = 244 million references.
REFERENCE_ALPHABET = "34679ACDEFGHJKMNPQRTUVWXY"
REFERENCE_LENGTH = 6
REFERENCE_PREFIX = "SC-"
MAX_ATTEMPTS = 6  # whole-transaction retries after a lost race

CLASSROOM = "classroom"
CONSULTATION = "consultation"

T = TypeVar("T")


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """A classroom session or consultation slot as offered to a factory."""

    kind: str
    id: int
    code: str
    module: int
    place: str  # city (classroom) or region (consultation), as in the schedule files
    detail: str  # venue or expert
    starts_at: dt.datetime
    ends_at: dt.datetime
    timezone: str
    seats_left: int
    detail_zh: str | None = None  # the venue's Chinese name, when the schedule gives one


@dataclass(frozen=True)
class BookingView:
    id: int
    reference: str
    kind: str
    status: str
    user_id: int | None
    offer: Offer
    factory_name: str | None
    contact: str | None
    attendees: list[Any] = field(default_factory=list)
    language: str = "en"


@dataclass(frozen=True)
class BookingResult:
    """outcome: booked | duplicate (same confirmation again) | already_booked | full | refused.

    `reason` (an i18n key) says why when refused; `booking` is the factory's booking for
    booked, duplicate and already_booked.
    """

    outcome: str
    booking: BookingView | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in ("booked", "duplicate", "already_booked")


@dataclass(frozen=True)
class CancelResult:
    """outcome: cancelled | not_found (also when the reference is someone else's) |
    already_cancelled | refused (reason: e.g. it already started)."""

    outcome: str
    booking: BookingView | None = None
    reason: str | None = None
    promoted_user_id: int | None = None


@dataclass(frozen=True)
class WaitlistResult:
    """outcome: joined | already_waiting | already_booked | not_full | refused."""

    outcome: str
    position: int | None = None
    reason: str | None = None


class Refused(Exception):
    """A business rule says no; `reason` is an i18n key the conversation can say."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Rollback(Exception):
    """Leave the transaction without committing and hand `value` to the caller."""

    def __init__(self, value: Any) -> None:
        super().__init__("rollback")
        self.value = value


# --- transactions ----------------------------------------------------------------------------


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, IntegrityError):
        return True  # a concurrent twin won a unique constraint: the retry will see its row
    if isinstance(exc, OperationalError):
        code = getattr(getattr(exc, "orig", None), "sqlstate", None)
        return code in ("40001", "40P01")  # serialization failure, deadlock (PostgreSQL)
    return False


def _transaction(db: Database, work: Callable[[Session], T]) -> T:
    """Run `work` in one transaction, retried from the start when it lost a race."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            with db.session() as session:
                return work(session)
        except _Rollback as rollback:
            return rollback.value
        except (IntegrityError, OperationalError) as exc:
            if not _retryable(exc) or attempt == MAX_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


# --- references, users -----------------------------------------------------------------------


def new_reference() -> str:
    return REFERENCE_PREFIX + "".join(
        secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH)
    )


def _unused_reference(session: Session) -> str:
    # A collision is rare (1 in ~10^8 per booking) but possible: try another. Two concurrent
    # transactions drawing the same new reference are caught by the unique constraint and the
    # whole transaction is retried.
    for _ in range(20):
        reference = new_reference()
        if session.scalar(select(Booking.id).where(Booking.reference == reference)) is None:
            return reference
    raise RuntimeError("could not draw an unused booking reference")


def normalise_reference(text: str) -> str:
    """'sc-7k3f9q', 'SC 7K3F9Q', '7K3F9Q' -> 'SC-7K3F9Q'."""
    cleaned = "".join(ch for ch in text.upper() if ch.isalnum())
    if cleaned.startswith("SC"):
        cleaned = cleaned[2:]
    return REFERENCE_PREFIX + cleaned


def user_for_sender(session: Session, sender_id: str, language: str | None = None) -> User:
    """The store's User for a Rasa sender id, created when the gateway has not (local chat,
    REST, tests). The channel is read from the id's prefix (tg-, local-)."""
    user = session.scalar(select(User).where(User.sender_id == sender_id))
    if user is not None:
        return user
    if sender_id.startswith("tg-"):
        channel, external = "telegram", sender_id[3:]
    elif sender_id.startswith("local-"):
        channel, external = "local", sender_id[6:]
    else:
        channel, external = "rest", sender_id
    user = User(channel=channel, external_id=external[:64], sender_id=sender_id,
                language=language or "en")
    session.add(user)
    session.flush()
    return user


def ensure_user(db: Database, sender_id: str, language: str | None = None) -> int:
    return _transaction(db, lambda s: user_for_sender(s, sender_id, language).id)


def latest_enquiry(db: Database, sender_id: str) -> dict[str, Any] | None:
    """The user's latest Enquiry as plain data (to pre-fill factory and contact), or None.
    Factory and contact only when the user consented to their being kept."""
    with db.session() as session:
        enquiry = session.scalar(
            select(Enquiry)
            .join(User, Enquiry.user_id == User.id)
            .where(User.sender_id == sender_id)
            .order_by(Enquiry.created_at.desc(), Enquiry.id.desc())
            .limit(1)
        )
        if enquiry is None:
            return None
        consented = bool(enquiry.consent)
        return {
            "id": enquiry.id,
            "city": enquiry.city,
            "province": enquiry.province,
            "factory_name": enquiry.factory_name if consented else None,
            "contact_name": enquiry.contact_name if consented else None,
            "contact": enquiry.contact if consented else None,
        }


# --- views -----------------------------------------------------------------------------------


def _session_offer(row: ClassroomSession) -> Offer:
    return Offer(CLASSROOM, row.id, row.code, row.module, row.city, row.venue, row.starts_at,
                 row.ends_at, row.timezone, max(row.capacity - row.seats_taken, 0),
                 detail_zh=row.venue_zh)


def _slot_offer(row: ConsultationSlot) -> Offer:
    return Offer(CONSULTATION, row.id, row.code, row.module, row.region, row.expert,
                 row.starts_at, row.ends_at, row.timezone, 0 if row.booked else 1)


def _view(session: Session, booking: Booking) -> BookingView:
    if booking.session_id is not None:
        target = session.get(ClassroomSession, booking.session_id, populate_existing=True)
        assert target is not None
        offer = _session_offer(target)
    else:
        slot = session.get(ConsultationSlot, booking.slot_id, populate_existing=True)
        assert slot is not None
        offer = _slot_offer(slot)
    return BookingView(
        id=booking.id, reference=booking.reference, kind=booking.kind, status=booking.status,
        user_id=booking.user_id, offer=offer, factory_name=booking.factory_name,
        contact=booking.contact, attendees=list(booking.attendees or []),
        language=booking.language,
    )


# --- lookups ---------------------------------------------------------------------------------


def available_sessions(
    db: Database,
    module: int,
    place: str | None = None,
    now: dt.datetime | None = None,
    include_full: bool = False,
    limit: int = 8,
    after: dt.datetime | None = None,
) -> list[Offer]:
    """Open classroom sessions of `module` that start in the future, soonest first.

    `place` is a city or a region (all its cities); full sessions only with include_full
    (to offer the waitlist); with `after` (the start of the factory's Module 1 session)
    only those that start later."""
    now = now or utcnow()
    query = (
        select(ClassroomSession)
        .where(ClassroomSession.module == module)
        .where(ClassroomSession.status == "open")
        .where(ClassroomSession.starts_at > now)
        .order_by(ClassroomSession.starts_at, ClassroomSession.id)
        .limit(limit)
    )
    if place:
        query = query.where(ClassroomSession.city.in_(schedule.cities_in(place)))
    if not include_full:
        query = query.where(ClassroomSession.seats_taken < ClassroomSession.capacity)
    if after is not None:
        query = query.where(ClassroomSession.starts_at > after)
    with db.session() as session:
        return [_session_offer(row) for row in session.scalars(query)]


def available_slots(
    db: Database,
    module: int,
    place: str | None = None,
    now: dt.datetime | None = None,
    limit: int = 8,
    not_before: dt.datetime | None = None,
) -> list[Offer]:
    """Free, open consultation slots of `module` in the future (`place`: region or city);
    with `not_before` (the end of the factory's classroom session) only those from then on."""
    now = now or utcnow()
    query = (
        select(ConsultationSlot)
        .where(ConsultationSlot.module == module)
        .where(ConsultationSlot.status == "open")
        .where(ConsultationSlot.booked.is_(False))
        .where(ConsultationSlot.starts_at > now)
        .order_by(ConsultationSlot.starts_at, ConsultationSlot.id)
        .limit(limit)
    )
    if not_before is not None:
        query = query.where(ConsultationSlot.starts_at >= not_before)
    if place:
        query = query.where(ConsultationSlot.region == schedule.region_of(place))
    with db.session() as session:
        return [_slot_offer(row) for row in session.scalars(query)]


def places_with_offers(db: Database, kind: str, module: int, now: dt.datetime | None = None,
                       include_full: bool = False, not_before: dt.datetime | None = None,
                       after: dt.datetime | None = None) -> list[str]:
    """Cities (classroom, seats left; or any open future session with include_full, to
    offer the waitlist; starting later than `after` when given) or regions (consultation,
    free slots, from `not_before` on when given) that have something to offer for
    `module`, in the order of their first date."""
    now = now or utcnow()
    with db.session() as session:
        if kind == CLASSROOM:
            query = (
                select(ClassroomSession.city, func.min(ClassroomSession.starts_at))
                .where(ClassroomSession.module == module, ClassroomSession.status == "open",
                       ClassroomSession.starts_at > now)
                .group_by(ClassroomSession.city)
            )
            if not include_full:
                query = query.where(ClassroomSession.seats_taken < ClassroomSession.capacity)
            if after is not None:
                query = query.where(ClassroomSession.starts_at > after)
            rows = session.execute(query).all()
        else:
            query = (
                select(ConsultationSlot.region, func.min(ConsultationSlot.starts_at))
                .where(ConsultationSlot.module == module, ConsultationSlot.status == "open",
                       ConsultationSlot.starts_at > now, ConsultationSlot.booked.is_(False))
                .group_by(ConsultationSlot.region)
            )
            if not_before is not None:
                query = query.where(ConsultationSlot.starts_at >= not_before)
            rows = session.execute(query).all()
    return [name for name, _ in sorted(rows, key=lambda r: (r[1], r[0]))]


def offer(db: Database, kind: str, target_id: int) -> Offer | None:
    with db.session() as session:
        if kind == CLASSROOM:
            row = session.get(ClassroomSession, target_id)
            return _session_offer(row) if row else None
        slot = session.get(ConsultationSlot, target_id)
        return _slot_offer(slot) if slot else None


def my_bookings(
    db: Database, user_id: int, now: dt.datetime | None = None, include_past: bool = False
) -> list[BookingView]:
    """The factory's confirmed bookings, soonest first (future ones unless include_past)."""
    now = now or utcnow()
    with db.session() as session:
        rows = session.scalars(
            select(Booking)
            .where(Booking.user_id == user_id, Booking.status == "confirmed")
            .order_by(Booking.id)
        ).all()
        views = [_view(session, row) for row in rows]
    if not include_past:
        views = [v for v in views if v.offer.ends_at > now]
    return sorted(views, key=lambda v: (v.offer.starts_at, v.id))


def booking_by_reference(db: Database, user_id: int, reference: str) -> BookingView | None:
    """The factory's own booking with this reference; None for anybody else's."""
    with db.session() as session:
        row = session.scalar(
            select(Booking).where(Booking.reference == normalise_reference(reference),
                                  Booking.user_id == user_id)
        )
        return _view(session, row) if row else None


# --- rules -----------------------------------------------------------------------------------


def _check_module_order(session: Session, user_id: int, module: int, starts_at: dt.datetime) -> None:
    """Every factory starts with Module 1: a later module needs a confirmed Module 1 seat in
    a session that starts earlier."""
    if module == 1:
        return
    has_module_1 = session.scalar(
        select(Booking.id)
        .join(ClassroomSession, Booking.session_id == ClassroomSession.id)
        .where(Booking.user_id == user_id, Booking.status == "confirmed",
               ClassroomSession.module == 1, ClassroomSession.starts_at < starts_at)
        .limit(1)
    )
    if has_module_1 is None:
        raise Refused("booking_refused_module1_first")


def _first_classroom(db: Database, user_id: int, module: int, column: Any) -> dt.datetime | None:
    with db.session() as session:
        return session.scalar(
            select(func.min(column))
            .join(Booking, Booking.session_id == ClassroomSession.id)
            .where(Booking.user_id == user_id, Booking.status == "confirmed",
                   ClassroomSession.module == module)
        )


def classroom_starts(db: Database, user_id: int, module: int) -> dt.datetime | None:
    """When the factory's earliest confirmed classroom session of `module` starts, or None
    when it has none: with Module 1, later modules can be booked for sessions that start
    after it. The conversation asks this early; _check_module_order decides at booking."""
    return _first_classroom(db, user_id, module, ClassroomSession.starts_at)


def classroom_ends(db: Database, user_id: int, module: int) -> dt.datetime | None:
    """When the factory's earliest confirmed classroom session of `module` ends, or None
    when it has none: consultations of that module can be booked from then on. The
    conversation asks this early; _check_consultation_follows_classroom decides at booking."""
    return _first_classroom(db, user_id, module, ClassroomSession.ends_at)


def _check_consultation_follows_classroom(
    session: Session, user_id: int, module: int, starts_at: dt.datetime
) -> None:
    """On-site consultations put a module's classroom training into practice: the factory
    needs a confirmed classroom seat of the same module that ends before the visit."""
    found = session.scalar(
        select(Booking.id)
        .join(ClassroomSession, Booking.session_id == ClassroomSession.id)
        .where(Booking.user_id == user_id, Booking.status == "confirmed",
               ClassroomSession.module == module, ClassroomSession.ends_at <= starts_at)
        .limit(1)
    )
    if found is None:
        raise Refused("booking_refused_classroom_first")


def _open_future_session(session: Session, session_id: int, now: dt.datetime) -> ClassroomSession:
    target = session.get(ClassroomSession, session_id, populate_existing=True)
    if target is None:
        raise Refused("booking_refused_not_found")
    if target.status != "open":
        raise Refused("booking_refused_closed")
    if target.starts_at <= now:
        raise Refused("booking_refused_past")
    return target


def _open_future_slot(session: Session, slot_id: int, now: dt.datetime) -> ConsultationSlot:
    slot = session.get(ConsultationSlot, slot_id, populate_existing=True)
    if slot is None:
        raise Refused("booking_refused_not_found")
    if slot.status != "open":
        raise Refused("booking_refused_closed")
    if slot.starts_at <= now:
        raise Refused("booking_refused_past")
    return slot


# --- seats -----------------------------------------------------------------------------------


def _take_seat(session: Session, session_id: int) -> bool:
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
        .where(table.c.status == "open")
        .values(seats_taken=table.c.seats_taken + 1)
    )
    return result.rowcount == 1


def _free_seat(session: Session, session_id: int) -> None:
    table = _SESSIONS
    session.execute(
        update(table)
        .where(table.c.id == session_id, table.c.seats_taken > 0)
        .values(seats_taken=table.c.seats_taken - 1)
    )


def _take_slot(session: Session, slot_id: int) -> bool:
    """The same conditional UPDATE for a one-factory consultation slot."""
    table = _SLOTS
    result = session.execute(
        update(table)
        .where(table.c.id == slot_id)
        .where(table.c.booked.is_(False))
        .where(table.c.status == "open")
        .values(booked=True)
    )
    return result.rowcount == 1


def _free_slot(session: Session, slot_id: int) -> None:
    table = _SLOTS
    session.execute(update(table).where(table.c.id == slot_id).values(booked=False))


_SESSIONS = ClassroomSession.__table__
_SLOTS = ConsultationSlot.__table__


# --- reminders -------------------------------------------------------------------------------


def reminder_offsets() -> list[float]:
    """Hours before the start at which reminders are due: REMINDER_OFFSETS_HOURS="24,1"."""
    raw = os.environ.get("REMINDER_OFFSETS_HOURS", "24,1")
    hours = []
    for part in raw.split(","):
        part = part.strip()
        if part:
            value = float(part)
            if value > 0:
                hours.append(value)
    return sorted(set(hours), reverse=True)


def _reminder_prefix(booking_id: int) -> str:
    return f"reminder:b{booking_id}:"


def _write_reminders(session: Session, booking: Booking, target: Offer, now: dt.datetime) -> None:
    """One Notification per offset, due that many hours before the start; offsets already in
    the past are skipped (a booking made 3 hours ahead gets only the 1-hour reminder). The
    dedupe key names the booking, its target and the offset, so the same reminder is never
    written twice, and a rescheduled booking gets new ones."""
    target_tag = f"{'s' if target.kind == CLASSROOM else 'c'}{target.id}"
    for hours in reminder_offsets():
        due = target.starts_at - dt.timedelta(hours=hours)
        if due <= now:
            continue
        label = f"{hours:g}"
        notifications.add(
            session,
            user_id=booking.user_id,
            kind="reminder",
            dedupe_key=f"{_reminder_prefix(booking.id)}{target_tag}:{label}h",
            due_at=due,
            payload=schedule.notification_payload(
                "booking_reminder", booking.language, target,
                reference=booking.reference, extra={"hours": label},
            ),
        )


# --- booking ---------------------------------------------------------------------------------


def _by_key(session: Session, key: str | None) -> Booking | None:
    if not key:
        return None
    return session.scalar(select(Booking).where(Booking.idempotency_key == key))


def _existing_seat(session: Session, user_id: int, session_id: int | None = None,
                   slot_id: int | None = None) -> Booking | None:
    query = select(Booking).where(Booking.user_id == user_id, Booking.status == "confirmed")
    if session_id is not None:
        query = query.where(Booking.session_id == session_id)
    else:
        query = query.where(Booking.slot_id == slot_id)
    return session.scalar(query)


def _replay(session: Session, key: str | None, user_id: int, session_id: int | None = None,
            slot_id: int | None = None) -> BookingResult | None:
    """The answer for a confirmation this factory already made (same key) or a seat it
    already holds. Run before taking a seat and again after (see book_classroom)."""
    twin = _by_key(session, key)
    if twin is not None:
        return BookingResult("duplicate", _view(session, twin))
    held = _existing_seat(session, user_id, session_id, slot_id)
    if held is not None:
        return BookingResult("already_booked", _view(session, held))
    return None


def _new_booking(session: Session, *, kind: str, user_id: int, target: Offer, key: str | None,
                 factory_name: str | None, attendees: list[Any] | None, contact: str | None,
                 language: str, enquiry_id: int | None, now: dt.datetime) -> Booking:
    booking = Booking(
        reference=_unused_reference(session),
        kind=kind,
        session_id=target.id if kind == CLASSROOM else None,
        slot_id=target.id if kind == CONSULTATION else None,
        user_id=user_id,
        enquiry_id=enquiry_id,
        factory_name=factory_name,
        attendees=list(attendees or []),
        contact=contact,
        language=language,
        status="confirmed",
        idempotency_key=key,
        created_at=now,
        updated_at=now,
    )
    session.add(booking)
    session.flush()
    _write_reminders(session, booking, target, now)
    return booking


def book_classroom(
    db: Database,
    user_id: int,
    session_id: int,
    *,
    idempotency_key: str | None = None,
    factory_name: str | None = None,
    attendees: list[Any] | None = None,
    contact: str | None = None,
    language: str = "en",
    enquiry_id: int | None = None,
    now: dt.datetime | None = None,
) -> BookingResult:
    """Book one seat for the factory in a classroom session; `full` means offer the waitlist."""
    now = now or utcnow()

    def work(session: Session) -> BookingResult:
        replay = _replay(session, idempotency_key, user_id, session_id=session_id)
        if replay is not None:
            return replay
        try:
            target = _open_future_session(session, session_id, now)
            _check_module_order(session, user_id, target.module, target.starts_at)
        except Refused as refused:
            return BookingResult("refused", reason=refused.reason)
        if not _take_seat(session, session_id):
            # Full; but a twin may have committed while we waited for the row lock
            # (PostgreSQL, READ COMMITTED: this new statement sees it).
            return _replay(session, idempotency_key, user_id, session_id=session_id) or \
                BookingResult("full")
        # We hold the seat row's lock now, so any twin has committed: look again, and give
        # the seat back (roll back) if this confirmation was already booked.
        replay = _replay(session, idempotency_key, user_id, session_id=session_id)
        if replay is not None:
            raise _Rollback(replay)
        booking = _new_booking(
            session, kind=CLASSROOM, user_id=user_id, target=_session_offer(target),
            key=idempotency_key, factory_name=factory_name, attendees=attendees,
            contact=contact, language=language, enquiry_id=enquiry_id, now=now,
        )
        return BookingResult("booked", _view(session, booking))

    return _transaction(db, work)


def book_consultation(
    db: Database,
    user_id: int,
    slot_id: int,
    *,
    idempotency_key: str | None = None,
    factory_name: str | None = None,
    attendees: list[Any] | None = None,
    contact: str | None = None,
    language: str = "en",
    enquiry_id: int | None = None,
    now: dt.datetime | None = None,
) -> BookingResult:
    """Book an on-site consultation slot; `full` means someone else has it."""
    now = now or utcnow()

    def work(session: Session) -> BookingResult:
        replay = _replay(session, idempotency_key, user_id, slot_id=slot_id)
        if replay is not None:
            return replay
        try:
            slot = _open_future_slot(session, slot_id, now)
            _check_consultation_follows_classroom(session, user_id, slot.module, slot.starts_at)
        except Refused as refused:
            return BookingResult("refused", reason=refused.reason)
        if not _take_slot(session, slot_id):
            return _replay(session, idempotency_key, user_id, slot_id=slot_id) or \
                BookingResult("full")
        replay = _replay(session, idempotency_key, user_id, slot_id=slot_id)
        if replay is not None:
            raise _Rollback(replay)
        booking = _new_booking(
            session, kind=CONSULTATION, user_id=user_id, target=_slot_offer(slot),
            key=idempotency_key, factory_name=factory_name, attendees=attendees,
            contact=contact, language=language, enquiry_id=enquiry_id, now=now,
        )
        return BookingResult("booked", _view(session, booking))

    return _transaction(db, work)


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
            target = _open_future_session(session, session_id, now)
            _check_module_order(session, user_id, target.module, target.starts_at)
        except Refused as refused:
            return WaitlistResult("refused", reason=refused.reason)
        if _existing_seat(session, user_id, session_id=session_id) is not None:
            return WaitlistResult("already_booked")
        waiting = session.scalar(
            select(WaitlistEntry).where(WaitlistEntry.session_id == session_id,
                                        WaitlistEntry.user_id == user_id,
                                        WaitlistEntry.status == "waiting")
        )
        if waiting is None:
            if target.seats_taken < target.capacity:
                return WaitlistResult("not_full")
            waiting = WaitlistEntry(
                session_id=session_id, user_id=user_id, enquiry_id=enquiry_id,
                factory_name=factory_name, contact=contact, language=language,
                status="waiting", created_at=now,
            )
            session.add(waiting)
            session.flush()
            outcome = "joined"
        else:
            outcome = "already_waiting"
        position = session.scalar(
            select(func.count(WaitlistEntry.id)).where(
                WaitlistEntry.session_id == session_id, WaitlistEntry.status == "waiting",
                WaitlistEntry.id <= waiting.id,
            )
        )
        return WaitlistResult(outcome, position=int(position or 0))

    return _transaction(db, work)


def _promote_waiting(session: Session, session_id: int, now: dt.datetime) -> int | None:
    """Give a just-freed seat to the first factory waiting for it; book it and write the
    Notification that tells them. Returns the promoted user id, or None."""
    target = session.get(ClassroomSession, session_id, populate_existing=True)
    if target is None or target.status != "open" or target.starts_at <= now:
        return None
    entries = session.scalars(
        select(WaitlistEntry)
        .where(WaitlistEntry.session_id == session_id, WaitlistEntry.status == "waiting")
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
        .with_for_update()
    ).all()
    for entry in entries:
        if entry.user_id is None or _existing_seat(session, entry.user_id, session_id=session_id):
            entry.status = "left"  # the account is gone, or they booked a seat meanwhile
            continue
        if not _take_seat(session, session_id):
            return None  # no seat after all (someone booked it in this transaction's view)
        booking = _new_booking(
            session, kind=CLASSROOM, user_id=entry.user_id, target=_session_offer(target),
            key=f"waitlist:{entry.id}", factory_name=entry.factory_name, attendees=[],
            contact=entry.contact, language=entry.language, enquiry_id=entry.enquiry_id,
            now=now,
        )
        entry.status = "promoted"
        entry.booking_id = booking.id
        notifications.add(
            session,
            user_id=entry.user_id,
            kind="waitlist_promoted",
            dedupe_key=f"waitlist_promoted:{entry.id}",
            due_at=now,
            payload=schedule.notification_payload(
                "booking_waitlist_promoted", entry.language, _session_offer(target),
                reference=booking.reference,
            ),
        )
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
        if booking.status != "confirmed":
            return CancelResult("already_cancelled", _view(session, booking))
        view = _view(session, booking)
        if view.offer.starts_at <= now:
            return CancelResult("refused", view, reason="booking_refused_started")
        booking.status = "cancelled"
        booking.cancelled_at = now
        booking.updated_at = now
        session.flush()  # leave the partial unique index before a promotion books the seat
        notifications.void_unsent(session, _reminder_prefix(booking.id))
        promoted = None
        if booking.session_id is not None:
            _free_seat(session, booking.session_id)
            promoted = _promote_waiting(session, booking.session_id, now)
        else:
            assert booking.slot_id is not None
            _free_slot(session, booking.slot_id)
        return CancelResult("cancelled", _view(session, booking), promoted_user_id=promoted)

    return _transaction(db, work)


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
        if booking is None or booking.status != "confirmed":
            return BookingResult("refused", reason="booking_refused_not_found")
        old_view = _view(session, booking)
        classroom = booking.kind == CLASSROOM
        if (booking.session_id if classroom else booking.slot_id) == new_target_id:
            return BookingResult("duplicate", old_view)
        if old_view.offer.starts_at <= now:
            return BookingResult("refused", old_view, reason="booking_refused_started")
        try:
            if classroom:
                new_target = _session_offer(_open_future_session(session, new_target_id, now))
            else:
                new_target = _slot_offer(_open_future_slot(session, new_target_id, now))
            if new_target.module != old_view.offer.module:
                raise Refused("booking_refused_other_module")
            if classroom:
                _check_module_order(session, user_id, new_target.module, new_target.starts_at)
            else:
                _check_consultation_follows_classroom(
                    session, user_id, new_target.module, new_target.starts_at)
        except Refused as refused:
            return BookingResult("refused", old_view, reason=refused.reason)
        if classroom and _existing_seat(session, user_id, session_id=new_target_id):
            return BookingResult("already_booked", old_view)
        taken = _take_seat(session, new_target_id) if classroom else _take_slot(session, new_target_id)
        if not taken:
            return BookingResult("full", old_view)
        # The new seat is ours: only now give up the old one.
        old_id = booking.session_id if classroom else booking.slot_id
        assert old_id is not None
        if classroom:
            booking.session_id = new_target_id
        else:
            booking.slot_id = new_target_id
        booking.updated_at = now
        session.flush()
        notifications.void_unsent(session, _reminder_prefix(booking.id))
        _write_reminders(session, booking, new_target, now)
        if classroom:
            _free_seat(session, old_id)
            _promote_waiting(session, old_id, now)
        else:
            _free_slot(session, old_id)
        return BookingResult("booked", _view(session, booking))

    return _transaction(db, work)


def seats_consistent(db: Database, session_id: int) -> bool:
    """seats_taken equals the number of confirmed bookings (for tests and the console)."""
    with db.session() as session:
        taken = session.scalar(select(ClassroomSession.seats_taken).where(
            ClassroomSession.id == session_id))
        confirmed = session.scalar(select(func.count(Booking.id)).where(
            and_(Booking.session_id == session_id, Booking.status == "confirmed")))
        return taken == confirmed
