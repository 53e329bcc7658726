"""Helpers shared by the booking tests (no tests here)."""
from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy import func, select

from store.db import Database
from store.models import Booking, ClassroomSession, ConsultationSlot, Notification, User

FUTURE = dt.datetime(2030, 3, 4, 1, 0, tzinfo=dt.UTC)  # 09:00 in Shanghai
_codes = itertools.count(1)


def add_session(db: Database, *, module: int = 1, city: str = "Dongguan", capacity: int = 5,
                starts_at: dt.datetime = FUTURE, seats_taken: int = 0,
                venue_zh: str | None = None) -> int:
    with db.session() as s:
        row = ClassroomSession(
            code=f"T{next(_codes)}", module=module, city=city, venue="Test venue", venue_zh=venue_zh,
            starts_at=starts_at, ends_at=starts_at + dt.timedelta(days=1, hours=8),
            timezone="Asia/Shanghai", capacity=capacity, seats_taken=seats_taken)
        s.add(row)
        s.flush()
        return row.id


def add_slot(db: Database, *, module: int = 1, region: str = "Guangdong",
             starts_at: dt.datetime = FUTURE + dt.timedelta(days=14), expert: str = "Chen Jing") -> int:
    with db.session() as s:
        row = ConsultationSlot(
            code=f"C{next(_codes)}", expert=expert, module=module, region=region,
            starts_at=starts_at, ends_at=starts_at + dt.timedelta(hours=3),
            timezone="Asia/Shanghai")
        s.add(row)
        s.flush()
        return row.id


def add_users(db: Database, n: int, prefix: str = "u") -> list[int]:
    with db.session() as s:
        users = [User(channel="local", external_id=f"{prefix}{i}", sender_id=f"local-{prefix}{i}")
                 for i in range(n)]
        s.add_all(users)
        s.flush()
        return [u.id for u in users]


def seats_taken(db: Database, session_id: int) -> int:
    with db.session() as s:
        return s.scalar(select(ClassroomSession.seats_taken).where(ClassroomSession.id == session_id))


def confirmed_count(db: Database, session_id: int) -> int:
    with db.session() as s:
        return s.scalar(select(func.count(Booking.id)).where(
            Booking.session_id == session_id, Booking.status == "confirmed"))


def notifications(db: Database, kind: str | None = None) -> list[Notification]:
    with db.session() as s:
        query = select(Notification).order_by(Notification.id)
        if kind:
            query = query.where(Notification.kind == kind)
        return list(s.scalars(query))
