"""The store's write probe (store/probe.py), behind /health: it passes on a writable store and
fails on one that answers queries but takes no write (a read-only PostgreSQL database, as a
standby after failover; the read-only and full SQLite disks: tests/e2e/test_store_faults.py)."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.exc import DBAPIError

from store.models import StoreProbe
from store.probe import probe_write


def test_the_probe_writes_one_row_per_name(any_db):
    for _ in range(3):
        probe_write(any_db)
    probe_write(any_db, "other")
    with any_db.session() as session:
        assert sorted(session.scalars(select(StoreProbe.name)).all()) == ["gateway", "other"]
    any_db.ping()  # the connection's settings are back for the turns that reuse it


def test_a_read_only_postgresql_fails_the_probe_but_not_a_query(postgres_db):
    name = postgres_db.engine.url.database
    admin = create_engine(postgres_db.engine.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    admin.dispose()
    postgres_db.engine.dispose()  # new sessions take the database's new default
    postgres_db.ping()
    with pytest.raises(DBAPIError, match="read-only transaction"):
        probe_write(postgres_db)
