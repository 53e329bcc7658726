"""Finding conversations (a user's transcript) by text and filters, and reading one whole."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import Session

from store.kinds import EligibilityOutcome, HandoffStatus
from store.models import (
    Booking,
    ClassroomSession,
    ConsultationSlot,
    Enquiry,
    Handoff,
    HandoffNote,
    TranscriptLine,
    User,
)

LANGUAGES = ("en", "zh")
OUTCOMES = tuple(EligibilityOutcome)
MODULES = (1, 2, 3, 4, 5)
PAGE_SIZE = 50


@dataclass(frozen=True)
class Filters:
    q: str = ""
    status: str = ""  # a handoff status, or "none" for never handed off
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    language: str = ""
    module: int | None = None
    outcome: str = ""

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Filters:
        def date(name: str) -> dt.date | None:
            try:
                return dt.date.fromisoformat(params.get(name, "").strip())
            except ValueError:
                return None

        module = params.get("module", "").strip()
        status = params.get("status", "").strip()
        language = params.get("language", "").strip()
        outcome = params.get("outcome", "").strip()
        return cls(
            q=params.get("q", "").strip()[:200],
            status=status if status in (*HandoffStatus, "none") else "",
            date_from=date("from"),
            date_to=date("to"),
            language=language if language in LANGUAGES else "",
            module=int(module) if module.isdigit() else None,
            outcome=outcome if outcome in OUTCOMES else "",
        )

    @property
    def active(self) -> bool:
        return any(
            (self.q, self.status, self.date_from, self.date_to, self.language, self.module,
             self.outcome)
        )


def _day_bounds(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(dt.UTC)


def apply_filters(stmt: Select, filters: Filters, tz: ZoneInfo) -> Select:
    """Narrow a query over User to the conversations that match every filter."""
    line = TranscriptLine
    if filters.q:
        needle = filters.q.lower()
        stmt = stmt.where(
            exists().where(
                line.user_id == User.id,
                func.lower(line.text).contains(needle, autoescape=True),
            )
        )
    if filters.date_from or filters.date_to:
        conds = [line.user_id == User.id]
        if filters.date_from:
            conds.append(line.created_at >= _day_bounds(filters.date_from, tz))
        if filters.date_to:
            conds.append(line.created_at < _day_bounds(filters.date_to + dt.timedelta(days=1), tz))
        stmt = stmt.where(exists().where(*conds))
    if filters.status == "none":
        stmt = stmt.where(~exists().where(Handoff.user_id == User.id))
    elif filters.status:
        stmt = stmt.where(
            exists().where(Handoff.user_id == User.id, Handoff.status == filters.status)
        )
    if filters.language:
        stmt = stmt.where(User.language == filters.language)
    if filters.outcome:
        stmt = stmt.where(
            exists().where(Enquiry.user_id == User.id, Enquiry.outcome == filters.outcome)
        )
    if filters.module is not None:
        # The module a conversation is about: the one its bookings are for.
        in_session = (
            select(Booking.id)
            .join(ClassroomSession, ClassroomSession.id == Booking.session_id)
            .where(Booking.user_id == User.id, ClassroomSession.module == filters.module)
        )
        in_slot = (
            select(Booking.id)
            .join(ConsultationSlot, ConsultationSlot.id == Booking.slot_id)
            .where(Booking.user_id == User.id, ConsultationSlot.module == filters.module)
        )
        stmt = stmt.where(or_(in_session.exists(), in_slot.exists()))
    return stmt


@dataclass(frozen=True)
class ConversationRow:
    user: User
    lines: int
    last_at: dt.datetime | None
    handoff_status: str | None
    snippet: str | None  # the newest line that matches the search text


def search(
    session: Session, filters: Filters, tz: ZoneInfo, page: int = 1
) -> tuple[list[ConversationRow], int]:
    """Matching conversations, most recently active first, and how many there are in all."""
    last_at = (
        select(func.max(TranscriptLine.created_at))
        .where(TranscriptLine.user_id == User.id)
        .scalar_subquery()
    )
    base = apply_filters(select(User), filters, tz)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    users = session.execute(
        apply_filters(select(User, last_at.label("last_at")), filters, tz)
        .order_by(last_at.desc().nulls_last(), User.id.desc())
        .offset((max(page, 1) - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    rows = []
    for user, last in users:
        n = session.scalar(select(func.count()).where(TranscriptLine.user_id == user.id)) or 0
        status = session.scalar(
            select(Handoff.status)
            .where(Handoff.user_id == user.id)
            .order_by(Handoff.created_at.desc(), Handoff.id.desc())
            .limit(1)
        )
        snippet = None
        if filters.q:
            snippet = session.scalar(
                select(TranscriptLine.text)
                .where(
                    TranscriptLine.user_id == user.id,
                    func.lower(TranscriptLine.text).contains(filters.q.lower(), autoescape=True),
                )
                .order_by(TranscriptLine.created_at.desc())
                .limit(1)
            )
        rows.append(ConversationRow(user, n, last, status, snippet))
    return rows, total


def matching_user_ids(session: Session, filters: Filters, tz: ZoneInfo, limit: int) -> list[int]:
    stmt = apply_filters(select(User.id), filters, tz).order_by(User.id).limit(limit)
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class HandoffView:
    handoff: Handoff
    notes: list[HandoffNote]

    @property
    def tag_list(self) -> list[str]:
        return [t for t in self.handoff.tags.split(",") if t]


@dataclass(frozen=True)
class Conversation:
    user: User
    lines: list[TranscriptLine]
    handoffs: list[HandoffView]
    enquiries: list[Enquiry]
    bookings: list[Booking]


def load(session: Session, user_id: int) -> Conversation | None:
    user = session.get(User, user_id)
    if user is None:
        return None
    lines = list(
        session.scalars(
            select(TranscriptLine)
            .where(TranscriptLine.user_id == user_id)
            .order_by(TranscriptLine.created_at, TranscriptLine.id)
        )
    )
    handoffs = []
    for handoff in session.scalars(
        select(Handoff).where(Handoff.user_id == user_id).order_by(Handoff.created_at.desc())
    ):
        notes = list(
            session.scalars(
                select(HandoffNote)
                .where(HandoffNote.handoff_id == handoff.id)
                .order_by(HandoffNote.created_at, HandoffNote.id)
            )
        )
        handoffs.append(HandoffView(handoff, notes))
    enquiries = list(
        session.scalars(
            select(Enquiry).where(Enquiry.user_id == user_id).order_by(Enquiry.created_at.desc())
        )
    )
    bookings = list(
        session.scalars(
            select(Booking).where(Booking.user_id == user_id).order_by(Booking.created_at.desc())
        )
    )
    for booking in bookings:  # load while the session is open; templates read them later
        _ = booking.session, booking.slot
    return Conversation(user, lines, handoffs, enquiries, bookings)
