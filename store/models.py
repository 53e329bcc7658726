"""Typed SQLAlchemy 2 models: the one vocabulary shared by actions, gateway and console.

Times are stored in UTC (timezone-aware); classroom sessions and consultation slots also keep
their local time zone so they can be shown in local time.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from store.kinds import BookingStatus, Channel, HandoffStatus, OfferStatus, WaitlistStatus


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


# --- people and conversations -------------------------------------------------------------


class User(Base):
    """Someone who talks to the assistant (a Telegram user, or the local chat)."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_users_channel_external"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # a Channel
    external_id: Mapped[str] = mapped_column(String(64))  # Telegram user id, as text
    sender_id: Mapped[str] = mapped_column(String(96), unique=True)  # Rasa conversation id
    chat_id: Mapped[int | None] = mapped_column(BigInteger)  # where replies go
    display_name: Mapped[str | None] = mapped_column(String(200))
    username: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8), default="en")
    language_chosen: Mapped[bool] = mapped_column(Boolean, default=False)  # set by /language
    telegram_language_code: Mapped[str | None] = mapped_column(String(16))
    contact_phone: Mapped[str | None] = mapped_column(String(64))
    paused: Mapped[bool] = mapped_column(Boolean, default=False)  # a human has the conversation
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    transcript: Mapped[list[TranscriptLine]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )


class TranscriptLine(Base):
    """One message in a conversation: user in, bot out, or a staff reply."""

    __tablename__ = "transcript_lines"
    __table_args__ = (Index("ix_transcript_user_time", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    direction: Mapped[str] = mapped_column(String(8))  # in | out | staff
    language: Mapped[str | None] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(96))  # the NLU intent of an "in" line
    confidence: Mapped[float | None] = mapped_column()
    staff_name: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)

    user: Mapped[User] = relationship(back_populates="transcript")


class ProcessedUpdate(Base):
    """Telegram update ids already handled: Telegram may deliver an update twice. Kept for
    two days (store.conversations.prune_processed_updates)."""

    __tablename__ = "processed_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    bot_id: Mapped[str] = mapped_column(String(32), primary_key=True, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


# --- eligibility ----------------------------------------------------------------------------


class Enquiry(Base):
    """A completed eligibility check."""

    __tablename__ = "enquiries"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    employees_low: Mapped[int | None] = mapped_column(Integer)
    employees_high: Mapped[int | None] = mapped_column(Integer)
    sector: Mapped[str | None] = mapped_column(String(32))  # manufacturing | services | other
    sector_kind: Mapped[str | None] = mapped_column(String(100))  # garments, auto parts, ...
    country: Mapped[str | None] = mapped_column(String(64))
    province: Mapped[str | None] = mapped_column(String(64))
    city: Mapped[str | None] = mapped_column(String(64))
    supplies_brands: Mapped[bool | None] = mapped_column(Boolean)
    can_commit: Mapped[bool | None] = mapped_column(Boolean)  # 2+2 in class and hosts visits
    outcome: Mapped[str] = mapped_column(String(16))  # an EligibilityOutcome
    reason: Mapped[str] = mapped_column(Text)
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    language: Mapped[str] = mapped_column(String(8), default="en")
    channel: Mapped[str] = mapped_column(String(16), default=Channel.TELEGRAM)
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    factory_name: Mapped[str | None] = mapped_column(String(200))
    contact_name: Mapped[str | None] = mapped_column(String(200))
    contact: Mapped[str | None] = mapped_column(String(200))  # phone or email
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


# --- schedules and bookings -----------------------------------------------------------------


class ClassroomSession(Base):
    """A two-day classroom session of one module, shared by a few factories."""

    __tablename__ = "classroom_sessions"
    __table_args__ = (
        CheckConstraint("capacity >= 0", name="ck_session_capacity"),
        # The seat invariant lives in the database: a booking is a conditional UPDATE of
        # seats_taken that this constraint refuses once the session is full.
        CheckConstraint("seats_taken >= 0 AND seats_taken <= capacity", name="ck_session_seats"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    module: Mapped[int] = mapped_column(Integer)
    city: Mapped[str] = mapped_column(String(64), index=True)
    venue: Mapped[str] = mapped_column(String(200))
    venue_zh: Mapped[str | None] = mapped_column(String(200))  # shown in Chinese replies when given
    starts_at: Mapped[dt.datetime] = mapped_column()  # first day, local start time, in UTC
    ends_at: Mapped[dt.datetime] = mapped_column()  # second day's end, in UTC
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    capacity: Mapped[int] = mapped_column(Integer)  # in factories
    seats_taken: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=OfferStatus.OPEN)  # an OfferStatus
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ConsultationSlot(Base):
    """An expert's on-site visit window; one factory per slot."""

    __tablename__ = "consultation_slots"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    expert: Mapped[str] = mapped_column(String(200))
    module: Mapped[int] = mapped_column(Integer)
    region: Mapped[str] = mapped_column(String(64), index=True)
    starts_at: Mapped[dt.datetime] = mapped_column()
    ends_at: Mapped[dt.datetime] = mapped_column()
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    booked: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=OfferStatus.OPEN)  # an OfferStatus
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Booking(Base):
    """A factory's seat in a classroom session or its consultation slot."""

    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint(
            "(session_id IS NULL) <> (slot_id IS NULL)", name="ck_booking_one_target"
        ),
        # One factory holds at most one live seat per session / slot.
        Index(
            "uq_booking_session_user",
            "session_id",
            "user_id",
            unique=True,
            sqlite_where=text("status = 'confirmed' AND session_id IS NOT NULL"),
            postgresql_where=text("status = 'confirmed' AND session_id IS NOT NULL"),
        ),
        Index(
            "uq_booking_slot",
            "slot_id",
            unique=True,
            sqlite_where=text("status = 'confirmed' AND slot_id IS NOT NULL"),
            postgresql_where=text("status = 'confirmed' AND slot_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)  # e.g. SC-7K3F9Q
    kind: Mapped[str] = mapped_column(String(16))  # an OfferKind
    session_id: Mapped[int | None] = mapped_column(ForeignKey("classroom_sessions.id"))
    slot_id: Mapped[int | None] = mapped_column(ForeignKey("consultation_slots.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    enquiry_id: Mapped[int | None] = mapped_column(ForeignKey("enquiries.id", ondelete="SET NULL"))
    factory_name: Mapped[str | None] = mapped_column(String(200))
    attendees: Mapped[list[Any]] = mapped_column(default=list)  # [{"name":..., "role":...}]
    contact: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[str] = mapped_column(String(16), default=BookingStatus.CONFIRMED)  # a BookingStatus
    # The same confirmation delivered twice (double tap, Telegram retry) books once.
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column()

    session: Mapped[ClassroomSession | None] = relationship()
    slot: Mapped[ConsultationSlot | None] = relationship()


class WaitlistEntry(Base):
    """A factory waiting for a seat in a full classroom session."""

    __tablename__ = "waitlist_entries"
    __table_args__ = (
        Index(
            "uq_waitlist_session_user",
            "session_id",
            "user_id",
            unique=True,
            sqlite_where=text("status = 'waiting'"),
            postgresql_where=text("status = 'waiting'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("classroom_sessions.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    enquiry_id: Mapped[int | None] = mapped_column(ForeignKey("enquiries.id", ondelete="SET NULL"))
    factory_name: Mapped[str | None] = mapped_column(String(200))
    contact: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[str] = mapped_column(String(16), default=WaitlistStatus.WAITING)  # a WaitlistStatus
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Notification(Base):
    """A message the gateway must send outside a conversation turn (reminders, promotions).

    Written by whoever decides it (actions, console); sent by a gateway, which claims a row
    before sending so that two gateways never send it twice.
    """

    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("dedupe_key", name="uq_notification_dedupe"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # a NotificationKind
    dedupe_key: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    due_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[dt.datetime | None] = mapped_column()
    sent_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# --- handoff and staff ----------------------------------------------------------------------


class Handoff(Base):
    """A conversation passed to staff."""

    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(64))  # asked | misunderstood | unknown_fact | borderline
    detail: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[str] = mapped_column(String(16), default=HandoffStatus.WAITING)  # a HandoffStatus
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    staff_chat_message_id: Mapped[int | None] = mapped_column(BigInteger)
    tags: Mapped[str] = mapped_column(String(400), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    claimed_at: Mapped[dt.datetime | None] = mapped_column()
    resolved_at: Mapped[dt.datetime | None] = mapped_column()


class StaffRelayMessage(Base):
    """A user message the bot relayed to the staff group: a staff reply to it answers that
    handoff. Kept in the store, not in a gateway's memory, so whichever gateway replica
    receives the staff reply can route it."""

    __tablename__ = "staff_relay_messages"

    staff_chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    message_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    handoff_id: Mapped[int] = mapped_column(ForeignKey("handoffs.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class HandoffNote(Base):
    __tablename__ = "handoff_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    handoff_id: Mapped[int] = mapped_column(ForeignKey("handoffs.id", ondelete="CASCADE"))
    author: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class StaffUser(Base):
    """A console login."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="staff")  # staff | admin
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """Every console view and export, for admins to read."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class NluLabel(Base):
    """A staff member's label for a message the assistant did not understand."""

    __tablename__ = "nlu_labels"

    id: Mapped[int] = mapped_column(primary_key=True)
    transcript_line_id: Mapped[int] = mapped_column(
        ForeignKey("transcript_lines.id", ondelete="CASCADE"), unique=True
    )
    intent: Mapped[str] = mapped_column(String(96))  # an existing intent, or new:<name>
    labelled_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# console


class ConsoleSession(Base):
    """A staff member's console login. The cookie carries a random token and the store its
    hash, so that logging out really ends the session (a signed cookie alone would stay
    valid until it expires)."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the token
    staff_user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


# operations


class InboxMessage(Base):
    """A message a channel received, from its receipt until its answer is recorded (the row
    goes in that transaction), so that it outlives the gateway process (store/inbox.py). The
    Telegram gateway records every update before it is confirmed to Telegram; a gateway that
    starts answers what one that died received and never sent to Rasa, and tells the user of a
    message that may have reached Rasa (it is never sent twice)."""

    __tablename__ = "inbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)  # arrival order
    channel: Mapped[str] = mapped_column(String(16))  # a Channel
    external_id: Mapped[str] = mapped_column(String(64))  # the sender on that channel
    update_id: Mapped[int | None] = mapped_column(BigInteger)  # Telegram's update id
    payload: Mapped[str | None] = mapped_column(Text)  # the update as received (JSON), to replay it
    # Known once the turn starts (a message only received has none yet).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(Text)  # what goes to Rasa (a button's payload)
    shown_text: Mapped[str] = mapped_column(Text)  # what the user typed or pressed
    language: Mapped[str | None] = mapped_column(String(8))
    received_at: Mapped[dt.datetime] = mapped_column()  # the hold window counts from here
    # received: nothing done yet; held: Rasa did not take it (sending it again is safe);
    # sending: it may have reached Rasa (never sent again: the user is asked instead)
    state: Mapped[str] = mapped_column(String(16))
    holder: Mapped[str] = mapped_column(String(160))  # host:pid:run of the gateway holding it
    touched_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)  # its heartbeat


class StoreProbe(Base):
    """One row per gateway health check that writes it: /health proves the store can take a
    write (a read-only or full disk answers SELECT 1 and still fails every turn)."""

    __tablename__ = "store_probes"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    checked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
