"""Console settings, read from the environment once at start (see docs/console.md)."""
from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from store.db import PROJECT_ROOT

log = logging.getLogger("console")


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    return raw not in {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Settings:
    secret_key: str
    secure_cookies: bool = True
    session_hours: float = 8.0
    timezone: str = "Asia/Shanghai"
    max_failed_logins: int = 5
    lockout_minutes: int = 15
    domain_file: Path = PROJECT_ROOT / "domain.yml"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def from_env(cls) -> Settings:
        key = os.environ.get("CONSOLE_SECRET_KEY", "").strip()
        if not key:
            # A random key still gives signed sessions; they just end when the process stops,
            # and several workers would not share them.
            key = secrets.token_urlsafe(48)
            log.warning(
                "CONSOLE_SECRET_KEY is not set: generated a random key for this run; "
                "staff will be logged out when the console restarts"
            )
        return cls(
            secret_key=key,
            secure_cookies=_flag("CONSOLE_SECURE_COOKIES", True),
            session_hours=float(os.environ.get("CONSOLE_SESSION_HOURS", "8")),
            timezone=os.environ.get("CONSOLE_TIMEZONE", "Asia/Shanghai"),
            max_failed_logins=int(os.environ.get("CONSOLE_MAX_FAILED_LOGINS", "5")),
            lockout_minutes=int(os.environ.get("CONSOLE_LOCKOUT_MINUTES", "15")),
            domain_file=Path(os.environ.get("CONSOLE_DOMAIN_FILE", PROJECT_ROOT / "domain.yml")),
        )
