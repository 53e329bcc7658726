"""Enquiries: completed eligibility checks, and the contact a user agreed to leave."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.db import Database
from store.kinds import EligibilityOutcome
from store.models import Enquiry, User
from store.transactions import transaction
from store.users import channel_of, find_or_create, user_by_sender


@dataclass(frozen=True)
class EnquiryRecord:
    """One check as the actions record it (no name or contact: those need consent first)."""

    sender_id: str
    outcome: EligibilityOutcome
    reason: str
    language: str
    answers: dict[str, Any]
    employees_low: int | None = None
    employees_high: int | None = None
    sector: str | None = None
    sector_kind: str | None = None
    country: str | None = None
    province: str | None = None
    city: str | None = None
    supplies_brands: bool | None = None
    can_commit: bool | None = None


def save_enquiry(db: Database, record: EnquiryRecord) -> int:
    """Store a completed check for the conversation's user (created if new); returns its id.
    The gateway may create the same user at the same moment: the transaction is retried."""

    def work(session: Session) -> int:
        user = find_or_create(session, record.sender_id)
        enquiry = Enquiry(
            user_id=user.id,
            employees_low=record.employees_low,
            employees_high=record.employees_high,
            sector=record.sector,
            sector_kind=(record.sector_kind or None) and record.sector_kind[:100],
            country=record.country,
            province=record.province,
            city=record.city,
            supplies_brands=record.supplies_brands,
            can_commit=record.can_commit,
            outcome=record.outcome,
            reason=record.reason,
            answers=record.answers,
            language=record.language,
            channel=channel_of(record.sender_id),
            consent=False,
        )
        session.add(enquiry)
        session.flush()
        return enquiry.id

    return transaction(db, work)


def add_contact(
    db: Database, enquiry_id: int, sender_id: str, factory_name: str, contact: str
) -> bool:
    """Record the consent, factory name and contact on the user's own enquiry.

    The sender must own the enquiry, so a stale or forged id cannot touch another user's row.
    """
    with db.session() as session:
        enquiry = session.get(Enquiry, enquiry_id)
        user = user_by_sender(session, sender_id)
        if enquiry is None or user is None or enquiry.user_id != user.id:
            return False
        enquiry.consent = True
        enquiry.factory_name = factory_name.strip()[:200]
        enquiry.contact = contact.strip()[:200]
        return True


def latest_enquiry(db: Database, sender_id: str) -> Enquiry | None:
    """The user's most recent check (booking pre-fills factory name and contact from it)."""
    with db.session() as session:
        return session.scalars(
            select(Enquiry)
            .join(User, Enquiry.user_id == User.id)
            .where(User.sender_id == sender_id)
            .order_by(Enquiry.created_at.desc(), Enquiry.id.desc())
            .limit(1)
        ).one_or_none()
