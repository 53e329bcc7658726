"""Notifications about a booking: reminders before it starts, and the notice that a factory
waiting for a full session got a seat. Each is a Notification row (store.notifications) in
the booking's own transaction, worded in the booking's language."""
from __future__ import annotations

import datetime as dt
import os
from typing import Any

from sqlalchemy.orm import Session

from store import notifications
from store.kinds import NotificationKind
from store.models import Booking
from store.offers import CLASSROOM, Offer, notification_payload


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


def reminder_prefix(booking_id: int) -> str:
    return f"reminder:b{booking_id}:"


def _notice(session: Session, booking: Booking, target: Offer, *, kind: NotificationKind, dedupe_key: str,
            due_at: dt.datetime, text_key: str, extra: dict[str, Any] | None = None) -> None:
    notifications.add(
        session, user_id=booking.user_id, kind=kind, dedupe_key=dedupe_key, due_at=due_at,
        payload=notification_payload(text_key, booking.language, target,
                                     reference=booking.reference, extra=extra),
    )


def write_reminders(session: Session, booking: Booking, target: Offer, now: dt.datetime) -> None:
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
        _notice(session, booking, target, kind=NotificationKind.REMINDER,
                dedupe_key=f"{reminder_prefix(booking.id)}{target_tag}:{label}h", due_at=due,
                text_key="booking_reminder", extra={"hours": label})


def void_reminders(session: Session, booking_id: int) -> int:
    """Delete the booking's reminders not yet sent (it was cancelled or moved)."""
    return notifications.void_unsent(session, reminder_prefix(booking_id))


def write_promotion_notice(session: Session, booking: Booking, target: Offer, entry_id: int,
                           now: dt.datetime) -> None:
    """Tell a factory that waited (waitlist entry `entry_id`) that `booking` gave it a seat."""
    _notice(session, booking, target, kind=NotificationKind.WAITLIST_PROMOTED,
            dedupe_key=f"waitlist_promoted:{entry_id}", due_at=now,
            text_key="booking_waitlist_promoted")
