"""Booking read services: what can be booked, where, and what a factory has booked.

Each reads in one short transaction and returns plain data (Offer, BookingView, dicts).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, func, select

from store.booking_kinds import kind_named, session_offer, slot_offer
from store.booking_results import BookingView, view
from store.db import Database
from store.kinds import BookingStatus, OfferStatus
from store.models import Booking, ClassroomSession, ConsultationSlot, Enquiry, User, utcnow
from store.offers import CLASSROOM, Offer
from store.places import cities_in, region_of
from store.references import normalise_reference


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
        .where(ClassroomSession.status == OfferStatus.OPEN)
        .where(ClassroomSession.starts_at > now)
        .order_by(ClassroomSession.starts_at, ClassroomSession.id)
        .limit(limit)
    )
    if place:
        query = query.where(ClassroomSession.city.in_(cities_in(place)))
    if not include_full:
        query = query.where(ClassroomSession.seats_taken < ClassroomSession.capacity)
    if after is not None:
        query = query.where(ClassroomSession.starts_at > after)
    with db.session() as session:
        return [session_offer(row) for row in session.scalars(query)]


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
        .where(ConsultationSlot.status == OfferStatus.OPEN)
        .where(ConsultationSlot.booked.is_(False))
        .where(ConsultationSlot.starts_at > now)
        .order_by(ConsultationSlot.starts_at, ConsultationSlot.id)
        .limit(limit)
    )
    if not_before is not None:
        query = query.where(ConsultationSlot.starts_at >= not_before)
    if place:
        query = query.where(ConsultationSlot.region == region_of(place))
    with db.session() as session:
        return [slot_offer(row) for row in session.scalars(query)]


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
                .where(ClassroomSession.module == module, ClassroomSession.status == OfferStatus.OPEN,
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
                .where(ConsultationSlot.module == module, ConsultationSlot.status == OfferStatus.OPEN,
                       ConsultationSlot.starts_at > now, ConsultationSlot.booked.is_(False))
                .group_by(ConsultationSlot.region)
            )
            if not_before is not None:
                query = query.where(ConsultationSlot.starts_at >= not_before)
            rows = session.execute(query).all()
    return [name for name, _ in sorted(rows, key=lambda r: (r[1], r[0]))]


def offer(db: Database, kind: str, target_id: int) -> Offer | None:
    with db.session() as session:
        return kind_named(kind).load(session, target_id)


def my_bookings(
    db: Database, user_id: int, now: dt.datetime | None = None, include_past: bool = False
) -> list[BookingView]:
    """The factory's confirmed bookings, soonest first (future ones unless include_past)."""
    now = now or utcnow()
    with db.session() as session:
        rows = session.scalars(
            select(Booking)
            .where(Booking.user_id == user_id, Booking.status == BookingStatus.CONFIRMED)
            .order_by(Booking.id)
        ).all()
        views = [view(session, row) for row in rows]
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
        return view(session, row) if row else None


def _first_classroom(db: Database, user_id: int, module: int, column: Any) -> dt.datetime | None:
    with db.session() as session:
        return session.scalar(
            select(func.min(column))
            .join(Booking, Booking.session_id == ClassroomSession.id)
            .where(Booking.user_id == user_id, Booking.status == BookingStatus.CONFIRMED,
                   ClassroomSession.module == module)
        )


def classroom_starts(db: Database, user_id: int, module: int) -> dt.datetime | None:
    """When the factory's earliest confirmed classroom session of `module` starts, or None
    when it has none: with Module 1, later modules can be booked for sessions that start
    after it. The conversation asks this early; booking_kinds.check_module_order decides
    at booking."""
    return _first_classroom(db, user_id, module, ClassroomSession.starts_at)


def classroom_ends(db: Database, user_id: int, module: int) -> dt.datetime | None:
    """When the factory's earliest confirmed classroom session of `module` ends, or None
    when it has none: consultations of that module can be booked from then on. The
    conversation asks this early;
    booking_kinds.check_consultation_follows_classroom decides at booking."""
    return _first_classroom(db, user_id, module, ClassroomSession.ends_at)


def seats_consistent(db: Database, session_id: int) -> bool:
    """seats_taken equals the number of confirmed bookings (for tests and the console)."""
    with db.session() as session:
        taken = session.scalar(select(ClassroomSession.seats_taken).where(
            ClassroomSession.id == session_id))
        confirmed = session.scalar(select(func.count(Booking.id)).where(
            and_(Booking.session_id == session_id, Booking.status == BookingStatus.CONFIRMED)))
        return taken == confirmed
