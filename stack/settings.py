"""Settings of the running stack, from the environment only (see README, "Settings")."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
RASA_PYTHON = ROOT / ".venvs" / "rasa" / "bin" / "python"
APP_PYTHON = ROOT / ".venvs" / "app" / "bin" / "python"
MODELS_DIR = ROOT / "models"
MODEL_PATH = MODELS_DIR / "score.tar.gz"
# What a trained model depends on: a changed NLU component or encoder pin retrains it too.
# The gateway's /health and /metrics when run by the launcher (not WECHAT_PORT's 8081).
HEALTH_PORT = 8082
TRAINING_INPUTS = ["config.yml", "domain.yml", "nlu", "stories", "rasa_extensions/sentence_features.py",
                   "rasa_extensions/intent_classifier.py", "rasa_extensions/requirements.txt"]


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def new_token() -> str:
    """A per-run secret for Rasa's HTTP API. Hex: URL-safe, and it can never start with "-"
    (token_urlsafe did, 1 time in 64, and Rasa's argument parser read it as an option)."""
    return secrets.token_hex(24)


@dataclass
class StackSettings:
    data_dir: Path = field(default_factory=lambda: Path(_env("DATA_DIR", str(ROOT / "var"))))
    rasa_host: str = field(default_factory=lambda: _env("RASA_HOST", "127.0.0.1"))
    rasa_port: int = field(default_factory=lambda: int(_env("RASA_PORT", "5005")))
    action_port: int = field(default_factory=lambda: int(_env("ACTION_PORT", "5055")))
    # Token for Rasa's HTTP API (the gateway sets slots through it). Random per run unless set.
    rasa_token: str = field(default_factory=lambda: _env("RASA_TOKEN", new_token()))
    database_url: str = field(default_factory=lambda: _env("DATABASE_URL", ""))
    tracker_store_url: str = field(default_factory=lambda: _env("TRACKER_STORE_URL", ""))
    lock_store_url: str = field(default_factory=lambda: _env("LOCK_STORE_URL", ""))
    # Prefix of the Redis lock store's keys: one per deployment sharing a Redis (alphanumeric).
    lock_store_prefix: str = field(default_factory=lambda: _env("LOCK_STORE_PREFIX", "score"))
    rasa_workers: int = field(default_factory=lambda: int(_env("RASA_WORKERS", "1")))
    model_path: Path = field(default_factory=lambda: Path(_env("RASA_MODEL", str(MODEL_PATH))))
    # The gateway's /health and /metrics (bot/health.py) on HEALTH_LISTEN (loopback by
    # default); HEALTH_PORT=0 turns them off.
    health_port: int = field(default_factory=lambda: int(_env("HEALTH_PORT", str(HEALTH_PORT))))
    health_listen: str = field(default_factory=lambda: _env("HEALTH_LISTEN", "127.0.0.1"))

    @property
    def run_dir(self) -> Path:
        path = self.data_dir / "run"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def rasa_url(self) -> str:
        return f"http://{self.rasa_host}:{self.rasa_port}"

    @property
    def rasa_status_url(self) -> str:
        return f"{self.rasa_url}/status?{urlencode({'token': self.rasa_token})}"

    @property
    def action_url(self) -> str:
        return f"http://127.0.0.1:{self.action_port}/webhook"
