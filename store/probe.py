"""Can the store take a write right now? The health check's question (bot/health.py).

`SELECT 1` answers on a read-only or full disk, and from a PostgreSQL that has become read-only
(a standby after failover), while every turn fails. The probe commits a one-row write, so the
database really allocates and syncs: a read-only file system, a full disk or a read-only
transaction fails it. It waits at most `timeout` seconds for the write lock, so a busy store
(a long booking transaction) delays it briefly instead of piling up blocked threads.
"""
from __future__ import annotations

import os

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite

from store.db import Database
from store.models import StoreProbe, utcnow


def probe_write(db: Database, name: str = "gateway", timeout: float = 2.0) -> None:
    """Write and commit this probe's row; raises what the database raised."""
    with db.engine.connect() as conn:
        # On the driver's connection: through SQLAlchemy it would begin a transaction.
        driver = conn.connection.driver_connection
        assert driver is not None  # a checked-out connection
        if db.is_sqlite:
            # Only for this check: turns keep their 30 s busy timeout (store/db.py).
            driver.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        try:
            with conn.begin():
                if not db.is_sqlite:
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(timeout * 1000)}")
                    conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout * 1000)}")
                now = utcnow()
                touched = conn.execute(update(StoreProbe).where(StoreProbe.name == name).values(checked_at=now))
                if not touched.rowcount:
                    insert = (sqlite.insert if db.is_sqlite else postgresql.insert)(StoreProbe)
                    conn.execute(insert.values(name=name, checked_at=now).on_conflict_do_nothing())
        finally:
            if db.is_sqlite:
                driver.execute("PRAGMA busy_timeout=30000")


def sqlite_disk_problem(db: Database) -> str | None:
    """Why an SQLite store's disk takes no write, when the file system says (read-only, full)."""
    if not db.is_sqlite or not db.engine.url.database or db.engine.url.database == ":memory:":
        return None
    folder = os.path.dirname(os.path.abspath(db.engine.url.database))
    try:
        disk = os.statvfs(folder)
    except OSError as error:
        return f"{folder}: {error.strerror}"
    if disk.f_flag & os.ST_RDONLY:
        return f"the file system of {folder} is read-only"
    if disk.f_bavail == 0:
        return f"the disk of {folder} is full"
    return None
