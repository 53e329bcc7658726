"""Figures counted in the store for monitoring (the gateway's /metrics): plain tuples, no rows."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select

from store.db import Database
from store.models import Booking, Handoff


@dataclass(frozen=True)
class StoreFigures:
    bookings: list[tuple[str, str, int]]  # (kind, status, count)
    handoffs: list[tuple[str, str, int]]  # (reason, status, count)
    claim_waits: list[float]  # seconds from each claimed handoff to its claim, sorted


def figures(db: Database) -> StoreFigures:
    with db.session() as session:
        bookings = session.execute(
            select(Booking.kind, Booking.status, func.count()).group_by(Booking.kind, Booking.status)
        ).all()
        handoffs = session.execute(
            select(Handoff.reason, Handoff.status, func.count()).group_by(Handoff.reason, Handoff.status)
        ).all()
        claims = session.execute(
            select(Handoff.created_at, Handoff.claimed_at).where(Handoff.claimed_at.is_not(None))
        ).all()
    return StoreFigures(
        bookings=[(kind, status, int(n)) for kind, status, n in bookings],
        handoffs=[(reason, status, int(n)) for reason, status, n in handoffs],
        claim_waits=sorted(max((claimed - created) / dt.timedelta(seconds=1), 0.0)
                           for created, claimed in claims if created is not None and claimed is not None),
    )
