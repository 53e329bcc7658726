"""Nothing can brick a conversation: a turn that trips Rasa's circuit breaker resets that
user's dialogue and gets one short apology; /start always starts a clean dialogue.

The circuit breaker should never trip in this assistant (the fuzzing test checks that), so
this test makes it trip: a second Rasa server, sharing the stack's action server and tracker
store, allowed only one action per turn (MAX_NUMBER_OF_PREDICTIONS=1, Rasa's own setting)
trips on every turn that answers with a custom action.
"""
from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator

import httpx
import pytest

import i18n
from bot.conversation import ConversationService, Incoming
from bot.rasa_client import RasaClient
from stack import processes
from tests.fakes.bot_api import free_port


@pytest.fixture(scope="module")
def tripping_rasa(stack) -> Iterator[str]:
    settings = dataclasses.replace(stack.settings, rasa_port=free_port())
    saved = os.environ.get("MAX_NUMBER_OF_PREDICTIONS")
    os.environ["MAX_NUMBER_OF_PREDICTIONS"] = "1"
    try:
        server = processes.start_rasa_server(settings, name="rasa-tripping")
    finally:
        if saved is None:
            os.environ.pop("MAX_NUMBER_OF_PREDICTIONS")
        else:
            os.environ["MAX_NUMBER_OF_PREDICTIONS"] = saved
    try:
        processes.wait_until_up(server, f"{settings.rasa_url}/status?token={settings.rasa_token}", 300)
        yield settings.rasa_url
    finally:
        server.stop()


def tracker(rasa_url: str, token: str, sender: str) -> dict:
    response = httpx.get(f"{rasa_url}/conversations/{sender}/tracker", params={"token": token}, timeout=30)
    response.raise_for_status()
    return response.json()


async def test_a_tripped_turn_resets_the_dialogue_and_apologises_once(stack, tripping_rasa):
    rasa = RasaClient(tripping_rasa, stack.settings.rasa_token, timeout=30)
    healthy = RasaClient(stack.rasa_url, stack.settings.rasa_token, timeout=30)
    user = f"cb{time.time_ns()}"
    incoming = Incoming(channel="local", external_id=user, text="")
    try:
        # Start the eligibility check on the healthy server, so there is state to lose.
        service = ConversationService(stack.db, healthy)
        await service.handle(dataclasses.replace(incoming, text="/check_eligibility", is_payload=True))
        sender = f"local-{user}"
        assert tracker(stack.rasa_url, stack.settings.rasa_token, sender)["active_loop"]["name"] == "eligibility_form"

        # The same conversation on the server whose circuit breaker trips.
        tripping = ConversationService(stack.db, rasa)
        answer = await rasa.send(sender, "what modules are there", metadata={"language": "zh"})
        assert answer.reset
        result = await tripping.handle(dataclasses.replace(incoming, text="什么是SCORE"))
        assert [r.text for r in result.replies] == [i18n.t("dialogue_reset", "zh")]
        state = tracker(stack.rasa_url, stack.settings.rasa_token, sender)
        assert not state["active_loop"] and state["latest_action_name"] == "action_listen"
        assert state["slots"]["language"] == "zh"  # the user's language survives the reset

        # Back on the healthy server the conversation simply goes on.
        result = await service.handle(dataclasses.replace(incoming, text="what modules are there"))
        assert "Workplace Cooperation" in result.replies[0].text and len(result.replies) <= 2
    finally:
        await rasa.close()
        await healthy.close()


async def test_start_clears_a_form_and_the_next_question_is_answered(stack):
    rasa = RasaClient(stack.rasa_url, stack.settings.rasa_token, timeout=30)
    service = ConversationService(stack.db, rasa)
    user = f"start{time.time_ns()}"
    incoming = Incoming(channel="local", external_id=user, text="")
    try:
        await service.handle(dataclasses.replace(incoming, text="/start_booking", is_payload=True))
        sender = f"local-{user}"
        assert tracker(stack.rasa_url, stack.settings.rasa_token, sender)["active_loop"]["name"] == "booking_form"
        result = await service.command(incoming, "start")
        assert len(result.replies) == 1 and [b.payload for b in result.replies[0].buttons] == ["lang:en", "lang:zh"]
        state = tracker(stack.rasa_url, stack.settings.rasa_token, sender)
        assert not state["active_loop"] and state["latest_action_name"] == "action_listen"
        result = await service.handle(dataclasses.replace(incoming, text="what modules are there"))
        assert len(result.replies) <= 2 and "Workplace Cooperation" in result.replies[0].text
    finally:
        await rasa.close()
