"""Types and helpers shared by every actions module."""
from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker

from i18n import DEFAULT_LANGUAGE, normalise

DomainDict = dict[str, Any]


def language_of(tracker: Tracker) -> str:
    """The conversation's language: the gateway's per-message metadata, else the slot."""
    metadata = tracker.latest_message.get("metadata") or {}
    lang = metadata.get("language") or tracker.get_slot("language") or DEFAULT_LANGUAGE
    return normalise(lang)
