"""The migrated schema matches the models, on both databases."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, select, text

from store.db import Database
from store.models import Base, TranscriptLine, User


def test_migrations_match_models(any_db):
    with any_db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_round_trip_keeps_utc_and_unicode(any_db):
    with any_db.session() as session:
        user = User(channel="telegram", external_id="42", sender_id="tg-42", language="zh")
        session.add(user)
        session.flush()
        session.add(TranscriptLine(user_id=user.id, direction="in", text="你好 <b>👍</b>"))
    with any_db.session() as session:
        line = session.scalars(select(TranscriptLine)).one()
        assert line.text == "你好 <b>👍</b>"
        assert line.created_at.tzinfo is not None


def test_venue_zh_migration_keeps_existing_sessions(any_db):
    """0005 adds classroom_sessions.venue_zh to a store that already has sessions."""
    from alembic import command
    from sqlalchemy import text

    from store.migrate import alembic_config, upgrade

    command.downgrade(alembic_config(any_db.url), "0004_console_sessions")
    with any_db.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO classroom_sessions (code, module, city, venue, starts_at, ends_at, timezone,"
            " capacity, seats_taken, status, created_at) VALUES ('M1-OLD', 1, 'Dongguan', 'Old venue',"
            " '2030-01-01 01:00:00', '2030-01-02 09:00:00', 'Asia/Shanghai', 5, 0, 'open',"
            " '2026-01-01 00:00:00')"))
    upgrade(any_db.url)
    with any_db.engine.connect() as conn:
        assert conn.execute(text("SELECT venue, venue_zh FROM classroom_sessions")).all() == [("Old venue", None)]


def test_a_warmed_store_opens_no_connection_under_load(any_db):
    any_db.dispose()
    opened: list[object] = []
    event.listen(any_db.engine, "connect", lambda *_: opened.append(1))
    pooled = any_db.warm()
    assert pooled == any_db.engine.pool.size() and len(opened) == pooled

    def query(_: int) -> int:
        with any_db.session() as session:
            return session.execute(text("SELECT 1")).scalar_one()

    with ThreadPoolExecutor(pooled) as threads:  # as many at once as the pool holds
        assert list(threads.map(query, range(200))) == [1] * 200
    assert len(opened) == pooled


def test_warming_a_store_that_cannot_be_reached_logs_and_goes_on(caplog):
    unreachable = Database("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    assert unreachable.warm() == 0
    assert "store not reachable at start" in caplog.text
