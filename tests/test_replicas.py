"""The Redis lock store of several Rasa replicas (rasa_extensions/lock_store.py), without servers:
many clients take tickets for one conversation at once; every ticket must be distinct and the
queue must hold all of them. Rasa 3.6's RedisLockStore loses tickets here (read-modify-write; run("plain"): 20 distinct
tickets of 80 on the development machine);
tests/e2e/test_replicas.py shows the consequence with real servers. Needs Redis
(REDIS_TEST_URL, default redis://127.0.0.1:6379/0) and the Rasa environment (.venvs/rasa)."""
from __future__ import annotations

import json
import subprocess
import uuid
from urllib.parse import urlsplit

import pytest

from stack.settings import RASA_PYTHON, ROOT
from stack.train import rasa_env
from tests.services import REDIS_URL, redis_up

SCRIPT = r"""
import json, sys, threading
from rasa.utils.endpoints import EndpointConfig
from rasa.core.lock_store import RedisLockStore
from rasa_extensions.lock_store import AtomicRedisLockStore

host, port, db, prefix, kind = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
def store():
    if kind == "atomic":
        return AtomicRedisLockStore(EndpointConfig(url=host, port=port, db=db, key_prefix=prefix))
    return RedisLockStore(host=host, port=port, db=db, key_prefix=prefix)
stores = [store() for _ in range(8)]  # eight clients, as eight replicas would have
tickets = []
barrier = threading.Barrier(len(stores))
def take(s):
    barrier.wait()
    for _ in range(10):
        tickets.append(s.issue_ticket("conv", 60))
threads = [threading.Thread(target=take, args=(s,)) for s in stores]
[t.start() for t in threads]; [t.join() for t in threads]
lock = stores[0].get_lock("conv")
queued = sorted(t.number for t in lock.tickets) if lock else []
stores[0].delete_lock("conv")
print(json.dumps({"tickets": sorted(tickets), "queued": queued}))
"""


def run(kind: str) -> dict:
    parts = urlsplit(REDIS_URL)
    prefix = f"locktest{uuid.uuid4().hex[:10]}"
    out = subprocess.run(
        [str(RASA_PYTHON), "-c", SCRIPT, parts.hostname or "127.0.0.1", str(parts.port or 6379),
         parts.path.lstrip("/") or "0", prefix, kind],
        cwd=ROOT, env=rasa_env(), capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not redis_up(), reason=f"Redis is not reachable at {REDIS_URL}")
@pytest.mark.skipif(not RASA_PYTHON.exists(), reason="no Rasa environment (.venvs/rasa)")
def test_atomic_lock_store_issues_every_ticket_once() -> None:
    result = run("atomic")
    assert result["tickets"] == list(range(80))  # 8 clients x 10 tickets, none issued twice
    assert result["queued"] == list(range(80))  # and none dropped from the queue
