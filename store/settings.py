"""Where the store keeps its data: DATABASE_URL, or an embedded SQLite file under DATA_DIR.

Imports nothing else from the store, so both the engine (store.db) and the migration command
(store.migrate) can read it without importing each other.
"""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Folder for the embedded database and other local state (DATA_DIR, default ./var)."""
    path = Path(os.environ.get("DATA_DIR", PROJECT_ROOT / "var"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_database_url() -> str:
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        # Accept the common postgres:// spellings and use psycopg 3.
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url
    return f"sqlite:///{data_dir() / 'assistant.db'}"
