"""The migrated schema matches the models, on both databases."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

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
