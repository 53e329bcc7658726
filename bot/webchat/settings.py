"""Web chat settings, from the environment only (README: "Settings")."""
from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


def _origins(value: str) -> frozenset[str]:
    return frozenset(part.strip().rstrip("/").lower() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class WebchatSettings:
    # Unset or 0: the web chat is off.
    port: int = field(default_factory=lambda: int(_env("WEBCHAT_PORT", "0")))
    host: str = field(default_factory=lambda: _env("WEBCHAT_HOST", "127.0.0.1"))
    # Pages on these origins may embed the widget (scheme://host[:port], comma-separated);
    # the server's own origin (its /demo page) always may. Others are refused.
    allowed_origins: frozenset[str] = field(default_factory=lambda: _origins(_env("WEBCHAT_ALLOWED_ORIGINS")))
    # Per-visitor limit: at most this many messages per window (seconds); more are refused.
    rate: int = field(default_factory=lambda: int(_env("WEBCHAT_RATE_LIMIT", _env("CHAT_RATE_LIMIT", "5"))))
    rate_window: float = field(
        default_factory=lambda: float(_env("WEBCHAT_RATE_WINDOW", _env("CHAT_RATE_WINDOW", "3")))
    )
    history_lines: int = field(default_factory=lambda: int(_env("WEBCHAT_HISTORY_LINES", "50")))
    notification_interval: float = field(default_factory=lambda: float(_env("NOTIFICATION_INTERVAL", "5")))

    @property
    def enabled(self) -> bool:
        return self.port > 0
