"""Alembic migrations, run programmatically (no alembic.ini needed): `python -m store.migrate`."""
from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from store.settings import default_database_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else default_database_url()
    upgrade(url)
    print(f"store schema is up to date ({url.split('@')[-1]})")


if __name__ == "__main__":
    main()
