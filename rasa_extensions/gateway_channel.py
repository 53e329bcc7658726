"""The gateway's input channel into Rasa (`/webhooks/gateway/webhook`): Rasa's REST channel
with the two things the gateway used to ask for in extra HTTP calls, now in the same round trip.

- The conversation's language travels as message metadata (`{"language": "zh"}`); the channel
  sets the `language` slot from it before any action runs, so the domain's responses (chosen by
  that slot) follow it. Before, the gateway set the slot with `POST /tracker/events`: a second
  tracker load and save on every language change, 15 % of the Rasa server's time in the
  benchmark (docs/performance.md).
- The answer carries the intent Rasa gave the message, for the transcript and the console's
  NLU review. Before, the gateway read it back with `GET /tracker`: a full tracker load and
  serialisation per turn.

- A turn that trips Rasa's circuit breaker (more actions than MAX_NUMBER_OF_PREDICTIONS without
  listening) would leave the dialogue in a state no rule starts from, so every later message
  would trip it again. The channel resets that dialogue (a new session, the language kept) and
  says so with `"reset": true`; the gateway answers with one apology instead of the loop's
  messages.

- A custom action that fails (the action server is down or died mid-action) is logged by Rasa,
  which goes on without the action's events; the answer says so with `"action_failed": name`,
  so the gateway can tell the user it did not work instead of staying silent.

Response: `{"messages": [...as the REST channel...], "intent": {"name": ..., "confidence": ...},
"reset": bool, "action_failed": str | null}`.

The language slot, the intent, the reset and `action_failed` come from a hook on Rasa's
MessageProcessor and RemoteAction (`install_processor_hook`), installed by
rasa_extensions.patches before Rasa starts (`python -m rasa_extensions run`), only on the pinned
Rasa version; without it the channel answers as Rasa's REST channel does, with no intent.
Runs inside the Rasa server (Python 3.10, .venvs/rasa); imports no project code.
"""
from __future__ import annotations

import time
from asyncio import CancelledError
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from rasa.core.processor import MessageProcessor
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.events import ActionExecuted, Restarted, SessionStarted, SlotSet
from rasa.shared.core.slots import CategoricalSlot
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

structlogger = structlog.get_logger()
LANGUAGE_SLOT = "language"


LOCK_LOG_EVERY = 60.0
LOCK_OUTAGE = {"logged_at": -LOCK_LOG_EVERY, "refused": 0}


def lock_store_down(error: BaseException) -> bool:
    """The Redis lock store did not answer (the error or one it was raised from)."""
    from rasa.core.lock_store import LockError
    from rasa.shared.exceptions import ConnectionException

    seen: BaseException | None = error
    for _ in range(5):
        if seen is None:
            return False
        module = type(seen).__module__
        if module.startswith("redis") or isinstance(seen, (ConnectionException,)) or (
            isinstance(seen, LockError) and "Error while acquiring lock" in str(seen)
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class GatewayOutputChannel(CollectingOutputChannel):
    """Collects the bot's messages, and the intent of the user message they answer."""

    def __init__(self) -> None:
        super().__init__()
        self.intent: dict[str, Any] = {}
        self.reset = False
        self.action_failed: str | None = None

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        # One utterance, one message: Rasa's collecting channel makes a message of every
        # paragraph, so an answer with its source line arrived as three chat bubbles and a
        # turn's message count said nothing about the dialogue. The gateway splits only at
        # the channel's length limit.
        await self._persist_message(self._message(recipient_id, text=text.strip()))


def reset_after_circuit_break(tracker, output_channel, _nlg) -> None:
    """MessageProcessor's on_circuit_break: start the user's dialogue afresh.

    The processor saves the tracker after this, so the next message starts from a listening
    state in a new session (the SQL tracker store loads from the latest session start).
    """
    language = tracker.get_slot(LANGUAGE_SLOT)
    structlogger.error("gateway.circuit_breaker.reset", sender_id=tracker.sender_id)
    for event in (
        Restarted(),
        ActionExecuted(ACTION_SESSION_START_NAME),
        SessionStarted(),
        SlotSet(LANGUAGE_SLOT, language),
        ActionExecuted(ACTION_LISTEN_NAME),
    ):
        tracker.update(event)
    if isinstance(output_channel, GatewayOutputChannel):
        output_channel.reset = True


def install_processor_hook() -> None:
    """After Rasa logs a user message: language slot from metadata, intent to the channel;
    and a circuit breaker that resets the dialogue (the Agent builds its processor without one)."""
    if getattr(MessageProcessor, "_gateway_hook", False):
        return
    original = MessageProcessor._handle_message_with_tracker

    async def handle_message_with_tracker(self, message: UserMessage, tracker) -> None:
        if self.on_circuit_break is None:
            self.on_circuit_break = reset_after_circuit_break
        await original(self, message, tracker)
        language = (message.metadata or {}).get(LANGUAGE_SLOT)
        slot = tracker.slots.get(LANGUAGE_SLOT)
        if (
            isinstance(slot, CategoricalSlot)
            and language in slot.values
            and tracker.get_slot(LANGUAGE_SLOT) != language
        ):
            # Logged right after the user message; `language` does not influence the
            # dialogue, so the policies see the same states as before.
            tracker.update(SlotSet(LANGUAGE_SLOT, language), self.domain)
        if isinstance(message.output_channel, GatewayOutputChannel) and tracker.latest_message:
            message.output_channel.intent = dict(tracker.latest_message.intent or {})

    MessageProcessor._handle_message_with_tracker = handle_message_with_tracker
    MessageProcessor._gateway_hook = True

    original_run = RemoteAction.run

    async def run_remote_action(self, output_channel, nlg, tracker, domain):
        try:
            return await original_run(self, output_channel, nlg, tracker, domain)
        except ActionExecutionRejection:
            raise  # a form's "not this slot": part of the dialogue, not a failure
        except Exception:
            if isinstance(output_channel, GatewayOutputChannel):
                output_channel.action_failed = self.name()
            raise

    RemoteAction.run = run_remote_action


class GatewayInput(RestInput):
    @classmethod
    def name(cls) -> str:
        return "gateway"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        if not getattr(MessageProcessor, "_gateway_hook", False):
            structlogger.warning(
                "gateway.processor_hook.missing",
                event_info="no language slot, intent, reset or action_failed in the answers: "
                           "start Rasa with `python -m rasa_extensions run` (pinned Rasa version)",
            )
        webhook = Blueprint("gateway_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            sender_id = await self._extract_sender(request)
            text = self._extract_message(request)
            metadata: dict | None = self.get_metadata(request)
            collector = GatewayOutputChannel()
            try:
                await on_new_message(
                    UserMessage(text, collector, sender_id, input_channel=self.name(), metadata=metadata)
                )
            except CancelledError:
                structlogger.error("gateway.message.timeout", sender_id=sender_id)
            except Exception as error:
                if lock_store_down(error) and not collector.messages:
                    # Redis (the lock store of several Rasa servers) is unreachable: no turn can
                    # run safely. 503, so the gateway holds the message and tells the user it
                    # is temporarily unavailable (an empty 200 would read as a dialogue that
                    # said nothing); one log line per LOCK_LOG_EVERY seconds, not one per retry.
                    LOCK_OUTAGE["refused"] += 1
                    now = time.monotonic()
                    if now - LOCK_OUTAGE["logged_at"] >= LOCK_LOG_EVERY:
                        LOCK_OUTAGE["logged_at"] = now
                        structlogger.error("gateway.lock_store.unavailable", sender_id=sender_id,
                                           refused_so_far=LOCK_OUTAGE["refused"],
                                           error=f"{type(error).__name__}: {error}"[:200])
                    return response.json({"error": "lock store unavailable"}, status=503)
                # As Rasa's REST channel: the error is logged, the answer is what was said so far.
                structlogger.exception("gateway.message.failure", sender_id=sender_id)
            intent = collector.intent
            return response.json({
                "messages": collector.messages,
                "intent": {"name": intent.get("name"), "confidence": intent.get("confidence")},
                "reset": collector.reset,
                "action_failed": collector.action_failed,
            })

        return webhook
