"""The set-up script and the store's migrations, as a newcomer meets them."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from stack.settings import ROOT
from store.migrate import alembic_config


@pytest.mark.skipif(Path("/usr/bin/python3.10").exists(), reason="this machine has a system Python 3.10")
def test_missing_python_310_is_one_clear_message(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh")], env=env, capture_output=True, text=True)
    assert result.returncode == 3
    assert "Python 3.10 is needed" in result.stderr and "pyenv install 3.10" in result.stderr
    assert "Traceback" not in result.stderr


def test_setup_is_quick_when_nothing_changed():
    result = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "setting up" not in result.stdout  # nothing reinstalled


def test_upgrade_keeps_existing_data(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = alembic_config(url)
    command.upgrade(config, "0001")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (channel, external_id, sender_id, language, language_chosen, paused,"
                " created_at, last_seen_at)"
                " VALUES ('telegram', '1', 'tg-1', 'zh', 0, 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
    command.upgrade(config, "head")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT sender_id, language FROM users")).all() == [("tg-1", "zh")]
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() != "0001"
    engine.dispose()
