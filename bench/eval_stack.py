"""A real Rasa server and action server for an evaluation, started with the launcher's own code
(stack/processes.py) as tests/e2e/conftest.py does: own temp SQLite store and tracker store,
free loopback ports, a per-run API token. Yields the gateway's ConversationService on it."""
from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from stack import processes
from stack.settings import StackSettings, new_token


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class EvalStack:
    settings: StackSettings
    database_url: str
    logs: dict[str, Path]

    def tracker(self, sender: str) -> dict[str, Any]:
        """Rasa's tracker of one conversation, through its HTTP API (with the run's token)."""
        response = httpx.get(f"{self.settings.rasa_url}/conversations/{sender}/tracker",
                             params={"token": self.settings.rasa_token}, timeout=60)
        response.raise_for_status()
        return response.json()


@contextmanager
def running_stack(model: Path, data_dir: Path) -> Iterator[EvalStack]:
    database_url = f"sqlite:///{data_dir / 'assistant.db'}"
    settings = StackSettings(
        data_dir=data_dir, rasa_port=free_port(), action_port=free_port(), rasa_token=new_token(),
        database_url=database_url, tracker_store_url="", lock_store_url="", model_path=model.resolve(),
    )
    saved = {key: os.environ.get(key) for key in ("DATABASE_URL", "DATA_DIR")}
    os.environ["DATABASE_URL"] = database_url  # the store this process (the gateway's code) uses
    os.environ["DATA_DIR"] = str(data_dir)
    processes.prepare_store(settings)
    servers = [processes.start_action_server(settings), processes.start_rasa_server(settings)]
    try:
        processes.wait_until_up(servers[0], f"http://127.0.0.1:{settings.action_port}/health", 60)
        processes.wait_until_up(servers[1], settings.rasa_status_url, 600)
        yield EvalStack(settings, database_url, {s.name: s.log_path for s in servers if s.log_path is not None})
    finally:
        for server in reversed(servers):
            server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
