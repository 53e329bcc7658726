"""Talks to the Rasa server over HTTP: the REST channel for messages, the HTTP API for slots."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

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
        self._slot_cache: dict[tuple[str, str], Any] = {}

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

    async def send(self, sender: str, text: str, metadata: dict[str, Any] | None = None) -> list[Reply]:
        try:
            response = await self._client.post(
                "/webhooks/rest/webhook",
                json={"sender": sender, "message": text, "metadata": metadata or {}},
            )
            response.raise_for_status()
            return parse_replies(response.json())
        except (httpx.HTTPError, ValueError) as error:
            logger.warning("Rasa did not answer for %s: %r", sender, error)
            raise RasaUnavailable(str(error)) from error

    async def set_slot(self, sender: str, name: str, value: Any) -> None:
        """Set a slot through the HTTP API; skipped when this gateway already set that value."""
        if self._slot_cache.get((sender, name)) == value:
            return
        try:
            response = await self._client.post(
                f"/conversations/{sender}/tracker/events",
                params={**self._auth(), "include_events": "NONE"},
                json={"event": "slot", "name": name, "value": value},
            )
            response.raise_for_status()
        except httpx.HTTPError as error:
            raise RasaUnavailable(str(error)) from error
        self._slot_cache[(sender, name)] = value

    async def latest_intent(self, sender: str) -> tuple[str | None, float | None]:
        """The intent Rasa gave the last user message (for the transcript and the NLU inbox)."""
        try:
            response = await self._client.get(
                f"/conversations/{sender}/tracker",
                params={**self._auth(), "include_events": "NONE"},
            )
            response.raise_for_status()
            intent = (response.json().get("latest_message") or {}).get("intent") or {}
            return intent.get("name"), intent.get("confidence")
        except (httpx.HTTPError, ValueError):
            return None, None

    async def forget(self, sender: str) -> None:
        """Replace the conversation's tracker with an empty one (for /forget)."""
        self._slot_cache = {k: v for k, v in self._slot_cache.items() if k[0] != sender}
        try:
            response = await self._client.put(
                f"/conversations/{sender}/tracker/events", params=self._auth(), json=[]
            )
            response.raise_for_status()
        except httpx.HTTPError as error:
            raise RasaUnavailable(str(error)) from error
