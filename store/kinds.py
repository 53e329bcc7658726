"""The closed sets of words the store, the actions, the gateway and the console share.

Each is a `StrEnum`: a member *is* its string ("confirmed" == BookingStatus.CONFIRMED), so rows
keep plain text columns and old data reads unchanged, while code names a status or kind by a
member that mypy checks, never by a bare string that may be misspelt.
"""
from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """Where a user writes from (users.channel; the prefix of a sender id is its short form)."""

    TELEGRAM = "telegram"
    LOCAL = "local"
    REST = "rest"
    WECHAT = "wechat"
    WEB = "web"


class OfferKind(StrEnum):
    """What is offered and booked: a seat in a classroom session or an expert's consultation
    slot (Offer.kind, Booking.kind; store.booking_kinds describes how each is booked)."""

    CLASSROOM = "classroom"
    CONSULTATION = "consultation"


class BookingStatus(StrEnum):
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


class OfferStatus(StrEnum):
    """A classroom session's or consultation slot's status."""

    OPEN = "open"
    CANCELLED = "cancelled"


class WaitlistStatus(StrEnum):
    WAITING = "waiting"
    PROMOTED = "promoted"
    LEFT = "left"


class HandoffStatus(StrEnum):
    WAITING = "waiting"
    CLAIMED = "claimed"
    RESOLVED = "resolved"


class EligibilityOutcome(StrEnum):
    """The eligibility check's verdict, in order of severity (the worst reason decides)."""

    ELIGIBLE = "eligible"
    BORDERLINE = "borderline"
    NOT_ELIGIBLE = "not_eligible"


class NotificationKind(StrEnum):
    """What a notification row is (its payload's shape per kind: store/notifications.py)."""

    REMINDER = "reminder"
    WAITLIST_PROMOTED = "waitlist_promoted"
    HANDOFF_OPENED = "handoff_opened"
    HANDOFF_USER_MESSAGE = "handoff_user_message"  # a user's message relayed to the staff group
    HANDOFF_RESUMED = "handoff_resumed"
    STAFF_REPLY = "staff_reply"
