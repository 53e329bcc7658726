"""Online backup and restore of the SQLite store and tracker store (store/backup.py).

The backup is taken while another thread keeps booking seats: the copy must be one consistent
snapshot (every session's seat count equals its confirmed bookings; everything committed before
the backup started is in it, including what is still only in the WAL), pass SQLite's integrity
check, and restore to exactly its content."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from store import backup, booking
from store.db import PROJECT_ROOT, Database
from store.models import Booking, ClassroomSession
from tests.test_booking_support import add_session, add_users


def counts(path: Path) -> tuple[int, list[tuple[int, int, int]]]:
    """(confirmed bookings, [(session id, seats_taken, confirmed bookings of it)])."""
    conn = sqlite3.connect(path)
    try:
        total = conn.execute("SELECT count(*) FROM bookings WHERE status='confirmed'").fetchone()[0]
        rows = conn.execute(
            "SELECT s.id, s.seats_taken, (SELECT count(*) FROM bookings b WHERE b.session_id = s.id"
            " AND b.status='confirmed') FROM classroom_sessions s ORDER BY s.id").fetchall()
        return total, rows
    finally:
        conn.close()


def tracker_db(path: Path, rows: int) -> None:
    """A stand-in for Rasa's tracker store: a SQLite file in WAL mode with events."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, data TEXT)")
    conn.executemany("INSERT INTO events (sender_id, data) VALUES (?, ?)",
                     [(f"tg-{i % 7}", "{}" * 50) for i in range(rows)])
    conn.close()


@pytest.fixture
def live(tmp_path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'live' / 'assistant.db'}")
    (tmp_path / "live").mkdir()
    db.create_all()
    yield db
    db.dispose()


def test_backup_while_booking_then_restore(live: Database, tmp_path: Path) -> None:
    store_file = Path(live.url.split(":///", 1)[1])
    tracker_file = tmp_path / "live" / "rasa_tracker.db"
    tracker_db(tracker_file, 500)
    sessions = [add_session(live, capacity=10_000) for _ in range(3)]
    users = add_users(live, 400, prefix="backup")
    booked = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i, user in enumerate(users):
                if stop.is_set():
                    return
                result = booking.book_classroom(live, user, sessions[i % 3])
                assert result.outcome == "booked", result
                booked.append(user)
        except BaseException as error:  # reported by the test
            errors.append(error)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(booked) < 30:
            time.sleep(0.01)
        committed_before = len(booked)
        copied = backup.create(tmp_path / "backup", {"assistant.db": store_file, "rasa_tracker.db": tracker_file})
        committed_during = len(booked)
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert committed_during < len(booked) or len(booked) == len(users)  # the writer went on meanwhile
    assert [c.name for c in copied] == ["assistant.db", "rasa_tracker.db"]

    snapshot = tmp_path / "backup" / "assistant.db"
    total, per_session = counts(snapshot)
    # everything committed before the backup began is in it; nothing committed after it ended
    assert committed_before <= total <= committed_during, (committed_before, total, committed_during)
    for _session_id, seats, confirmed in per_session:
        assert seats == confirmed, per_session  # one consistent snapshot, not a torn copy
    assert backup.check(tmp_path / "backup")[0].tables["bookings"] == total

    # Restore over the live database, which has moved on since.
    assert counts(store_file)[0] == len(booked) > total
    live.dispose()
    restored = backup.restore(tmp_path / "backup", {"assistant.db": store_file, "rasa_tracker.db": tracker_file})
    assert [r.name for r in restored] == ["assistant.db", "rasa_tracker.db"]
    assert counts(store_file) == (total, per_session)
    conn = sqlite3.connect(store_file)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    conn = sqlite3.connect(tracker_file)
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 500
    conn.close()

    # The restored store works: the store's own code books on it again.
    db = Database(live.url)
    try:
        extra = add_users(db, 1, prefix="after-restore")[0]
        assert booking.book_classroom(db, extra, sessions[0]).outcome == "booked"
        with db.session() as session:
            seats = session.scalar(select(ClassroomSession.seats_taken).where(ClassroomSession.id == sessions[0]))
            confirmed = session.scalar(select(func.count()).select_from(Booking).where(
                Booking.session_id == sessions[0], Booking.status == "confirmed"))
        assert seats == confirmed
    finally:
        db.dispose()


def test_damaged_backup_is_refused(live: Database, tmp_path: Path) -> None:
    store_file = Path(live.url.split(":///", 1)[1])
    add_users(live, 5, prefix="dmg")
    backup.create(tmp_path / "backup", {"assistant.db": store_file})
    copy = tmp_path / "backup" / "assistant.db"
    data = bytearray(copy.read_bytes())
    page = 4096
    for offset in range(page * 2 + 100, min(len(data), page * 6), 7):  # scribble over b-tree pages
        data[offset] = 0xFF
    copy.write_bytes(bytes(data))
    before = store_file.read_bytes()
    with pytest.raises((backup.BackupError, sqlite3.DatabaseError)):
        backup.restore(tmp_path / "backup", {"assistant.db": store_file})
    assert store_file.read_bytes() == before  # the live database was not touched
    with pytest.raises(backup.BackupError):
        backup.create(tmp_path / "backup", {"assistant.db": store_file})  # not over an old backup


def test_command_line(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    env = {**os.environ, "DATA_DIR": str(data), "DATABASE_URL": f"sqlite:///{data / 'assistant.db'}",
           "TRACKER_STORE_URL": ""}
    db = Database(env["DATABASE_URL"])
    db.create_all()
    add_users(db, 3, prefix="cli")
    db.dispose()
    tracker_db(data / "rasa_tracker.db", 10)
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "store.backup", *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True)
    made = run("create", str(tmp_path / "b"))
    assert made.returncode == 0, made.stderr
    assert "assistant.db" in made.stdout and "rasa_tracker.db" in made.stdout and "integrity ok" in made.stdout
    (data / "assistant.db").unlink()  # lost
    for extra in ("-wal", "-shm"):
        Path(f"{data / 'assistant.db'}{extra}").unlink(missing_ok=True)
    back = run("restore", str(tmp_path / "b"))
    assert back.returncode == 0, back.stderr
    conn = sqlite3.connect(data / "assistant.db")
    assert conn.execute("SELECT count(*) FROM users WHERE external_id LIKE 'cli%'").fetchone()[0] == 3
    conn.close()
    bad = run("restore", str(tmp_path / "nothing-here"))
    assert bad.returncode == 1 and "error:" in bad.stderr
