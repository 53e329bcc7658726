"""WeChat's server API: the access token and the customer-service message API.

Written by hand on httpx rather than with wechatpy's client: wechatpy's client is synchronous
(requests) and would block the event loop every turn shares; here the token is one cached value
behind an asyncio lock (one refresh at a time, however many turns need it).
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import httpx

logger = logging.getLogger(__name__)

# errcodes meaning the access token is no longer good: invalid, expired, not the latest.
TOKEN_ERRORS = {40001, 40014, 42001}
# WeChat is busy: try again shortly.
BUSY_ERRORS = {-1, 45009}
# The user can no longer be messaged: outside the 48-hour window after their last message,
# unsubscribed, or the per-user quota is used up. Retrying does not help.
UNDELIVERABLE_ERRORS = {43004, 45015, 45047, 40003}
# Refresh this long before WeChat says the token expires (it is valid for 7200 s).
TOKEN_MARGIN = 300.0


class WeChatApiError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat API error {errcode}: {errmsg}")
        self.errcode, self.errmsg = errcode, errmsg

    @property
    def undeliverable(self) -> bool:
        return self.errcode in UNDELIVERABLE_ERRORS


class WeChatApi:
    def __init__(self, base_url: str, app_id: str, app_secret: str, timeout: float = 10.0,
                 attempts: int = 3) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_id, self.app_secret = app_id, app_secret
        self.attempts = attempts
        self._client = httpx.AsyncClient(timeout=timeout)
        self._token: str | None = None
        self._expires_at = 0.0  # monotonic
        self._refresh = asyncio.Lock()
        self.token_fetches = 0

    async def close(self) -> None:
        await self._client.aclose()

    async def access_token(self, force: bool = False) -> str:
        stale = self._token
        async with self._refresh:
            # Another turn may have refreshed it while this one waited for the lock.
            if self._token and time.monotonic() < self._expires_at and not (force and self._token == stale):
                return self._token
            response = await self._client.get(f"{self.base_url}/cgi-bin/token", params={
                "grant_type": "client_credential", "appid": self.app_id, "secret": self.app_secret})
            response.raise_for_status()
            data = response.json()
            if "access_token" not in data:
                raise WeChatApiError(int(data.get("errcode", -2)), str(data.get("errmsg", "no access_token")))
            self.token_fetches += 1
            self._token = data["access_token"]
            lifetime = float(data.get("expires_in", 7200))
            self._expires_at = time.monotonic() + max(lifetime - TOKEN_MARGIN, lifetime / 2)
            return self._token

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a JSON body with the access token; a rejected token is refreshed once, a busy
        server or a dropped connection retried with backoff."""
        # WeChat shows \\uXXXX escapes literally in some clients: send UTF-8 as is.
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
        refreshed, pause = False, 0.5
        for attempt in range(1, self.attempts + 2):
            token = await self.access_token()
            try:
                response = await self._client.post(
                    f"{self.base_url}{path}", params={"access_token": token}, content=content,
                    headers={"Content-Type": "application/json; charset=utf-8"})
                response.raise_for_status()
                data = response.json()
            except (httpx.TransportError, httpx.HTTPStatusError, ValueError) as error:
                if attempt >= self.attempts:
                    raise
                logger.warning("WeChat %s failed (%s); retrying", path, error)
                await asyncio.sleep(pause)
                pause *= 2
                continue
            errcode = int(data.get("errcode", 0) or 0)
            if errcode == 0:
                return data
            if errcode in TOKEN_ERRORS and not refreshed:
                logger.info("WeChat rejected the access token (%s); refreshing", errcode)
                refreshed = True
                await self.access_token(force=True)
                continue
            if errcode in BUSY_ERRORS and attempt < self.attempts:
                await asyncio.sleep(pause)
                pause *= 2
                continue
            raise WeChatApiError(errcode, str(data.get("errmsg", "")))
        raise WeChatApiError(-2, "gave up")

    async def send(self, message: dict[str, Any]) -> None:
        """One customer-service message (`touser`, `msgtype` and its body)."""
        await self.call("/cgi-bin/message/custom/send", message)
