"""The store on PostgreSQL loses every connection (pg_terminate_backend, as a database restart
or a failover does): the next turn reconnects and nothing is lost — between turns, and in the
middle of a turn (after the user's line was written, while Rasa answers). Real gateway, real
Rasa and action server, a throw-away PostgreSQL database (tests/conftest.py: postgres_db)."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import create_engine, select, text

import i18n
from store.models import TranscriptLine, User
from tests.conftest import POSTGRES_ADMIN_URL
from tests.e2e.gateways import running_gateway

pytestmark = [pytest.mark.postgres]


def terminate_backends(database: str) -> int:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": database}).all())
    finally:
        admin.dispose()


def transcript(db, telegram_user: int) -> list[tuple[str, str]]:
    with db.session() as session:
        return [(d, t[:30]) for d, t in session.execute(
            select(TranscriptLine.direction, TranscriptLine.text).join(User, User.id == TranscriptLine.user_id)
            .where(User.sender_id == f"tg-{telegram_user}").order_by(TranscriptLine.id))]


async def test_turns_survive_terminated_connections(stack, postgres_db, caplog) -> None:
    db = postgres_db
    database = db.engine.url.database
    bad = {i18n.t("unavailable", "en"), i18n.t("store_unavailable", "en")}
    async with running_gateway(stack, db) as gateway:
        api = gateway.api
        user = gateway.new_user()
        api.push_text(user, "what is SCORE")
        first = await api.wait_sent(user, 1, 30)

        # Between turns: every pooled connection is dead.
        assert terminate_backends(database) >= 1
        api.push_text(user, "who funds SCORE")
        texts = await api.wait_sent(user, len(first) + 1, 30)
        assert not bad & set(texts), texts

        # In the middle of a turn: the user's line is written, then the connections die
        # while Rasa works on the answer; the answer must still be written and sent.
        service = gateway.application.bot_data["gateway"].service
        real_send = service.rasa.send
        killed = []

        async def send_then_lose_connections(*args, **kwargs):
            answer = await real_send(*args, **kwargs)
            killed.append(terminate_backends(database))
            return answer

        service.rasa.send = send_then_lose_connections
        try:
            before = len(api.texts(user))
            api.push_text(user, "how long is the training")
            texts = await api.wait_sent(user, before + 1, 30)
        finally:
            service.rasa.send = real_send
        assert killed and killed[0] >= 1
        assert not bad & set(texts), texts

    lines = transcript(db, user)
    assert [t for d, t in lines if d == "in"] == ["what is SCORE", "who funds SCORE", "how long is the training"]
    assert len([d for d, _ in lines if d == "out"]) == len(texts)  # every answer sent was kept
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], \
        [r.getMessage()[:200] for r in caplog.records if r.levelno >= logging.ERROR]
