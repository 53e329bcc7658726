"""The Rasa-side parts (rasa_extensions/gateway_channel.py, the speed-ups in rasa_extensions/speedups.py), checked
against the real Rasa server and the real model."""
from __future__ import annotations

import json
import subprocess
import time

import httpx

from stack.settings import RASA_PYTHON, ROOT
from stack.train import rasa_env


def tracker(stack, sender: str) -> dict:
    response = httpx.get(f"{stack.rasa_url}/conversations/{sender}/tracker",
                         params={"token": stack.settings.rasa_token}, timeout=30)
    response.raise_for_status()
    return response.json()


def send(stack, sender: str, text: str, language: str | None) -> dict:
    metadata = {"language": language} if language else {}
    response = httpx.post(f"{stack.rasa_url}/webhooks/gateway/webhook",
                          json={"sender": sender, "message": text, "metadata": metadata}, timeout=30)
    response.raise_for_status()
    return response.json()


def test_gateway_channel_sets_language_slot_and_returns_intent(stack):
    sender = f"channel-{time.time_ns()}"
    body = send(stack, sender, "hello", "zh")
    assert body["intent"]["name"] == "greet" and 0 < body["intent"]["confidence"] <= 1
    # utter_greet is chosen by the language slot: the metadata set it before the answer.
    assert any("SCORE" in m.get("text", "") and "您好" in m["text"] for m in body["messages"])
    assert tracker(stack, sender)["slots"]["language"] == "zh"

    body = send(stack, sender, "hello", "en")
    assert body["messages"][0]["text"].startswith("Hello")
    assert tracker(stack, sender)["slots"]["language"] == "en"

    # No language, or one the slot does not allow: the slot keeps its value.
    send(stack, sender, "hello", None)
    send(stack, sender, "hello", "fr")
    assert tracker(stack, sender)["slots"]["language"] == "en"


def test_gateway_channel_payload_intent_and_unknown_payload(stack):
    sender = f"channel-{time.time_ns()}"
    body = send(stack, sender, "/greet", "en")
    assert body["intent"] == {"name": "greet", "confidence": 1.0}
    body = send(stack, sender, "/no_such_intent", "en")  # not a domain intent: NLU decides
    assert body["intent"]["name"] != "no_such_intent"
    assert body["messages"]  # and the user still gets an answer


def test_the_model_finds_the_module_a_typed_booking_names(stack):
    from actions.booking.offers import module_of

    def modules(text: str) -> list[int | None]:
        response = httpx.post(f"{stack.rasa_url}/model/parse", params={"token": stack.settings.rasa_token},
                              json={"text": text}, timeout=30)
        response.raise_for_status()
        return [module_of(e["value"]) for e in response.json()["entities"] if e["entity"] == "module"]

    assert modules("pls book the module 4 classroom course for us") == [4]
    assert modules("we need an expert visit for the second module") == [2]
    assert modules("帮我们约一下第三个模块的现场辅导") == [3]
    assert modules("book a class for 3 managers and 2 workers") == []
    assert modules("培训一共有五个模块吗") == []


# Runs in the Rasa environment: the payload shortcut against Rasa's own NLU graph, same model.
COMPARE = """
import json, sys
from rasa.core.agent import Agent
from rasa.core.channels.channel import UserMessage
from rasa.core.processor import MessageProcessor
from rasa.shared.core.trackers import DialogueStateTracker
from rasa_extensions import speedups

original = MessageProcessor._parse_message_with_graph
speedups.payloads_without_nlu()
shortcut = MessageProcessor._parse_message_with_graph
assert shortcut is not original
processor = Agent.load(sys.argv[1]).processor
pairs = []
for text in json.loads(sys.argv[2]):
    message = UserMessage(text, sender_id="compare")
    tracker = DialogueStateTracker.from_events("compare", [])
    pairs.append([original(processor, message, tracker), shortcut(processor, message, tracker)])
print("RESULT " + json.dumps(pairs))
"""


def test_payload_shortcut_parses_exactly_like_the_nlu_graph(stack):
    payloads = [
        '/book_classroom{"module":"1","place":"Dongguan"}',
        '/choose_session{"session_id":"12"}',
        '/reschedule_to{"ref":"SC-ABC123","slot_id":"7"}',
        "/affirm",
        "  /deny  ",
        "/greet@0.5",
        "/faq_fees",
        "/no_such_intent",
        '/book_classroom{"module": broken',
        "/",
        "what is SCORE",
    ]
    result = subprocess.run(
        [str(RASA_PYTHON), "-c", COMPARE, str(stack.settings.model_path), json.dumps(payloads)],
        cwd=ROOT, env=rasa_env(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    pairs = json.loads(line.removeprefix("RESULT "))
    assert len(pairs) == len(payloads)
    for text, (graph, shortcut) in zip(payloads, pairs, strict=True):
        assert shortcut == graph, text
    by_text = dict(zip(payloads, pairs, strict=True))
    assert by_text['/choose_session{"session_id":"12"}'][1]["entities"][0]["value"] == "12"


# Runs in the Rasa environment: the compiled check says "valid" only where jsonschema does.
SCHEMA_VERDICTS = r"""
import copy, json, random
import jsonschema
from rasa.core.actions.action import RemoteAction
from rasa_extensions.speedups import action_response_check
from rasa.shared.core import events as E

samples = [
    E.SlotSet("language", "zh"), E.SlotSet("booking_target", None), E.ActionExecuted("action_listen"),
    E.BotUttered("hi", {"buttons": [{"title": "A", "payload": "/a"}]}), E.ActiveLoop("booking_form"),
    E.ActiveLoop(None), E.UserUttered("hello", {"name": "greet", "confidence": 0.9}),
    E.FollowupAction("action_fallback"), E.Restarted(), E.SessionStarted(), E.AllSlotsReset(),
    E.ConversationPaused(), E.ConversationResumed(), E.UserUtteranceReverted(), E.ActionReverted(),
    E.LoopInterrupted(True), E.ActionExecutionRejected("validate_booking_form"),
    E.ReminderScheduled("remind", __import__("datetime").datetime(2027, 1, 1)),
]
events = [e.as_dict() for e in samples]
responses = [{"events": events, "responses": [{"text": "a", "buttons": []}, {"template": "utter_x"}]},
             {"events": [], "responses": []}, {}]
rng = random.Random(7)
junk = [None, 1, -1.5, "x", "", [], {}, True, [1], {"a": 1}]


def mutants(instance, n):
    out = []
    for _ in range(n):
        doc = copy.deepcopy(instance)
        node = doc
        for _ in range(rng.randint(1, 4)):  # walk down to a random place
            if isinstance(node, dict) and node:
                key = rng.choice(list(node))
                if rng.random() < 0.3:
                    choice = rng.random()
                    if choice < 0.4:
                        node[key] = rng.choice(junk)
                    elif choice < 0.7:
                        del node[key]
                    else:
                        node[key + "_x"] = rng.choice(junk)
                    break
                node = node[key]
            elif isinstance(node, list) and node:
                i = rng.randrange(len(node))
                if rng.random() < 0.3:
                    node[i] = rng.choice(junk)
                    break
                node = node[i]
            else:
                break
        out.append(doc)
    return out

checked = disagree = invalid = 0
schema = RemoteAction.action_response_format_spec()
fast = action_response_check(schema)
assert fast is not None
slow = jsonschema.validators.validator_for(schema)(schema)
# each instance twice: the second time an event may come from the check's memory of valid ones
instances = responses + [m for r in responses for m in mutants(r, 600)]
instances += [{"events": [e]} for e in events] + [{"events": [m]} for e in events for m in mutants(e, 30)]
for round_ in (1, 2):
    for instance in instances:
        fast_ok = fast(copy.deepcopy(instance))
        slow_ok = slow.is_valid(instance)
        checked += 1
        invalid += not slow_ok
        if fast_ok != slow_ok:
            disagree += 1
            print("DISAGREE", fast_ok, slow_ok, json.dumps(instance)[:300])
print("RESULT " + json.dumps({"checked": checked, "disagree": disagree, "invalid": invalid}))
"""


def test_fast_action_response_check_agrees_with_jsonschema():
    done = subprocess.run([str(RASA_PYTHON), "-c", SCHEMA_VERDICTS], cwd=ROOT, env=rasa_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    assert result["checked"] > 2000 and result["invalid"] > 300, result  # the mutants do break things
    assert result["disagree"] == 0, done.stdout[-3000:]


def classroom_seats_up_to_module_2(stack, sender: str) -> None:
    """Seats in a Module 1 and then a Module 2 classroom session for `sender`, booked in the
    store (consultations of Module 2 follow its classroom session)."""
    from sqlalchemy import select

    from store import booking as store
    from store.models import ClassroomSession

    with stack.db.session() as s:
        module_2 = s.scalars(select(ClassroomSession).where(ClassroomSession.module == 2)
                             .order_by(ClassroomSession.starts_at)).first()
        module_1 = s.scalars(select(ClassroomSession).where(
            ClassroomSession.module == 1, ClassroomSession.starts_at < module_2.starts_at)
            .order_by(ClassroomSession.starts_at.desc())).first()
        ids = [module_1.id, module_2.id]
    user = store.ensure_user(stack.db, sender)
    for session_id in ids:
        assert store.book_classroom(stack.db, user, session_id).outcome == "booked"


def test_booking_starts_in_the_form_and_a_new_request_starts_again(stack):
    sender = f"channel-{time.time_ns()}"
    classroom_seats_up_to_module_2(stack, sender)
    send(stack, sender, '/book_classroom{"module":"1","place":"Dongguan"}', "en")
    first = tracker(stack, sender)["slots"]
    assert first["booking_kind"] == "classroom" and first["booking_place"] == "Dongguan"
    assert first["requested_slot"] == "booking_target" and first["booking_nonce"]
    # while the form asks for a date: a consultation instead
    body = send(stack, sender, '/book_consultation{"module":"2"}', "en")
    again = tracker(stack, sender)["slots"]
    assert again["booking_kind"] == "consultation" and again["booking_module"] == "2"
    assert again["booking_place"] is None and again["booking_target"] is None
    assert again["booking_nonce"] != first["booking_nonce"]
    assert again["requested_slot"] == "booking_place" and body["messages"]
    events = tracker(stack, sender)["events"]
    assert not any(e.get("name") == "action_booking_start" for e in events)


def test_a_consultation_before_its_classroom_session_is_refused_at_the_module(stack):
    sender = f"channel-{time.time_ns()}"
    body = send(stack, sender, "/book_consultation", "zh")
    assert tracker(stack, sender)["slots"]["requested_slot"] == "booking_module"
    body = send(stack, sender, '/choose_module{"module":"2"}', "zh")
    (message,) = body["messages"]
    assert "还没有预约模块2" in message["text"]
    assert [b["payload"] for b in message["buttons"]] == ['/book_classroom{"module":"2"}']
    after = tracker(stack, sender)
    assert after["active_loop"] == {} or after["active_loop"].get("name") is None
    assert after["slots"]["booking_kind"] is None and after["slots"]["requested_slot"] is None
    # the offered button: Module 2's classroom session, which in turn needs Module 1 first
    (message,) = send(stack, sender, '/book_classroom{"module":"2"}', "zh")["messages"]
    assert "每家工厂都从模块1" in message["text"]
    assert [b["payload"] for b in message["buttons"]] == ['/book_classroom{"module":"1"}']
    send(stack, sender, '/book_classroom{"module":"1"}', "zh")
    slots = tracker(stack, sender)["slots"]
    assert (slots["booking_kind"], slots["booking_module"], slots["requested_slot"]) == (
        "classroom", "1", "booking_place")
