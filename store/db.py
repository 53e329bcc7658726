"""Engine and session factory, chosen by DATABASE_URL (embedded SQLite by default)."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from store.settings import PROJECT_ROOT, data_dir, default_database_url  # noqa: F401

logger = logging.getLogger(__name__)


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched. Session.execute is typed for SELECTs (Result);
    for these statements it returns a CursorResult, which carries the count."""
    assert isinstance(result, CursorResult), type(result)
    return int(result.rowcount or 0)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the gateway, the action server and the console read while one writes;
    # busy_timeout makes concurrent writers wait instead of failing with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin_immediate(conn) -> None:
    # Take the write lock at BEGIN so two writers never both read a stale seat count and
    # then fail to upgrade their lock (SQLite's deferred transactions would deadlock here).
    conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """One engine and session factory per database URL."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_database_url()
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            self.engine: Engine = create_engine(
                self.url, connect_args={"check_same_thread": False, "timeout": 30}
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # Let SQLAlchemy, not pysqlite, decide when a transaction starts.
            event.listen(
                self.engine,
                "connect",
                lambda dbapi_conn, _r: setattr(dbapi_conn, "isolation_level", None),
            )
            event.listen(self.engine, "begin", _sqlite_begin_immediate)
        else:
            # pool_pre_ping: a pooled connection the server dropped (restart, failover,
            # pg_terminate_backend) is replaced at checkout instead of failing the next turn
            # (tests/e2e/test_postgres_faults.py).
            self.engine = create_engine(self.url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        with self.sessionmaker() as session:
            with session.begin():
                yield session

    def ping(self) -> None:
        """One trivial query: raises when the database cannot be reached (health checks)."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def warm(self) -> int:
        """Open the pool's connections now: a long-running server then holds its descriptors
        and memory from the start instead of adding a connection at a later burst of load (a
        soak saw the action server's descriptors grow by one connection after 7 minutes).
        Returns how many are pooled; a store that cannot be reached now is logged (the turns
        that need it say so, one by one) and 0 returned."""
        size = getattr(self.engine.pool, "size", lambda: 0)()
        connections = []
        try:
            for _ in range(size):
                connections.append(self.engine.connect())
        except Exception as error:  # any driver error: the server starts anyway
            logger.warning("store not reachable at start: %s", error)
            return 0
        finally:
            for connection in connections:
                connection.close()
        return len(connections)

    def create_all(self) -> None:
        """Bring the schema up to date with Alembic (keeps data across upgrades)."""
        from store.migrate import upgrade

        upgrade(self.url)

    def dispose(self) -> None:
        self.engine.dispose()


_default: Database | None = None


def get_database() -> Database:
    global _default
    if _default is None or _default.url != default_database_url():
        _default = Database()
    return _default
