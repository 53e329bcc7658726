"""Notifications: messages the gateway sends outside a conversation turn.

Writers (booking reminders, waitlist promotions, the console) add `Notification` rows; a
gateway claims due rows with `claim_due`, sends them, then calls `mark_sent`. A row claimed but
not marked sent within `reclaim_after` (the gateway crashed mid-send) is claimed again, so a
message may in the worst case be sent twice but is never lost.

Every row is written by `add` (the one writer), which refuses a kind it does not know and a
payload that does not fit the kind's TypedDict:

- "reminder", "waitlist_promoted", "handoff_resumed": a `MessagePayload`, which the gateway
  turns into text without knowing who wrote it:

    {
      "text_key": "booking_reminder",   # an i18n key (i18n/messages/*.yml)
      "language": "zh",                 # optional: the language the values were formatted in;
                                        # absent: the user's language when it is sent
      "values": {"reference": "SC-7K3F9Q", "when": "2027年1月12日（周二）09:00", ...},  # optional
      "buttons": [{"title": "我的预约", "payload": "/my_bookings"}],   # optional
      "booking_reference": "SC-7K3F9Q"  # optional, for logs and the console
    }

  `render(payload)` gives the text: `i18n.t(text_key, language, **values)`. Values are already
  localised (dates in the user's time zone and date format, city names in their language),
  because the writer knows the user's language and the gateway should not re-derive it.
- "staff_reply": a `StaffReplyPayload` — the staff member's own words, sent as they are:
  {"text": ..., "staff_name": ..., "transcript_line_id": ...} (only text is required);
  transcript_line_id says the writer already put the line in the transcript, so the gateway
  does not record it again.
- "handoff_opened": a `HandoffOpenedPayload` — {"handoff_id": ...}; not a message to the user
  but the gateway's cue to alert the staff group.
- "handoff_user_message": a `HandoffUserMessagePayload` — {"handoff_id": ..., "text": ...}: a
  WeChat user's message during a handoff, for the staff group (sent by the Telegram gateway).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, get_args

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from i18n import t
from store.db import Database, rowcount
from store.kinds import NotificationKind
from store.models import Notification, User, utcnow

# Alerts for the staff group, whatever channel the user is on.
STAFF_KINDS = (NotificationKind.HANDOFF_OPENED, NotificationKind.HANDOFF_USER_MESSAGE)

DEFAULT_RECLAIM_AFTER = dt.timedelta(minutes=5)

Kind = Literal["reminder", "waitlist_promoted", "handoff_resumed", "staff_reply", "handoff_opened",
               "handoff_user_message"]


class ButtonPayload(TypedDict):
    title: str
    payload: str


# Required keys in a total base, optional ones in a total=False subclass: works with
# postponed annotations (NotRequired[...] as a string is not recognised by Python 3.11).
class _MessageRequired(TypedDict):
    text_key: str


class MessagePayload(_MessageRequired, total=False):
    language: str
    values: dict[str, Any]
    buttons: list[ButtonPayload]
    booking_reference: str


class _StaffReplyRequired(TypedDict):
    text: str


class StaffReplyPayload(_StaffReplyRequired, total=False):
    staff_name: str
    transcript_line_id: int


class HandoffOpenedPayload(TypedDict):
    handoff_id: int


class HandoffUserMessagePayload(TypedDict):
    """A message a user of a channel without the staff group (WeChat) sent during a handoff."""

    handoff_id: int
    text: str


Payload = MessagePayload | StaffReplyPayload | HandoffOpenedPayload | HandoffUserMessagePayload
# TypedDict classes (typing has no type for "a TypedDict class"; their key sets are read).
PAYLOADS: dict[str, Any] = {
    "reminder": MessagePayload,
    "waitlist_promoted": MessagePayload,
    "handoff_resumed": MessagePayload,
    "staff_reply": StaffReplyPayload,
    "handoff_opened": HandoffOpenedPayload,
    "handoff_user_message": HandoffUserMessagePayload,
}
assert set(PAYLOADS) == set(get_args(Kind))


def check_payload(kind: str, payload: Any) -> None:
    """Refuse a kind without a payload type, a missing required key and an unknown key: a
    row the gateway could not send is refused when written, not found when sent."""
    shape = PAYLOADS.get(kind)
    if shape is None:
        raise ValueError(f"unknown notification kind {kind!r}")
    if not isinstance(payload, dict):
        raise ValueError(f"a {kind} payload is a dict")
    missing = shape.__required_keys__ - payload.keys()
    unknown = payload.keys() - shape.__required_keys__ - shape.__optional_keys__
    if missing or unknown:
        raise ValueError(f"{kind} payload: missing {sorted(missing)}, unknown {sorted(unknown)}")


@dataclass(frozen=True)
class ClaimedNotification:
    """A claimed row, detached from the database session (safe to pass across threads)."""

    id: int
    user_id: int | None
    kind: str
    payload: Any  # the kind's payload type (PAYLOADS)
    due_at: dt.datetime
    dedupe_key: str


def add(
    session: Session,
    *,
    user_id: int | None,
    kind: Kind | NotificationKind,
    dedupe_key: str,
    payload: Payload,
    due_at: dt.datetime | None = None,
) -> bool:
    """Add a notification unless one with the same dedupe key exists; True when added.
    The only writer of notification rows (tests/test_store_boundary.py checks it).

    The check is inside the caller's transaction; a concurrent writer with the same key loses
    on the unique constraint (IntegrityError) and the caller's retry then finds the row.
    """
    check_payload(kind, payload)
    exists = session.scalar(select(Notification.id).where(Notification.dedupe_key == dedupe_key))
    if exists is not None:
        return False
    session.add(
        Notification(
            user_id=user_id,
            kind=kind,
            dedupe_key=dedupe_key,
            payload=dict(payload),
            due_at=due_at or utcnow(),
        )
    )
    session.flush()
    return True


def void_unsent(session: Session, dedupe_prefix: str) -> int:
    """Delete rows not yet sent whose dedupe key starts with `dedupe_prefix` (e.g. a
    cancelled booking's reminders). Sent rows stay as a record. A row a gateway is sending at
    this very moment may still go out: the send has already begun."""
    result = session.execute(
        delete(Notification)
        .where(Notification.dedupe_key.startswith(dedupe_prefix, autoescape=True))
        .where(Notification.sent_at.is_(None))
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def claim_due(
    db: Database,
    worker: str,
    now: dt.datetime | None = None,
    limit: int = 50,
    reclaim_after: dt.timedelta = DEFAULT_RECLAIM_AFTER,
    channels: Collection[str] | None = None,
    staff_alerts: bool = True,
) -> list[ClaimedNotification]:
    """Claim up to `limit` due, unsent rows for `worker`; no two workers get the same row.

    PostgreSQL: SELECT … FOR UPDATE SKIP LOCKED locks the chosen rows, and a concurrent claimer
    skips them instead of waiting (and, after our commit, no longer sees them as unclaimed).
    SQLite: every transaction starts with BEGIN IMMEDIATE (store.db), so claimers run one
    after another and the second sees the first's claims. The FOR UPDATE clause is ignored.

    Each channel's sender claims only its own users' rows (`channels`), so a staff reply to a
    web visitor is not taken by the Telegram gateway; staff alerts (`handoff_opened`, sent to
    the staff group whatever the user's channel: STAFF_KINDS) only when `staff_alerts`.
    """
    now = now or utcnow()
    stale = now - reclaim_after
    query = select(Notification)
    if channels is not None:
        own_users = Notification.user_id.in_(select(User.id).where(User.channel.in_(list(channels))))
        # Rows of no user (forgotten since) go with the staff alerts: to be cleared once.
        query = query.where(
            or_(own_users, Notification.kind.in_(STAFF_KINDS), Notification.user_id.is_(None))
            if staff_alerts else own_users
        )
    if not staff_alerts:
        query = query.where(Notification.kind.not_in(STAFF_KINDS))
    with db.session() as session:
        rows = session.scalars(
            query
            .where(Notification.sent_at.is_(None))
            .where(Notification.due_at <= now)
            .where(or_(Notification.claimed_at.is_(None), Notification.claimed_at < stale))
            .order_by(Notification.due_at, Notification.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        claimed = []
        for row in rows:
            row.claimed_by = worker
            row.claimed_at = now
            claimed.append(
                ClaimedNotification(
                    id=row.id,
                    user_id=row.user_id,
                    kind=row.kind,
                    payload=dict(row.payload or {}),
                    due_at=row.due_at,
                    dedupe_key=row.dedupe_key,
                )
            )
        return claimed


def mark_sent(db: Database, notification_id: int, worker: str, now: dt.datetime | None = None) -> bool:
    """Record that `worker` sent the row. False when the row is gone (voided) or another
    worker has re-claimed it since (then that worker's send counts)."""
    with db.session() as session:
        result = session.execute(
            update(Notification)
            .where(Notification.id == notification_id)
            .where(Notification.claimed_by == worker)
            .where(Notification.sent_at.is_(None))
            .values(sent_at=now or utcnow())
            .execution_options(synchronize_session=False)
        )
        return bool(rowcount(result))


def release(db: Database, notification_id: int, worker: str) -> bool:
    """Give a claimed row back (sending failed and may be retried at once by anyone)."""
    with db.session() as session:
        result = session.execute(
            update(Notification)
            .where(Notification.id == notification_id)
            .where(Notification.claimed_by == worker)
            .where(Notification.sent_at.is_(None))
            .values(claimed_by=None, claimed_at=None)
            .execution_options(synchronize_session=False)
        )
        return bool(rowcount(result))


def render(payload: MessagePayload, fallback_language: str | None = None) -> str:
    """The text of a notification payload (see the module docstring)."""
    lang = payload.get("language") or fallback_language
    return t(payload["text_key"], lang, **(payload.get("values") or {}))
