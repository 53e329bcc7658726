"""Redis, the lock store of two Rasa replicas, goes away and comes back.

Two Rasa servers (one shared action server) on a fresh PostgreSQL tracker database, the Redis
lock store on a redis-server of this test's own (the machine's Redis is shared: it is not
touched), and the real gateway in front, reaching the replicas through a round-robin proxy as
it reaches rasa-lb in deploy/. While Redis is down each user is told once that the assistant
is temporarily unavailable and the message is kept (the gateway's hold window); the gateway
logs one warning for the outage and each replica one line (no traceback), however often the
held messages are retried; once Redis is back the held messages are answered and both replicas
take new ones.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import i18n
from stack import processes
from stack.settings import MODEL_PATH, StackSettings
from stack.train import is_current, train
from store.db import Database
from tests.e2e.gateways import running_gateway
from tests.e2e.test_replicas import _create_tracker_tables
from tests.fakes.bot_api import free_port
from tests.services import POSTGRES_URL, postgres_up

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

TOKEN = "lock-token"


class RedisServer:
    """A redis-server of this test's own on a free loopback port, nothing persisted."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True)
            if done.stdout.strip() == "PONG":
                return
            time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


@dataclass
class TwoReplicas:
    settings: StackSettings
    redis: RedisServer
    urls: list[str]
    servers: list[processes.Server]


@pytest.fixture(scope="module")
def two_replicas(tmp_path_factory) -> Iterator[TwoReplicas]:
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    if not postgres_up():
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL}")
    if not MODEL_PATH.exists():
        train(MODEL_PATH)
    elif not is_current(MODEL_PATH):
        import os

        if os.environ.get("SCORE_ALLOW_STALE_MODEL") != "1":
            train(MODEL_PATH)
    data_dir = tmp_path_factory.mktemp("lockstore")
    redis = RedisServer(data_dir)
    redis.start()
    tracker_db = f"lockfault_tracker_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{tracker_db}"'))
    tracker_url = (POSTGRES_URL.rsplit("/", 1)[0] + f"/{tracker_db}").replace("postgresql+psycopg://", "postgresql://")
    settings = StackSettings(
        data_dir=data_dir, rasa_port=free_port(), action_port=free_port(), rasa_token=TOKEN,
        database_url=f"sqlite:///{data_dir / 'assistant.db'}", tracker_store_url=tracker_url,
        lock_store_url=f"redis://127.0.0.1:{redis.port}/0", lock_store_prefix=f"lockfault{uuid.uuid4().hex[:8]}",
        rasa_workers=1, model_path=MODEL_PATH,
    )
    servers: list[processes.Server] = []
    try:
        processes.prepare_store(settings)
        _create_tracker_tables(tracker_url)
        second_port = free_port()
        servers.append(processes.start_action_server(settings))
        servers.append(processes.start_rasa_server(settings))
        servers.append(processes.start_rasa_server(settings, port=second_port, name="rasa-b"))
        urls = [settings.rasa_url, f"http://127.0.0.1:{second_port}"]
        processes.wait_until_up(servers[0], f"http://127.0.0.1:{settings.action_port}/health", 60)
        for server, url in zip(servers[1:], urls, strict=False):
            processes.wait_until_up(server, f"{url}/status?token={TOKEN}", 400)
        yield TwoReplicas(settings, redis, urls, servers)
    finally:
        for server in reversed(servers):
            server.stop()
        redis.kill()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{tracker_db}" WITH (FORCE)'))
        admin.dispose()


class RoundRobin:
    """What rasa-lb (nginx) does in deploy/: each request to the next replica."""

    def __init__(self, targets: list[str]) -> None:
        self.targets = itertools.cycle(targets)
        self.used: list[str] = []
        self.port = free_port()
        self.client = httpx.AsyncClient(timeout=30)
        app = Starlette(routes=[Route("/{path:path}", self.forward, methods=["GET", "POST", "PUT"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def forward(self, request: Request) -> Response:
        target = next(self.targets)
        self.used.append(target)
        upstream = await self.client.request(
            request.method, f"{target}/{request.path_params['path']}", params=request.query_params,
            content=await request.body(), headers={"content-type": request.headers.get("content-type", "")})
        return Response(upstream.content, upstream.status_code,
                        media_type=upstream.headers.get("content-type"))

    async def __aenter__(self) -> RoundRobin:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.should_exit = True
        await self.task
        await self.client.aclose()


@dataclass
class StackView:  # what running_gateway needs of a stack
    rasa_url: str
    settings: StackSettings


def log_lines(server: processes.Server, start: int, needle: str) -> list[str]:
    return [line for line in server.log_path.read_text(errors="replace").splitlines()[start:] if needle in line]


def log_length(server: processes.Server) -> int:
    return len(server.log_path.read_text(errors="replace").splitlines())


async def test_lock_store_down_then_back(two_replicas: TwoReplicas, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    waiting, unavailable = i18n.t("rasa_waiting", "en"), i18n.t("unavailable", "en")
    failures = {waiting, unavailable, i18n.t("rasa_send_again", "en")}
    db = Database(two_replicas.settings.database_url)
    async with RoundRobin(two_replicas.urls) as balancer:
        view = StackView(balancer.url, two_replicas.settings)
        async with running_gateway(view, db, rasa_timeout=10.0, rasa_hold_window=120.0) as gateway:
            api = gateway.api
            users = [gateway.new_user(), gateway.new_user()]
            # Redis up: both replicas answer (round robin: one message each).
            for user in users:
                api.push_text(user, "what is SCORE")
                texts = await api.wait_sent(user, 1, 60)
                assert not failures & set(texts), texts

            # Redis gone: no turn can run on either replica.
            two_replicas.redis.kill()
            rasa_servers = two_replicas.servers[1:]
            starts = [log_length(s) for s in rasa_servers]
            caplog.clear()
            sent_during = len(balancer.used)
            held = {users[0]: "how long is the training", users[1]: "who funds SCORE"}
            counts = {user: len(api.texts(user)) for user in users}
            for user, question in held.items():
                api.push_text(user, question)
            for user in users:  # each user is told once that the message is kept
                texts = await api.wait_sent(user, counts[user] + 1, 30)
                assert texts[counts[user]:] == [waiting], texts[counts[user]:]
            await asyncio.sleep(4.0)  # the held messages are retried meanwhile
            assert set(balancer.used[sent_during:]) == set(two_replicas.urls)  # both replicas refused
            assert len(balancer.used) - sent_during >= 4  # retried, not given up
            warnings = [r for r in caplog.records if r.name == "bot.rasa_client" and r.levelno >= logging.WARNING]
            assert len(warnings) == 1, [r.getMessage() for r in warnings]  # one line for the outage
            refused = 0
            for server, start in zip(rasa_servers, starts, strict=False):
                lines = log_lines(server, start, "gateway.lock_store.unavailable")
                assert len(lines) == 1, (server.name, server.log_path.read_text().splitlines()[start:][-20:])
                assert not log_lines(server, start, "Traceback"), server.name
                refused += 1

            # Redis back (empty, as after a restart): the held messages are answered, in order.
            two_replicas.redis.start()
            for user, question in held.items():
                texts = await api.wait_sent(user, counts[user] + 2, 60)
                answer = texts[counts[user] + 1:]
                assert answer and not failures & set(answer), (question, answer)
            assert any(r.getMessage() == "Rasa answers again" for r in caplog.records)
            # and new messages are answered by both replicas
            for user in users:
                before = len(api.texts(user))
                api.push_text(user, "what is SCORE")
                texts = await api.wait_sent(user, before + 1, 60)
                assert not failures & set(texts[before:]), texts[before:]
            assert all(s.alive() for s in two_replicas.servers)
            assert refused == 2
    db.dispose()
