"""Rasa's SQL tracker store with a bounded conversation (endpoints.yml
`type: rasa_extensions.tracker_store.BoundedSQLTrackerStore`).

Rasa loads, replays and featurizes every event of the current session on every turn, and sends
them to the action server: a turn's cost grows with the conversation (bare Rasa: turn 100 took
3.4x turn 1 in bench/rasa_bench.py). Rasa only bounds it by session expiry, after idle hours.

Here, when a session holds more than `max_events` events and the bot is waiting for the user
with no form active, the save appends a compacted copy of the session: a session start, the
slot values as they were before the last `keep_turns` user turns, and those turns' events
verbatim. The SQL tracker store loads only from the latest session start, so the next turn
starts from the compacted copy. The policies look at most 5 turns back (MemoizationPolicy
max_history 5; rules are shorter), so they see the same recent turns as before; slots keep
their values. Nothing is deleted: the full history stays in the table.

The compaction and the stored-event count rely on SQLTrackerStore's private `_retrieve` and
`_additional_events` (tests/test_rasa_contract.py): on any Rasa but the pinned one this store
logs one line and is Rasa's SQLTrackerStore, unbounded.

Runs inside the Rasa server (Python 3.10, .venvs/rasa); imports no project code.
"""
from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from typing import Any

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Event, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from rasa_extensions.pinned import installed_rasa_version, pinned_rasa_version, rasa_is_pinned

logger = logging.getLogger(__name__)


def compaction(tracker: DialogueStateTracker, domain: Domain, max_events: int,
               keep_turns: int) -> list[Event]:
    """The events that start a compacted copy of this session, or [] when it is not time."""
    events = list(tracker.events)
    # The session the store would load: from the latest session start (a tracker saved again
    # after a compaction still holds the events before it).
    start = max((i for i, e in enumerate(events) if isinstance(e, SessionStarted)), default=0)
    if (
        len(events) - start <= max_events
        or tracker.active_loop_name
        or tracker.is_paused()
        or tracker.latest_action_name != ACTION_LISTEN_NAME
    ):
        return []
    turns = [i for i, event in enumerate(events) if i > start and isinstance(event, UserUttered)]
    if len(turns) <= keep_turns:
        return []
    cut = turns[-keep_turns]
    before = DialogueStateTracker.from_events(tracker.sender_id, events[:cut], slots=domain.slots)
    if before.active_loop_name or before.is_paused():
        return []  # a form spans the cut: try again after a later turn
    # The store finds the latest session start by timestamp: every new event comes after it.
    now = time.time()
    stamps = (now + i * 1e-6 for i in itertools.count())
    initial = {slot.name: slot.initial_value for slot in domain.slots}
    copy: list[Event] = [
        ActionExecuted(ACTION_SESSION_START_NAME, timestamp=next(stamps)),
        SessionStarted(timestamp=next(stamps)),
    ]
    copy += [
        SlotSet(name, value, timestamp=next(stamps))
        for name, value in before.current_slot_values().items()
        if value != initial.get(name)
    ]
    copy.append(ActionExecuted(ACTION_LISTEN_NAME, timestamp=next(stamps)))
    for event in events[cut:]:
        data: dict[str, Any] = event.as_dict()
        data["timestamp"] = next(stamps)
        copy.append(Event.from_parameters(data))
    return copy


class BoundedSQLTrackerStore(SQLTrackerStore):
    def __init__(self, *args: Any, max_events: int = 60, keep_turns: int = 5, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_events = int(max_events)
        self.keep_turns = int(keep_turns)
        self.bounded = rasa_is_pinned()
        if not self.bounded:
            logger.warning(
                "rasa_extensions: Rasa %s is not the pinned %s: BoundedSQLTrackerStore runs as Rasa's "
                "SQLTrackerStore (no compaction)", installed_rasa_version(), pinned_rasa_version())

    async def _retrieve(self, sender_id: str, fetch_events_from_all_sessions: bool):
        tracker = await super()._retrieve(sender_id, fetch_events_from_all_sessions)
        if self.bounded and tracker is not None and not fetch_events_from_all_sessions:
            # Every event of this tracker is in the table: a save stores only what follows.
            tracker.stored_events = len(tracker.events)
        return tracker

    def _additional_events(self, session: Any, tracker: DialogueStateTracker) -> Iterator:
        # Rasa counts the stored events of the session with a query on every save; the
        # number is known when this store loaded or saved the tracker (under the lock).
        # It also stays right after a compaction, where counting the latest session would not.
        stored = getattr(tracker, "stored_events", None)
        if stored is None or not self.bounded:
            return super()._additional_events(session, tracker)
        return itertools.islice(tracker.events, stored, len(tracker.events))

    async def save(self, tracker: DialogueStateTracker) -> None:
        if not self.bounded:
            return await super().save(tracker)
        for event in compaction(tracker, self.domain, self.max_events, self.keep_turns):
            tracker.update(event)
        await super().save(tracker)
        tracker.stored_events = len(tracker.events)
