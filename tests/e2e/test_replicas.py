"""Two Rasa replicas behind one conversation: PostgreSQL tracker store, Redis lock store.

Each replica is a Rasa server with its own action server (as in deploy/docker-compose.yml);
both share a fresh PostgreSQL tracker store database, a fresh PostgreSQL store database and
the Redis lock store under a key prefix unique to this run. Turns of one conversation go to
either replica: the eligibility form continues across them, concurrent messages are
serialised by the lock, and killing a replica loses nothing.

Needs PostgreSQL (POSTGRES_TEST_URL, default postgres@127.0.0.1:5432/test) and Redis
(REDIS_TEST_URL, default redis://127.0.0.1:6379/0); skipped when either is missing.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import create_engine, text

from stack import processes
from stack.settings import MODEL_PATH, RASA_PYTHON, StackSettings
from stack.train import is_current, rasa_env, train
from tests.fakes.bot_api import free_port
from tests.services import POSTGRES_URL, REDIS_URL, postgres_up, redis_up

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

TOKEN = "replica-token"


def _admin_engine():
    return create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")


def _redis_delete_prefix(prefix: str) -> None:
    """Drop this run's lock keys (normally none are left: locks are deleted when released)."""
    code = (
        "import redis,sys; r=redis.Redis.from_url(sys.argv[1]); "
        "[r.delete(k) for k in r.scan_iter(sys.argv[2] + ':*')]"
    )
    subprocess.run([str(RASA_PYTHON), "-c", code, REDIS_URL, prefix], check=False)


@dataclasses.dataclass
class Replica:
    name: str
    settings: StackSettings
    servers: list[processes.Server]

    @property
    def url(self) -> str:
        return self.settings.rasa_url

    def kill(self) -> None:
        """SIGKILL, as a crash: no graceful shutdown, no lock release."""
        import signal

        for server in self.servers:
            if server.alive():
                os.killpg(server.process.pid, signal.SIGKILL)
                server.process.wait()


@dataclasses.dataclass
class Replicas:
    a: Replica
    b: Replica
    tracker_db: str


def _create_tracker_tables(tracker_url: str) -> None:
    """Create Rasa's tables once, so the two replicas do not race to create them."""
    from urllib.parse import urlsplit

    parts = urlsplit(tracker_url)
    code = (
        "import sys\n"
        "from rasa.core.tracker_store import SQLTrackerStore\n"
        "from rasa.shared.core.domain import Domain\n"
        "SQLTrackerStore(Domain.empty(), dialect='postgresql', host=sys.argv[1], port=int(sys.argv[2]),"
        " db=sys.argv[3], username=sys.argv[4] or None)\n"
    )
    subprocess.run(
        [str(RASA_PYTHON), "-c", code, parts.hostname or "127.0.0.1", str(parts.port or 5432),
         parts.path.lstrip("/"), parts.username or ""],
        env=rasa_env(), check=True, capture_output=True,
    )


@pytest.fixture(scope="module")
def replicas(tmp_path_factory) -> Iterator[Replicas]:
    if not postgres_up():
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL}")
    if not redis_up():
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    if not MODEL_PATH.exists() or (not is_current(MODEL_PATH) and os.environ.get("SCORE_ALLOW_STALE_MODEL") != "1"):
        train(MODEL_PATH)
    run_id = uuid.uuid4().hex[:10]
    store_db, tracker_db = f"replicas_store_{run_id}", f"replicas_tracker_{run_id}"
    engine = _admin_engine()
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{store_db}"'))
        conn.execute(text(f'CREATE DATABASE "{tracker_db}"'))
    base = POSTGRES_URL.rsplit("/", 1)[0]
    store_url = f"{base}/{store_db}"
    tracker_url = f"{base}/{tracker_db}".replace("postgresql+psycopg://", "postgresql://")
    prefix = f"replicas{run_id}"
    started: list[Replica] = []
    try:
        settings = {
            name: StackSettings(
                data_dir=tmp_path_factory.mktemp(f"replica-{name}"),
                rasa_port=free_port(),
                action_port=free_port(),
                rasa_token=TOKEN,
                database_url=store_url,
                tracker_store_url=tracker_url,
                lock_store_url=REDIS_URL,
                lock_store_prefix=prefix,
                rasa_workers=1,
            )
            for name in ("a", "b")
        }
        with ThreadPoolExecutor(2) as pool:
            pool.submit(processes.prepare_store, settings["a"]).result()
            pool.submit(_create_tracker_tables, tracker_url).result()
        for name, s in settings.items():  # both start in parallel: ~40 s, not ~80 s
            started.append(Replica(name, s, [processes.start_action_server(s), processes.start_rasa_server(s)]))
        for replica in started:
            actions, rasa = replica.servers
            processes.wait_until_up(actions, f"http://127.0.0.1:{replica.settings.action_port}/health", 60)
            processes.wait_until_up(rasa, f"{replica.url}/status?token={TOKEN}", 400)
        yield Replicas(started[0], started[1], tracker_db)
    finally:
        for replica in started:
            for server in reversed(replica.servers):
                server.stop()
        with engine.connect() as conn:
            for name in (store_db, tracker_db):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()
        _redis_delete_prefix(prefix)


async def say(client: httpx.AsyncClient, replica: Replica, sender: str, message: str) -> list[dict]:
    response = await client.post(
        f"{replica.url}/webhooks/rest/webhook",
        json={"sender": sender, "message": message, "metadata": {"language": "en"}},
    )
    response.raise_for_status()
    return response.json()


async def tracker(client: httpx.AsyncClient, replica: Replica, sender: str) -> dict:
    response = await client.get(f"{replica.url}/conversations/{sender}/tracker",
                                params={"token": TOKEN, "include_events": "ALL"})
    response.raise_for_status()
    return response.json()


def slots(state: dict) -> dict:
    return state["slots"]


def requested(state: dict) -> str | None:
    return state["slots"].get("requested_slot")


def answers_at_outcome(state: dict) -> dict:
    """The slots as action_eligibility_outcome saw them (it resets the form's slots after)."""
    values: dict = {}
    for e in state["events"]:
        if e["event"] == "slot":
            values[e["name"]] = e["value"]
        elif e["event"] == "action" and e["name"] == "action_eligibility_outcome":
            return values
    raise AssertionError(f"the check did not finish: {story(state)}")


def story(state: dict) -> list[str]:
    """The conversation in short, for assertion messages."""
    out = []
    for e in state["events"]:
        if e["event"] == "user":
            out.append(f"user {e.get('text')!r} -> {(e.get('parse_data') or {}).get('intent', {}).get('name')}")
        elif e["event"] == "action" and e["name"] != "action_listen":
            out.append(e["name"])
        elif e["event"] == "slot" and e["name"] != "language":
            out.append(f"  {e['name']}={e['value']!r}")
    return out


# The check starts with the intent's payload (as a button would) so that the test does not
# depend on NLU; the answers are typed.
START = "/check_eligibility"
# The eligibility form question by question, as in tests/stories/test_eligibility.yml:
# (message, slot it fills, value, slot asked next).
ANSWERS = [
    ("about 200", "employees", "200", "sector"),
    ("auto parts", "sector", "manufacturing", "location"),
    ("Chongqing", "location", "Chongqing, China", "supplies_brands"),
    ("no", "supplies_brands", False, "can_commit"),
    ("yes", "can_commit", True, None),
]


async def test_form_continues_across_replicas(replicas: Replicas) -> None:
    sender = f"replica-form-{uuid.uuid4().hex[:8]}"
    order = [replicas.a, replicas.b]
    async with httpx.AsyncClient(timeout=60) as client:
        await say(client, replicas.a, sender, START)
        state = await tracker(client, replicas.b, sender)  # the other replica sees the form
        assert state["active_loop"].get("name") == "eligibility_form", story(state)
        assert requested(state) == "employees", story(state)
        for i, (message, slot, value, asked_next) in enumerate(ANSWERS):
            here, there = order[(i + 1) % 2], order[i % 2]
            replies = await say(client, here, sender, message)
            assert replies, f"no answer to {message!r} on replica {here.name}"
            state = await tracker(client, there, sender)
            if asked_next is None:
                break
            assert slots(state)[slot] == value, (message, here.name, story(state))
            assert requested(state) == asked_next, (message, here.name, story(state))
        assert not state["active_loop"].get("name"), story(state)
        # every answer survived the alternation: the outcome saw all five
        outcome = answers_at_outcome(state)
        for _, slot, value, _ in ANSWERS:
            assert outcome[slot] == value, (slot, story(state))


def _turns(events: list[dict]) -> list[tuple[str, list[str]]]:
    """(user text, what followed until the next user message) for each user event."""
    turns: list[tuple[str, list[str]]] = []
    for event in events:
        if event["event"] == "user":
            turns.append((event.get("text"), []))
        elif turns and event["event"] in ("bot", "action"):
            turns[-1][1].append(event["event"] if event["event"] == "bot" else event["name"])
    return turns


async def test_concurrent_messages_to_one_conversation_are_serialised(replicas: Replicas) -> None:
    sender = f"replica-lock-{uuid.uuid4().hex[:8]}"
    messages = [f"what is SCORE {i}" if i % 2 else f"who funds SCORE {i}" for i in range(10)]
    async with httpx.AsyncClient(timeout=120) as client:
        answers = await asyncio.gather(*(
            say(client, replicas.a if i % 2 else replicas.b, sender, message)
            for i, message in enumerate(messages)
        ))
        assert all(answers), answers
        state = await tracker(client, replicas.a, sender)
    turns = _turns(state["events"])
    assert sorted(t for t, _ in turns) == sorted(messages), story(state)  # all 10, none lost
    for text_, after in turns:
        # each user message is followed by its own answer and the return to listening, before
        # the next user message: nothing interleaved
        assert "bot" in after, (text_, story(state))
        assert after[-1] == "action_listen", (text_, after)
        assert after.count("action_listen") == 1, (text_, after)


async def test_killing_a_replica_mid_form_loses_nothing(replicas: Replicas) -> None:
    sender = f"replica-kill-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=60) as client:
        await say(client, replicas.a, sender, START)
        await say(client, replicas.b, sender, ANSWERS[0][0])
        await say(client, replicas.a, sender, ANSWERS[1][0])
        before = await tracker(client, replicas.a, sender)
        replicas.a.kill()
        with pytest.raises(httpx.TransportError):
            await say(client, replicas.a, sender, ANSWERS[2][0])
        state = await tracker(client, replicas.b, sender)
        assert len(state["events"]) == len(before["events"])
        assert requested(state) == "location", story(state)
        for message, slot, value, asked_next in ANSWERS[2:]:
            await say(client, replicas.b, sender, message)
            state = await tracker(client, replicas.b, sender)
            if asked_next is None:
                break
            assert slots(state)[slot] == value, story(state)
            assert requested(state) == asked_next, story(state)
        outcome = answers_at_outcome(state)  # answers given to the dead replica included
        for _, slot, value, _ in ANSWERS:
            assert outcome[slot] == value, (slot, story(state))
