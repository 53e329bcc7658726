"""Shared fixtures: a fresh database on SQLite or PostgreSQL, migrated with Alembic."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from store.db import Database
from tests.services import POSTGRES_URL as POSTGRES_ADMIN_URL, postgres_up


@pytest.fixture
def sqlite_db(tmp_path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    db.create_all()
    yield db
    db.dispose()


@pytest.fixture
def postgres_db() -> Iterator[Database]:
    """A throw-away PostgreSQL database, created for one test and dropped after it.

    PostgreSQL is part of this machine kind and of CI: when it is missing the test fails
    (it is not skipped), unless ALLOW_NO_POSTGRES=1 is set for a quick local run.
    """
    if not postgres_up():
        if os.environ.get("ALLOW_NO_POSTGRES") == "1":
            pytest.skip("PostgreSQL not reachable and ALLOW_NO_POSTGRES=1")
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}")
    name = f"score_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    db = Database(url)
    db.create_all()
    try:
        yield db
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def any_db(request) -> Database:
    """The same test on both databases."""
    return request.getfixturevalue(f"{request.param}_db")
