"""The bounded tracker store (rasa_extensions/tracker_store.py), run in the Rasa environment with the
project's domain: the compacted conversation keeps the slots and the recent dialogue states the
policies look at, the store loads only the compacted copy, and no event is lost."""
from __future__ import annotations

import subprocess

from stack.settings import RASA_PYTHON, ROOT
from stack.train import rasa_env

SCRIPT = r"""
import asyncio, sys
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (ActionExecuted, ActiveLoop, BotUttered, SessionStarted,
                                     SlotSet, UserUttered)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa_extensions.tracker_store import BoundedSQLTrackerStore, compaction

domain = Domain.load("domain.yml")


def turn(intent, action, slots=()):
    events = [UserUttered(f"about {intent}", {"name": intent, "confidence": 0.9})]
    events += [SlotSet(name, value) for name, value in slots]
    return events + [ActionExecuted(action), BotUttered(f"answer to {intent}"),
                     ActionExecuted("action_listen")]


def conversation(faq_turns):
    events = [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")]
    events += turn("greet", "utter_greet", [("language", "zh"), ("employees", "180")])
    for i in range(faq_turns):
        events += turn(["faq_fees", "faq_modules", "thank"][i % 3],
                       ["action_answer_faq", "action_answer_faq", "utter_you_are_welcome"][i % 3])
    events += turn("faq_china", "action_answer_faq", [("sector", "garment")])
    return events


def build(events):
    return DialogueStateTracker.from_events("s", events, slots=domain.slots)


# 1. short conversations, an active form, or a form across the cut: nothing to do
assert compaction(build(conversation(3)), domain, 60, 5) == []
with_form = conversation(20) + [UserUttered("check", {"name": "check_eligibility"}),
                                ActionExecuted("eligibility_form"), ActiveLoop("eligibility_form"),
                                ActionExecuted("action_listen")]
assert compaction(build(with_form), domain, 60, 5) == []
across = conversation(20) + [ActiveLoop("eligibility_form")] + conversation(6)[3:] + [
    ActiveLoop(None), ActionExecuted("action_listen")]
assert compaction(build(across), domain, 60, 5) == [], "a form active at the cut"

# 2. a long conversation: same slots, same recent states, only the last 5 turns kept
events = conversation(30)
original = build(events)
new = compaction(original, domain, 60, 5)
assert new and isinstance(new[1], SessionStarted)
loaded = build(new[1:])  # what the store loads next: from the latest session start
assert loaded.current_slot_values() == original.current_slot_values()
assert loaded.current_slot_values()["language"] == "zh"
assert sum(isinstance(e, UserUttered) for e in loaded.events) == 5
states = original.past_states(domain)
assert loaded.past_states(domain)[-11:] == states[-11:], "the policies' window changed"
assert loaded.latest_message.intent["name"] == "faq_china"

# 3. through the store (SQLite): compacted on save, loaded compacted, nothing deleted
async def through_store(path):
    store = BoundedSQLTrackerStore(domain=domain, dialect="sqlite", db=path)
    tracker = build(events)
    await store.save(tracker)
    await store.save(tracker)  # again, just compacted: nothing is stored twice
    first = await store.retrieve("s")
    assert len(first.events) < 40 < len(events), len(first.events)
    assert first.current_slot_values() == original.current_slot_values()
    for event in turn("faq_fees", "action_answer_faq", [("employees", "250")]):
        first.update(event)
    await store.save(first)
    second = await store.retrieve("s")
    assert [e.as_dict() for e in second.events] == [e.as_dict() for e in first.events]
    assert second.get_slot("employees") == "250"
    # the same tracker saved again (Rasa does for some API calls): nothing stored twice
    await store.save(second)
    await store.save(second)
    with store.session_scope() as session:
        rows = session.query(store.SQLEvent).filter(store.SQLEvent.sender_id == "s").count()
    assert rows == len(events) + len(new) + 5, rows  # full history kept, each event once
    # a tracker this store did not load (a new conversation): Rasa's own count is used
    fresh = build(conversation(1))
    fresh.sender_id = "t"
    await store.save(fresh)
    fresh.stored_events = None
    await store.save(fresh)
    assert len((await store.retrieve("t")).events) == len(fresh.events)

asyncio.run(through_store(sys.argv[1]))
print("OK")
"""


def test_bounded_tracker_store(tmp_path):
    result = subprocess.run(
        [str(RASA_PYTHON), "-c", SCRIPT, str(tmp_path / "tracker.db")],
        cwd=ROOT, env=rasa_env(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("OK"), result.stderr[-4000:]
