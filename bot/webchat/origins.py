"""Which pages may talk to the web chat server: its own origin, and WEBCHAT_ALLOWED_ORIGINS.

Browsers send `Origin` on every WebSocket handshake and on cross-origin HTTP requests, so a
page elsewhere cannot open a chat on a visitor's behalf. (Non-browser clients can send any
Origin; the per-visitor rate limit is what bounds them.)
"""
from __future__ import annotations

from urllib.parse import urlsplit


def normalise(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def is_allowed(origin: str | None, host: str | None, allowed: frozenset[str]) -> bool:
    """`origin`: the request's Origin header (None when the browser sent none); `host`: its
    Host header (the server's own origin, as the visitor's browser reached it)."""
    if origin is None:
        return False
    origin = normalise(origin)
    if origin in allowed:
        return True
    if not host:
        return False
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc == host.lower()
