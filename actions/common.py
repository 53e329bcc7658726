"""The actions' toolkit: shared types, reading the latest message, buttons, store calls.

Every actions module reads the tracker, builds buttons and calls the store through these
helpers, so a rule such as Telegram's 64-byte callback_data or "never block the event loop"
is kept in one place.
"""
from __future__ import annotations

import asyncio
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, TypedDict, TypeVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from i18n import DEFAULT_LANGUAGE, normalise, t
from store.db import Database, get_database

log = logging.getLogger(__name__)
T = TypeVar("T")

DomainDict = dict[str, Any]
Events = list[EventType]


class Button(TypedDict):
    """A button of a bot message, as rasa-sdk's dispatcher and Rasa's channels take it."""

    title: str
    payload: str  # /intent{"entity":"value"}, at most CALLBACK_LIMIT bytes


CALLBACK_LIMIT = 64  # bytes, Telegram's callback_data limit


# --- the latest message ----------------------------------------------------------------------


def language_of(tracker: Tracker) -> str:
    """The conversation's language: the gateway's per-message metadata, else the slot."""
    metadata = tracker.latest_message.get("metadata") or {}
    lang = metadata.get("language") or tracker.get_slot("language") or DEFAULT_LANGUAGE
    return normalise(lang)


def intent_of(tracker: Tracker) -> str:
    """The latest message's intent name ("" when none).

    Not Tracker.get_intent_of_latest_message(): that reads `intent_ranking`, which a button's
    payload (/intent{...}) does not carry, and skips nlu_fallback, which the fallback must see.
    """
    return str((tracker.latest_message.get("intent") or {}).get("name") or "")


def entity_of(tracker: Tracker, name: str) -> str | None:
    """The first non-empty value of entity `name` in the latest message."""
    return next((str(v) for v in tracker.get_latest_entity_values(name) if v not in (None, "")), None)


def text_of(tracker: Tracker) -> str:
    """The latest message's text, stripped."""
    return str(tracker.latest_message.get("text") or "").strip()


# --- buttons ---------------------------------------------------------------------------------


def button(title: str, intent: str, **entities: str) -> Button:
    """A button whose payload is `/intent{"entity":"value",...}`, checked against Telegram's
    64-byte callback_data limit (a longer payload would be refused by Telegram)."""
    payload = f"/{intent}"
    if entities:
        payload += json.dumps(entities, ensure_ascii=False, separators=(",", ":"))
    if len(payload.encode("utf-8")) > CALLBACK_LIMIT:
        raise ValueError(f"button payload longer than {CALLBACK_LIMIT} bytes: {payload}")
    return Button(title=title, payload=payload)


def human_button(lang: str, reason: str | None = None) -> Button:
    """Offer a person (the handoff capability's intent; `reason` tells staff why)."""
    extra = {"reason": reason} if reason else {}
    return button(t("button_request_human", lang), "request_human", **extra)


# --- the store -------------------------------------------------------------------------------


def database() -> Database:
    """The store (tests replace this)."""
    return get_database()


async def store_call(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`call(database, *args, **kwargs)` in a worker thread.

    The store is synchronous SQLAlchemy (SQLite may wait for its write lock): run on the
    action server's event loop it would stall every other conversation.
    """
    return await asyncio.to_thread(call, database(), *args, **kwargs)


async def attempt(dispatcher: CollectingDispatcher, tracker: Tracker, what: str,
                  work: Awaitable[T], error_key: str | None = "store_error") -> T | None:
    """Await a store write; when it fails, log it, say `error_key` (None: say nothing) and
    return None, so a store outage gives the user a clear answer instead of silence."""
    try:
        return await work
    except Exception:
        log.exception("%s failed for %s", what, tracker.sender_id)
        if error_key:
            dispatcher.utter_message(text=t(error_key, language_of(tracker)))
        return None


# --- form questions --------------------------------------------------------------------------


class Question(Action, ABC):
    """The question for one form slot (`action_ask_<slot>`). Abstract until a subclass names
    its `slot`, so the action server registers only the concrete questions."""

    @property
    @abstractmethod
    def slot(self) -> str: ...

    def name(self) -> str:
        return f"action_ask_{self.slot}"
