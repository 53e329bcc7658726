"""What the booking services return: plain, frozen data, safe to use after the transaction."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.orm import Session

from store.booking_kinds import kind_of
from store.models import Booking
from store.offers import Offer

BookingOutcome = Literal["booked", "duplicate", "already_booked", "full", "refused"]
CancelOutcome = Literal["cancelled", "not_found", "already_cancelled", "refused"]
WaitlistOutcome = Literal["joined", "already_waiting", "already_booked", "not_full", "refused"]


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

    outcome: BookingOutcome
    booking: BookingView | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in ("booked", "duplicate", "already_booked")


@dataclass(frozen=True)
class CancelResult:
    """outcome: cancelled | not_found (also when the reference is someone else's) |
    already_cancelled | refused (reason: e.g. it already started)."""

    outcome: CancelOutcome
    booking: BookingView | None = None
    reason: str | None = None
    promoted_user_id: int | None = None


@dataclass(frozen=True)
class WaitlistResult:
    """outcome: joined | already_waiting | already_booked | not_full | refused."""

    outcome: WaitlistOutcome
    position: int | None = None
    reason: str | None = None


def view(session: Session, booking: Booking) -> BookingView:
    """The booking and its target as they are now in this transaction."""
    kind = kind_of(booking)
    target_id = kind.target_id(booking)
    assert target_id is not None
    offer = kind.load(session, target_id)
    assert offer is not None
    return BookingView(
        id=booking.id, reference=booking.reference, kind=booking.kind, status=booking.status,
        user_id=booking.user_id, offer=offer, factory_name=booking.factory_name,
        contact=booking.contact, attendees=list(booking.attendees or []),
        language=booking.language,
    )
