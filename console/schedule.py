"""Enquiries and bookings as staff see them: lists, and the schedule of each session."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.kinds import BookingStatus, WaitlistStatus
from store.models import Booking, ClassroomSession, ConsultationSlot, Enquiry, User, WaitlistEntry

PAGE_SIZE = 50


def enquiries(
    session: Session, outcome: str = "", language: str = "", page: int = 1
) -> tuple[list[tuple[Enquiry, User | None]], int]:
    stmt = select(Enquiry, User).outerjoin(User, User.id == Enquiry.user_id)
    if outcome:
        stmt = stmt.where(Enquiry.outcome == outcome)
    if language:
        stmt = stmt.where(Enquiry.language == language)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.execute(
        stmt.order_by(Enquiry.created_at.desc(), Enquiry.id.desc())
        .offset((max(page, 1) - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    return [(e, u) for e, u in rows], total


@dataclass(frozen=True)
class SessionSchedule:
    session: ClassroomSession
    bookings: list[Booking]
    waitlist: int

    @property
    def confirmed(self) -> int:
        return sum(1 for b in self.bookings if b.status == BookingStatus.CONFIRMED)

    @property
    def fill_percent(self) -> int:
        cap = self.session.capacity
        return min(100, round(self.session.seats_taken / cap * 100)) if cap else 100


def sessions(session: Session, module: int | None = None) -> list[SessionSchedule]:
    """Every classroom session in date order with its bookings and waitlist length."""
    stmt = select(ClassroomSession).order_by(ClassroomSession.starts_at, ClassroomSession.code)
    if module is not None:
        stmt = stmt.where(ClassroomSession.module == module)
    waiting = dict(
        session.execute(
            select(WaitlistEntry.session_id, func.count())
            .where(WaitlistEntry.status == WaitlistStatus.WAITING)
            .group_by(WaitlistEntry.session_id)
        ).all()
    )
    result = []
    for row in session.scalars(stmt):
        bookings = list(
            session.scalars(
                select(Booking)
                .where(Booking.session_id == row.id)
                .order_by(Booking.status, Booking.created_at)
            )
        )
        result.append(SessionSchedule(row, bookings, waiting.get(row.id, 0)))
    return result


def consultation_bookings(session: Session) -> list[tuple[Booking, ConsultationSlot]]:
    rows = session.execute(
        select(Booking, ConsultationSlot)
        .join(ConsultationSlot, ConsultationSlot.id == Booking.slot_id)
        .order_by(ConsultationSlot.starts_at, Booking.created_at)
    ).all()
    return [(b, s) for b, s in rows]
