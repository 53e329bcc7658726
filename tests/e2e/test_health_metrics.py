"""The gateway's /health and /metrics (bot/health.py, bot/metrics.py), through real turns:
the gateway polls the fake Bot API, Rasa and the action server are the real ones."""
from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import i18n
from bot import health
from store import handoff as handoffs
from tests.e2e.conftest import Gateway
from tests.e2e.gateways import running_gateway
from tests.fakes.bot_api import free_port


@dataclasses.dataclass
class Monitored(Gateway):
    health_url: str = ""


@pytest.fixture
async def monitored(stack) -> AsyncIterator[Monitored]:
    port = free_port()
    # A short hold window: the test of Rasa unavailability waits for the "send it again" answer.
    async with running_gateway(stack, stack.db, health_port=port, rasa_hold_window=3.0) as gateway:
        yield Monitored(gateway.api, gateway.application, gateway.db, health_url=f"http://127.0.0.1:{port}")


async def scrape(url: str) -> dict[tuple[str, tuple], float]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: dict, name: str, **labels) -> float:
    return sum(v for (n, ls), v in samples.items()
               if n == name and all(dict(ls).get(k) == want for k, want in labels.items()))


async def test_health_reports_every_part(monitored: Monitored, monkeypatch) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{monitored.health_url}/health")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "ok"
        assert {name: part["up"] for name, part in body["parts"].items()} == {
            "rasa": True, "actions": True, "store": True, "bot_api": True}

        # The Bot API refuses the token: that part is down, the answer is 503.
        monkeypatch.setattr(health, "BOT_API_CACHE_SECONDS", 0.0)
        monitored.api.reject_token = True
        try:
            response = await client.get(f"{monitored.health_url}/health")
        finally:
            monitored.api.reject_token = False
        assert response.status_code == 503, response.text
        parts = response.json()["parts"]
        assert parts["bot_api"]["up"] is False and parts["rasa"]["up"] is True

        # An action server that does not answer: down as well.
        health_checks = _checks_of(monitored)
        monkeypatch.setattr(health_checks, "action_url", f"http://127.0.0.1:{free_port()}")
        response = await client.get(f"{monitored.health_url}/health")
        assert response.status_code == 503
        assert response.json()["parts"]["actions"]["up"] is False


def _checks_of(monitored: Monitored) -> health.HealthChecks:
    return monitored.application.bot_data["health_checks"]


async def test_metrics_count_real_turns(monitored: Monitored) -> None:
    api, db = monitored.api, monitored.db
    before = await scrape(monitored.health_url)
    user, zh_user = monitored.new_user(), monitored.new_user()
    api.push_text(user, "what is SCORE")
    await api.wait_sent(user, 1, 30)
    api.push_text(user, "what is the weather in Paris")  # not about SCORE: out_of_scope, a fallback
    await api.wait_sent(user, 2, 30)
    api.push_text(zh_user, "SCORE是什么", language_code="zh-hans")
    await api.wait_sent(zh_user, 1, 30)
    api.push_text(user, "/human")
    await api.wait_for(lambda: any(i18n.t("handoff_started", "en") in t for t in api.texts(user)), 30)
    view = handoffs.open_for_sender(db, f"tg-{user}")
    handoffs.claim_as(db, view.id, "anna")

    after = await scrape(monitored.health_url)
    assert total(after, "score_turns_total", channel="telegram", language="en") \
        - total(before, "score_turns_total", channel="telegram", language="en") >= 3
    assert total(after, "score_turns_total", language="zh") - total(before, "score_turns_total", language="zh") >= 1
    assert total(after, "score_turn_seconds_count") - total(before, "score_turn_seconds_count") >= 4
    assert total(after, "score_turn_seconds_sum") > total(before, "score_turn_seconds_sum")
    assert total(after, "score_fallbacks_total") - total(before, "score_fallbacks_total") >= 1
    assert total(after, "score_handoffs", status="claimed") - total(before, "score_handoffs", status="claimed") >= 1
    assert total(after, "score_handoff_claim_seconds_count") - total(before, "score_handoff_claim_seconds_count") >= 1
    assert ("score_rasa_unavailable_total", ()) in after


async def test_bookings_and_rasa_unavailability_are_counted(monitored: Monitored, monkeypatch) -> None:
    from store import booking
    from tests.test_booking_support import add_session, add_users

    before = await scrape(monitored.health_url)
    session_id = add_session(monitored.db, capacity=3)
    (user_id,) = add_users(monitored.db, 1, prefix=f"metrics{monitored.new_user()}-")
    assert booking.book_classroom(monitored.db, user_id, session_id).outcome == "booked"

    # Rasa stops answering (an address where nothing listens): the user is told, it is counted.
    service = monitored.application.bot_data["gateway"].service
    from bot.rasa_client import RasaClient

    dead = RasaClient(f"http://127.0.0.1:{free_port()}", timeout=1.0)
    monkeypatch.setattr(service, "rasa", dead)
    user = monitored.new_user()
    monitored.api.push_text(user, "what is SCORE")
    texts = await monitored.api.wait_sent(user, 2, 30)
    assert texts == [i18n.t("rasa_waiting", "en"), i18n.t("rasa_send_again", "en")], texts
    await dead.close()

    after = await scrape(monitored.health_url)
    assert total(after, "score_bookings", kind="classroom", status="confirmed") \
        - total(before, "score_bookings", kind="classroom", status="confirmed") == 1
    assert total(after, "score_rasa_unavailable_total") - total(before, "score_rasa_unavailable_total") >= 1
