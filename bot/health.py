"""The gateway's small HTTP server for operators: /health and /metrics (HEALTH_PORT).

/health checks, concurrently and each within HEALTH_TIMEOUT seconds, the four parts a turn
needs: the Rasa server (/status), the action server (/health), the store (a write) and the
Telegram Bot API (getMe, cached for a few seconds so a load balancer polling every second does
not flood Telegram). The store is checked with a committed one-row write (store/probe.py): a
read-only or full disk, or a read-only PostgreSQL, is down with the database's reason.
JSON with each part up or down; 200 when all are up, 503 otherwise, so a load balancer
or a `docker compose` healthcheck takes a gateway out when it cannot answer.
It runs in the gateway's event loop, in polling and webhook mode alike.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from store.probe import probe_write, sqlite_disk_problem

if TYPE_CHECKING:  # annotations only: the health server is given these by bot.telegram.app
    from telegram import Bot

    from bot.rasa_client import RasaClient
    from store.db import Database

logger = logging.getLogger(__name__)

BOT_API_CACHE_SECONDS = 10.0


@dataclass
class HealthChecks:
    rasa: RasaClient
    action_url: str
    db: Database
    bot: Bot | None  # None in the local chat
    timeout: float = 2.0
    _bot_api: tuple[float, bool, str] = field(default=(0.0, False, ""), repr=False)
    _store_probe: asyncio.Future | None = field(default=None, repr=False)

    async def check_rasa(self) -> tuple[bool, str]:
        return (True, "") if await self.rasa.status() else (False, "no answer to /status")

    async def check_actions(self) -> tuple[bool, str]:
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.get(f"{self.action_url.rstrip('/')}/health")
        return response.status_code == 200, f"HTTP {response.status_code}"

    async def check_store(self) -> tuple[bool, str]:
        # One probe at a time: a store slower than the check's timeout is reported down while
        # its probe finishes, instead of a blocked thread per poll of the load balancer.
        if self._store_probe is None or self._store_probe.done():
            self._store_probe = asyncio.ensure_future(
                asyncio.to_thread(probe_write, self.db, "gateway", self.timeout))
        try:
            await asyncio.shield(self._store_probe)
        except (OperationalError, InterfaceError, DBAPIError) as error:
            cause = str(getattr(error, "orig", None) or error).splitlines()[0][:200]
            disk = await asyncio.to_thread(sqlite_disk_problem, self.db)
            return False, f"cannot write: {cause}" + (f" ({disk})" if disk else "")
        return True, ""

    async def check_bot_api(self) -> tuple[bool, str]:
        if self.bot is None:
            return True, "local chat"
        checked_at, up, detail = self._bot_api
        if time.monotonic() - checked_at < BOT_API_CACHE_SECONDS:
            return up, detail
        try:
            await self.bot.get_me(read_timeout=self.timeout, connect_timeout=self.timeout)
            up, detail = True, ""
        except Exception as error:
            up, detail = False, f"{type(error).__name__}: {error}"
        self._bot_api = (time.monotonic(), up, detail)
        return up, detail

    async def run(self) -> dict[str, dict]:
        checks = {"rasa": self.check_rasa, "actions": self.check_actions,
                  "store": self.check_store, "bot_api": self.check_bot_api}

        async def one(check) -> dict:
            try:
                up, detail = await asyncio.wait_for(check(), self.timeout)
            except TimeoutError:
                up, detail = False, f"no answer in {self.timeout:g} s"
            except Exception as error:
                up, detail = False, f"{type(error).__name__}: {error}"[:300]
            return {"up": up, **({"detail": detail} if detail and not up else {})}

        results = await asyncio.gather(*(one(check) for check in checks.values()))
        return dict(zip(checks, results, strict=True))


def build_app(checks: HealthChecks) -> Starlette:
    async def health(_: Request) -> JSONResponse:
        parts = await checks.run()
        ok = all(part["up"] for part in parts.values())
        return JSONResponse({"status": "ok" if ok else "degraded", "parts": parts}, status_code=200 if ok else 503)

    async def metrics(_: Request) -> Response:
        # The store collector queries the database: off the event loop.
        body = await asyncio.to_thread(generate_latest, REGISTRY)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/health", health), Route("/metrics", metrics)])


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # PTB's run_polling/run_webhook handle SIGINT and SIGTERM
        yield


class HealthServer:
    """uvicorn in the running event loop (no signal handlers: PTB owns those)."""

    def __init__(self, checks: HealthChecks, host: str, port: int) -> None:
        config = uvicorn.Config(build_app(checks), host=host, port=port, log_level="warning",
                                lifespan="off", access_log=False)
        self.server = _QuietServer(config)
        self.task: asyncio.Task | None = None
        self.host, self.port = host, port

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():  # e.g. the port is taken
                self.task.result()
                raise SystemExit(f"error: the health server could not listen on {self.host}:{self.port}")
            await asyncio.sleep(0.01)
        logger.info("health and metrics on http://%s:%d/health, /metrics", self.host, self.port)

    async def stop(self) -> None:
        if self.task:
            self.server.should_exit = True
            await self.task
