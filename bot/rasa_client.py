"""Talks to the Rasa server over HTTP: the gateway channel for messages (stack/rasa_channel.py:
the language goes as metadata, the intent comes back with the answer), the HTTP API for /forget."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot import metrics

logger = logging.getLogger(__name__)


class RasaUnavailable(Exception):
    """Rasa (or its action server) did not answer in time."""


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


def parse_replies(body: list[dict[str, Any]]) -> list[Reply]:
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

    async def send(self, sender: str, text: str, metadata: dict[str, Any] | None = None) -> RasaAnswer:
        """One message; `metadata["language"]` sets the conversation's `language` slot."""
        try:
            response = await self._client.post(
                "/webhooks/gateway/webhook",
                json={"sender": sender, "message": text, "metadata": metadata or {}},
            )
            response.raise_for_status()
            body = response.json()
            intent = body.get("intent") or {}
            return RasaAnswer(parse_replies(body.get("messages") or []), intent.get("name"),
                              intent.get("confidence"), reset=bool(body.get("reset")))
        except (httpx.HTTPError, ValueError, AttributeError) as error:
            logger.warning("Rasa did not answer for %s: %r", sender, error)
            metrics.RASA_UNAVAILABLE.inc()
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
