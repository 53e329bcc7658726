"""Gateway settings, from the environment only (README: "Settings")."""
from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


def _ids(value: str) -> frozenset[int]:
    return frozenset(int(part) for part in value.replace(" ", "").split(",") if part)


@dataclass(frozen=True)
class BotSettings:
    token: str = field(default_factory=lambda: _env("TELEGRAM_BOT_TOKEN"))
    # Bot API base URL: Telegram's by default; a Local Bot API Server or a test server otherwise.
    base_url: str = field(default_factory=lambda: _env("TELEGRAM_BASE_URL", "https://api.telegram.org/bot"))
    base_file_url: str = field(
        default_factory=lambda: _env("TELEGRAM_BASE_FILE_URL", "https://api.telegram.org/file/bot")
    )
    mode: str = field(default_factory=lambda: _env("TELEGRAM_MODE", "polling"))  # polling | webhook
    webhook_listen: str = field(default_factory=lambda: _env("WEBHOOK_LISTEN", "127.0.0.1"))
    webhook_port: int = field(default_factory=lambda: int(_env("WEBHOOK_PORT", "8443")))
    webhook_path: str = field(default_factory=lambda: _env("WEBHOOK_PATH", "telegram"))
    webhook_url: str = field(default_factory=lambda: _env("WEBHOOK_URL"))  # public URL
    webhook_secret: str = field(default_factory=lambda: _env("WEBHOOK_SECRET"))
    rasa_url: str = field(default_factory=lambda: _env("RASA_URL", "http://127.0.0.1:5005"))
    rasa_token: str = field(default_factory=lambda: _env("RASA_TOKEN"))
    rasa_timeout: float = field(default_factory=lambda: float(_env("RASA_TIMEOUT", "4.5")))
    # How long a message is kept while Rasa is unreachable before the user is asked to resend it.
    rasa_hold_window: float = field(default_factory=lambda: float(_env("RASA_HOLD_WINDOW", "120")))
    staff_chat_id: int | None = field(
        default_factory=lambda: int(_env("STAFF_CHAT_ID")) if _env("STAFF_CHAT_ID") else None
    )
    staff_user_ids: frozenset[int] = field(default_factory=lambda: _ids(_env("STAFF_USER_IDS")))
    console_url: str = field(default_factory=lambda: _env("CONSOLE_URL", "http://127.0.0.1:8080"))
    # Per-chat flood limit: at most this many messages per window go to Rasa; more are slowed.
    chat_rate: int = field(default_factory=lambda: int(_env("CHAT_RATE_LIMIT", "5")))
    chat_rate_window: float = field(default_factory=lambda: float(_env("CHAT_RATE_WINDOW", "3")))
    # /health and /metrics (bot/health.py); unset or 0: not served.
    health_port: int = field(default_factory=lambda: int(_env("HEALTH_PORT", "0")))
    health_listen: str = field(default_factory=lambda: _env("HEALTH_LISTEN", "127.0.0.1"))
    action_url: str = field(
        default_factory=lambda: _env("ACTION_URL", f"http://127.0.0.1:{_env('ACTION_PORT', '5055')}")
    )
    notification_interval: float = field(
        default_factory=lambda: float(_env("NOTIFICATION_INTERVAL", "5"))
    )
