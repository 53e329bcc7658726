"""The Rasa server's speed-ups: each function patches one thing in Rasa 3.6.21 and is applied by
rasa_extensions.patches (only on that Rasa version; SCORE_RASA_SPEEDUPS=0 turns them all off).
Measured gains and the table patch -> Rasa symbol -> test -> switch: docs/performance.md.

Profiling the Rasa server under load (py-spy, see docs/performance.md) showed about half of its
busy CPU in jsonschema: every `POST /conversations/<id>/tracker/events` (the gateway's slot
set) and every action server response is checked with `jsonschema.validate`, which first
re-validates the schema itself against the JSON Schema meta-schema (`check_schema`) and builds a
new validator, on every call. Here the validator is built once per schema; the instance is
validated exactly as before (same errors, same exceptions).
With the jsonschema cost gone, the next was the SQLite tracker store's commits (fsync per
turn and per slot set): SQLite tracker stores run in WAL mode with synchronous=NORMAL (an
application crash loses nothing; a power cut may lose the last turns). PostgreSQL, the
production tracker store, is untouched. Rasa 3.6 (SQLAlchemy 1.4) opens a new SQLite connection for
every tracker load and save (NullPool): one connection per thread is kept instead.
Button presses are payloads (`/choose_session{"session_id":"12"}`): Rasa's RegexMessageHandler
replaces whatever the NLU pipeline predicted for them, yet the whole pipeline (tokenizer,
featurizers, classifiers) ran first, about a tenth of a booking turn. A payload that names a
domain intent now gets the RegexMessageHandler's result straight away; anything else goes
through the pipeline.
Runs inside the Rasa server (Python 3.10, .venvs/rasa); imports no project code.
"""
from __future__ import annotations

import json
import logging
from typing import Any

logger = logging.getLogger(__name__)


def action_response_check(spec):
    """A fast "is this action server response valid against `spec`?", or None.

    Rasa checks every action server response against its schema with jsonschema: ~3.5 ms for
    a booking answer (a oneOf over every event type, for every event), 12-19 % of the Rasa
    server's time on booking turns. The response schema is {"events": an array of EVENT_SCHEMA,
    ...}: here the rest of it and each event are checked by fastjsonschema (compiled), and an
    event already found valid (the same slot reset, the same button list) is not checked again.
    Only "valid" is taken from this: Rasa's jsonschema check runs on anything it rejects, so
    the errors are Rasa's own. A test checks it never accepts what jsonschema rejects.
    """
    import copy

    try:
        import fastjsonschema  # rasa_extensions/requirements.txt; without it: jsonschema, as Rasa
    except ImportError:
        logger.warning("rasa_extensions: fastjsonschema is not installed (rasa_extensions/requirements.txt): "
                       "action server responses are checked by jsonschema only")
        return None
    from rasa.shared.utils.schemas.events import EVENT_SCHEMA

    if spec.get("properties", {}).get("events") != {"type": "array", "items": EVENT_SCHEMA}:
        return None  # not the schema this was written for
    rest = copy.deepcopy(spec)
    rest["properties"]["events"] = {"type": "array"}
    check_rest = fastjsonschema.compile(rest)
    check_event = fastjsonschema.compile(EVENT_SCHEMA)
    valid_events: set[str] = set()

    def is_valid(instance) -> bool:
        try:
            check_rest(instance)
            for event in instance.get("events") or []:
                key = json.dumps(event, sort_keys=True)
                if key not in valid_events:
                    check_event(event)
                    if len(valid_events) < 20_000:
                        valid_events.add(key)
        except (fastjsonschema.JsonSchemaException, AttributeError, TypeError, ValueError):
            return False
        return True

    return is_valid


def cache_jsonschema_validators() -> None:
    import jsonschema
    from jsonschema import exceptions, validators

    original = jsonschema.validate
    by_json: dict[tuple, Any] = {}
    by_id: dict[int, tuple[object, Any]] = {}  # id(schema) -> (schema, validator)

    # Rasa builds the action response schema anew for each action call: build it once, so the
    # lookup below is by identity instead of by serialising the schema.
    from rasa.core.actions.action import RemoteAction

    spec = RemoteAction.action_response_format_spec()
    RemoteAction.action_response_format_spec = staticmethod(lambda: spec)
    response_is_valid = action_response_check(spec)

    def validate(instance, schema, cls=None, *args, **kwargs):
        if args or kwargs:
            return original(instance, schema, cls, *args, **kwargs)
        if schema is spec and cls is None and response_is_valid and response_is_valid(instance):
            return
        entry = by_id.get(id(schema))
        if entry is not None and entry[0] is schema:
            validator = entry[1]
        else:
            try:
                key = (cls, json.dumps(schema, sort_keys=True))
            except (TypeError, ValueError):
                return original(instance, schema, cls)
            validator = by_json.get(key)
            if validator is None:
                klass = cls or validators.validator_for(schema)
                klass.check_schema(schema)
                validator = klass(schema)
                if len(by_json) < 256:
                    by_json[key] = validator
            if len(by_id) < 256:
                by_id[id(schema)] = (schema, validator)  # keeps schema alive: its id stays its own
        error = exceptions.best_match(validator.iter_errors(instance))
        if error is not None:
            raise error

    jsonschema.validate = validate


def sqlite_wal() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        if type(dbapi_connection).__module__.startswith("sqlite3"):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()


def sqlite_connection_pool() -> None:
    import rasa.core.tracker_store as tracker_store
    from sqlalchemy.pool import SingletonThreadPool

    original = tracker_store.create_engine_kwargs

    def create_engine_kwargs(url):
        if str(url).startswith("sqlite"):
            return {"poolclass": SingletonThreadPool}
        return original(url)

    tracker_store.create_engine_kwargs = create_engine_kwargs


def payloads_without_nlu() -> None:
    from rasa.core.processor import MessageProcessor
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
    from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
    from rasa.shared.nlu.training_data.message import Message

    original = MessageProcessor._parse_message_with_graph

    def parse_message_with_graph(self, message, tracker, only_output_properties=True):
        if self.http_interpreter is None and (message.text or "").strip().startswith("/"):
            # Exactly what the graph's last NLU node, RegexMessageHandler, would return.
            unpacked = YAMLStoryReader.unpack_regex_message(
                Message({TEXT: message.text}), self.domain, entity_extractor_name="RegexMessageHandler"
            )
            if unpacked.get(INTENT):
                parse_data = {TEXT: "", INTENT: {"name": None, "confidence": 0.0}, ENTITIES: []}
                parse_data.update(unpacked.as_dict(only_output_properties=only_output_properties))
                return parse_data
        return original(self, message, tracker, only_output_properties)

    MessageProcessor._parse_message_with_graph = parse_message_with_graph
