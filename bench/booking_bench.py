"""Bookings per second on SQLite and PostgreSQL, sequential and with concurrent bookers.

    .venvs/app/bin/python -m bench.booking_bench [--bookings 400] [--threads 1,8,32]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

Each run books `--bookings` seats (distinct factories, sessions of 5 seats, as in real
classroom groups) through store.booking.book_classroom, i.e. one full transaction per
booking with its reminders. Under concurrency six factories race for each 5-seat session,
so one in six finds it full, as in a real rush. Prints a table; uses throw-away databases.
"""
from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import create_engine, text

from store import booking
from store.db import Database
from store.models import ClassroomSession, User

START = dt.datetime(2030, 3, 4, 1, 0, tzinfo=dt.UTC)


def _prepare(db: Database, bookings: int) -> tuple[list[int], list[int]]:
    """Sessions of 5 seats and one user (factory) per booking."""
    with db.session() as s:
        sessions = [
            ClassroomSession(code=f"B{i}", module=1, city="Dongguan", venue="bench",
                             starts_at=START + dt.timedelta(days=i), timezone="Asia/Shanghai",
                             ends_at=START + dt.timedelta(days=i, hours=32), capacity=5)
            for i in range(bookings // 4 + 1)
        ]
        users = [User(channel="local", external_id=f"b{i}", sender_id=f"local-bench-{i}")
                 for i in range(bookings)]
        s.add_all([*sessions, *users])
        s.flush()
        return [x.id for x in sessions], [u.id for u in users]


def _run(db: Database, bookings: int, threads: int) -> tuple[float, list[float], dict[str, int]]:
    session_ids, user_ids = _prepare(db, bookings)
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    lock = threading.Lock()

    def one(i: int) -> None:
        # concurrent: 6 bookers per 5-seat session, so one in six finds it full
        target = session_ids[i // 6] if threads > 1 else session_ids[i // 4]
        started = time.perf_counter()
        result = booking.book_classroom(db, user_ids[i], target, idempotency_key=f"bench-{i}")
        elapsed = time.perf_counter() - started
        with lock:
            latencies.append(elapsed)
            outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1

    started = time.perf_counter()
    if threads == 1:
        for i in range(bookings):
            one(i)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(one, range(bookings)))
    return time.perf_counter() - started, latencies, outcomes


def _sqlite(tmp: Path, name: str) -> Database:
    db = Database(f"sqlite:///{tmp / name}.db")
    db.create_all()
    return db


class _Postgres:
    def __init__(self, admin_url: str) -> None:
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.base = admin_url.rsplit("/", 1)[0]
        self.names: list[str] = []

    def new(self) -> Database:
        name = f"score_bench_{uuid.uuid4().hex[:8]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.names.append(name)
        db = Database(f"{self.base}/{name}")
        db.create_all()
        return db

    def drop(self) -> None:
        with self.admin.connect() as conn:
            for name in self.names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bookings", type=int, default=400)
    parser.add_argument("--threads", default="1,8,32")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help="admin URL of a PostgreSQL server; '' to skip")
    args = parser.parse_args()
    thread_counts = [int(x) for x in args.threads.split(",")]

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        backends: list[tuple[str, object]] = [("sqlite", None)]
        pg = _Postgres(args.postgres) if args.postgres else None
        if pg:
            backends.append(("postgresql", pg))
        try:
            for backend, server in backends:
                for threads in thread_counts:
                    db = _sqlite(Path(tmp), f"{backend}{threads}") if server is None \
                        else pg.new()  # type: ignore[union-attr]
                    try:
                        seconds, latencies, outcomes = _run(db, args.bookings, threads)
                    finally:
                        db.dispose()
                    latencies.sort()
                    rows.append((
                        backend, threads, args.bookings, outcomes.get("booked", 0),
                        outcomes.get("full", 0), args.bookings / seconds,
                        statistics.median(latencies) * 1000,
                        latencies[int(len(latencies) * 0.95) - 1] * 1000,
                    ))
        finally:
            if pg:
                pg.drop()

    header = ("database", "threads", "attempts", "booked", "full", "attempts/s", "p50 ms", "p95 ms")
    print(" | ".join(f"{h:>10}" for h in header))
    print("-+-".join("-" * 10 for _ in header))
    for row in rows:
        backend, threads, attempts, booked, full, rate, p50, p95 = row
        print(" | ".join([f"{backend:>10}", f"{threads:>10}", f"{attempts:>10}", f"{booked:>10}",
                          f"{full:>10}", f"{rate:>10.1f}", f"{p50:>10.1f}", f"{p95:>10.1f}"]))


if __name__ == "__main__":
    main()
