"""Writes Rasa's endpoints.yml and credentials.yml for this run, from the settings.

Generated rather than committed so that the tracker store, lock store and action server
follow DATABASE_URL-style settings without secrets in the repository. The classes are named
by their dotted path, as strings: Rasa imports them (rasa_extensions/), the launcher never does.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

from stack.settings import StackSettings

BOUNDED_SQL = "rasa_extensions.tracker_store.BoundedSQLTrackerStore"
ATOMIC_REDIS = "rasa_extensions.lock_store.AtomicRedisLockStore"
GATEWAY_CHANNEL = "rasa_extensions.gateway_channel.GatewayInput"


def tracker_store(settings: StackSettings) -> dict:
    """Rasa's SQL tracker store, bounded (rasa_extensions/tracker_store.py): SQLite under DATA_DIR,
    or PostgreSQL from TRACKER_STORE_URL."""
    url = settings.tracker_store_url
    if not url:
        return {"type": BOUNDED_SQL, "dialect": "sqlite", "db": str(settings.data_dir / "rasa_tracker.db")}
    parts = urlsplit(url)
    config = {
        "type": BOUNDED_SQL,
        "dialect": "postgresql",
        "url": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "db": parts.path.lstrip("/") or "rasa",
    }
    if parts.username:
        config["username"] = unquote(parts.username)
    if parts.password:
        config["password"] = unquote(parts.password)
    return config


def lock_store(settings: StackSettings) -> dict | None:
    """Redis lock store when LOCK_STORE_URL is set (needed with several Rasa servers)."""
    if not settings.lock_store_url:
        return None
    parts = urlsplit(settings.lock_store_url)
    config = {
        # Rasa's RedisLockStore with atomic ticket updates (see rasa_extensions/lock_store.py)
        "type": ATOMIC_REDIS,
        "url": parts.hostname or "127.0.0.1",
        "port": parts.port or 6379,
        "db": int(parts.path.lstrip("/") or 0),
        "key_prefix": settings.lock_store_prefix,
    }
    if parts.password:
        config["password"] = unquote(parts.password)
    if not settings.lock_store_prefix.isalnum():
        # Rasa would silently fall back to its default prefix and share locks with others.
        raise ValueError(f"LOCK_STORE_PREFIX must be alphanumeric, not {settings.lock_store_prefix!r}")
    return config


def write(settings: StackSettings) -> tuple[Path, Path]:
    endpoints: dict = {
        "action_endpoint": {"url": settings.action_url},
        "tracker_store": tracker_store(settings),
    }
    lock = lock_store(settings)
    if lock:
        endpoints["lock_store"] = lock
    endpoints_path = settings.run_dir / "endpoints.yml"
    credentials_path = settings.run_dir / "credentials.yml"
    endpoints_path.write_text(yaml.safe_dump(endpoints, sort_keys=False))
    # rest: for curl and the replica test; the gateway channel: what the gateway uses.
    credentials_path.write_text(yaml.safe_dump({"rest": None, GATEWAY_CHANNEL: None}))
    return endpoints_path, credentials_path
