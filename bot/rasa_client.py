"""Talks to the Rasa server over HTTP: the gateway channel for messages (rasa_extensions/gateway_channel.py:
the language goes as metadata, the intent comes back with the answer), the HTTP API for /forget."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, TypedDict

import httpx

from bot import metrics

logger = logging.getLogger(__name__)


class RasaUnavailable(Exception):
    """Rasa (or its action server) did not answer in time."""


class RasaUnreachable(RasaUnavailable):
    """Rasa did not take the message: no connection, the connection dropped before an answer
    (the server died; it saves a tracker only at the end of a turn), or an error status. Sending
    the message again cannot make Rasa handle it twice."""


@dataclass
class Button:
    title: str
    payload: str


@dataclass
class Reply:
    text: str = ""
    buttons: list[Button] = field(default_factory=list)
    custom: dict[str, Any] | None = None


@dataclass
class RasaAnswer:
    replies: list[Reply]
    intent: str | None = None  # what Rasa understood: for the transcript and NLU review
    confidence: float | None = None
    reset: bool = False  # the turn tripped Rasa's circuit breaker; the dialogue was reset
    action_failed: str | None = None  # a custom action failed (the action server is down)


# The gateway channel's answer (rasa_extensions/gateway_channel.py), as JSON. Read defensively:
# every field may be missing.
class WireButton(TypedDict, total=False):
    title: str
    payload: str


class WireMessage(TypedDict, total=False):
    recipient_id: str
    text: str
    buttons: list[WireButton]
    custom: dict[str, Any]


class WireIntent(TypedDict, total=False):
    name: str | None
    confidence: float


class GatewayAnswer(TypedDict, total=False):
    messages: list[WireMessage]
    intent: WireIntent
    reset: bool  # Rasa's circuit breaker tripped and the dialogue was reset
    action_failed: str | None  # the custom action that failed


def parse_replies(body: list[WireMessage]) -> list[Reply]:
    replies: list[Reply] = []
    for item in body:
        buttons = [
            Button(title=str(b.get("title", "")), payload=str(b.get("payload", "")))
            for b in item.get("buttons") or []
        ]
        text = str(item.get("text") or "")
        if text or buttons or item.get("custom"):
            replies.append(Reply(text=text, buttons=buttons, custom=item.get("custom")))
    return replies


class RasaClient:
    """One keep-alive HTTP client for the whole gateway."""

    def __init__(self, base_url: str, token: str = "", timeout: float = 4.5) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=2.0),
            limits=httpx.Limits(max_keepalive_connections=20, max_connections=100),
        )
        # An outage is logged when it starts and when it ends, not at every held message's
        # retry (several a second while Redis or Rasa is down); the rest go to debug.
        self._failing = False

    async def close(self) -> None:
        await self._client.aclose()

    async def status(self) -> bool:
        try:
            response = await self._client.get("/status", params=self._auth())
            return response.status_code == 200
        except httpx.HTTPError:
            return False

    def _auth(self) -> dict[str, str]:
        return {"token": self.token} if self.token else {}

    @property
    def timeout(self) -> float:
        return self._client.timeout.read or 0.0

    async def send(self, sender: str, text: str, metadata: dict[str, Any] | None = None,
                   timeout: float | None = None) -> RasaAnswer:
        """One message; `metadata["language"]` sets the conversation's `language` slot.
        `timeout` overrides how long to wait for the answer (the client's by default)."""
        try:
            response = await self._client.post(
                "/webhooks/gateway/webhook",
                json={"sender": sender, "message": text, "metadata": metadata or {}},
                timeout=httpx.Timeout(timeout, connect=2.0) if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
            response.raise_for_status()
            body: GatewayAnswer = response.json()
            intent: WireIntent = body.get("intent") or {}
            if self._failing:
                self._failing = False
                logger.warning("Rasa answers again")
            return RasaAnswer(parse_replies(body.get("messages") or []), intent.get("name"),
                              intent.get("confidence"), reset=bool(body.get("reset")),
                              action_failed=body.get("action_failed") or None)
        except (httpx.TransportError, httpx.HTTPStatusError) as error:
            metrics.RASA_UNAVAILABLE.inc()
            log = logger.debug if self._failing else logger.warning
            self._failing = True
            if isinstance(error, httpx.ReadTimeout):
                # Rasa has the message and may still answer it: not safe to send again.
                log("Rasa did not answer in time for %s: %r", sender, error)
                raise RasaUnavailable(str(error)) from error
            log("Rasa is unreachable for %s: %r", sender, error)
            raise RasaUnreachable(str(error)) from error
        except (httpx.HTTPError, ValueError, AttributeError) as error:
            metrics.RASA_UNAVAILABLE.inc()
            (logger.debug if self._failing else logger.warning)("Rasa did not answer for %s: %r", sender, error)
            self._failing = True
            raise RasaUnavailable(str(error)) from error

    async def forget(self, sender: str) -> None:
        """Replace the conversation's tracker with an empty one (for /forget)."""
        try:
            response = await self._client.put(
                f"/conversations/{sender}/tracker/events", params=self._auth(), json=[]
            )
            response.raise_for_status()
        except httpx.HTTPError as error:
            raise RasaUnavailable(str(error)) from error


async def wait_for_rasa(rasa: RasaClient, timeout: float = 300.0) -> None:
    """Take no input before Rasa answers /status (it may still be loading the model)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await rasa.status():
        if loop.time() > deadline:
            raise SystemExit(f"error: the Rasa server at {rasa.base_url} did not come up in {timeout:.0f} s")
        await asyncio.sleep(0.5)
