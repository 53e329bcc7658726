"""The Rasa symbols rasa_extensions replaces, wraps, calls or overrides, as they are in the pinned
Rasa (requirements.txt): name, signature (parameter names, kinds and defaults), sync or async;
for a body copied into a patch, a digest of Rasa's source. `check()` compares them with the
installed Rasa; tests/test_rasa_contract.py runs it (no model needed), so a Rasa upgrade that
changes any of them fails there before a patch silently misbehaves.

Refresh after an intended upgrade: `python -m rasa_extensions.rasa_contract` prints the entries
of the installed Rasa; review every difference against the patch that uses the symbol.
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any

# Used by the configured subclasses (not patches: Rasa builds them only when configured).
SUBCLASS_SYMBOLS: dict[str, tuple[str, ...]] = {
    "gateway_channel.GatewayInput": (
        "rasa.core.channels.rest:RestInput.blueprint",
        "rasa.core.channels.rest:RestInput._extract_sender",
        "rasa.core.channels.rest:RestInput._extract_message",
        "rasa.core.channels.rest:RestInput.get_metadata",
        "rasa.core.channels.channel:CollectingOutputChannel._persist_message",
        "rasa.core.channels.channel:CollectingOutputChannel._message",
        "rasa.core.channels.channel:CollectingOutputChannel.send_text_message",
        "rasa.core.actions.action:ActionExecutionRejection",
    ),
    "tracker_store.BoundedSQLTrackerStore": (
        "rasa.core.tracker_store:SQLTrackerStore.__init__",
        "rasa.core.tracker_store:SQLTrackerStore._retrieve",
        "rasa.core.tracker_store:SQLTrackerStore._additional_events",
        "rasa.core.tracker_store:SQLTrackerStore.save",
    ),
    "lock_store.AtomicRedisLockStore": (
        "rasa.core.lock_store:RedisLockStore.__init__",
        "rasa.core.lock_store:RedisLockStore.issue_ticket",
        "rasa.core.lock_store:RedisLockStore.update_lock",
        "rasa.core.lock_store:RedisLockStore.finish_serving",
        "rasa.core.lock_store:RedisLockStore.cleanup",
        "rasa.core.lock_store:RedisLockStore.is_someone_waiting",
        "rasa.core.lock_store:RedisLockStore.delete_lock",
        "rasa.core.lock_store:LockStore.finish_serving",
    ),
}


def resolve(symbol: str) -> Any:
    module_name, _, qualified = symbol.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualified.split("."):
        obj = getattr(obj, part)  # AttributeError: renamed or gone
    return obj


def describe(symbol: str) -> dict[str, Any]:
    """What the contract records of one symbol in the installed Rasa."""
    try:
        obj = resolve(symbol)
    except (ImportError, AttributeError) as error:
        return {"missing": f"{type(error).__name__}: {error}"}
    if inspect.isclass(obj):
        return {"kind": "class"}
    if not callable(obj):
        return {"kind": type(obj).__name__}
    signature = inspect.signature(obj)
    bare = signature.replace(
        parameters=[p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()],
        return_annotation=inspect.Signature.empty,
    )
    entry: dict[str, Any] = {
        "signature": str(bare),
        "async": inspect.iscoroutinefunction(obj) or inspect.isasyncgenfunction(obj),
    }
    owner_path, _, name = symbol.rpartition(".")
    if ":" in owner_path:  # a class attribute: how it binds (static, class or instance method)
        entry["binding"] = type(inspect.getattr_static(resolve(owner_path), name)).__name__
    return entry


def symbols() -> list[str]:
    from rasa_extensions.patches import PATCHES

    names = [s for patch in PATCHES for s in patch.symbols]
    names += [s for group in SUBCLASS_SYMBOLS.values() for s in group]
    return sorted(set(names))


def check() -> list[str]:
    """Differences between the contract and the installed Rasa (empty: all as pinned)."""
    problems = []
    for symbol in symbols():
        expected = CONTRACT.get(symbol)
        if expected is None:
            problems.append(f"{symbol}: used by rasa_extensions but not in CONTRACT")
            continue
        found = describe(symbol)
        if found != expected:
            problems.append(f"{symbol}: expected {expected}, found {found}")
    for symbol in set(CONTRACT) - set(symbols()):
        problems.append(f"{symbol}: in CONTRACT but used by nothing (remove it)")
    return problems


# As in Rasa 3.6.21 (printed by `python -m rasa_extensions.rasa_contract`).
CONTRACT: dict[str, dict[str, Any]] = {
    'jsonschema:validate':
        {'signature': '(instance, schema, cls=None, *args, **kwargs)', 'async': False},
    'rasa.core.actions.action:ActionExecutionRejection':
        {'kind': 'class'},
    'rasa.core.actions.action:RemoteAction.action_response_format_spec':
        {'signature': '()', 'async': False, 'binding': 'staticmethod'},
    'rasa.core.actions.action:RemoteAction.run':
        {'signature': '(self, output_channel, nlg, tracker, domain)', 'async': True, 'binding': 'function'},
    'rasa.core.channels.channel:CollectingOutputChannel._message':
        {'signature': '(recipient_id, text=None, image=None, buttons=None, attachment=None, custom=None)', 'async': False, 'binding': 'staticmethod'},
    'rasa.core.channels.channel:CollectingOutputChannel._persist_message':
        {'signature': '(self, message)', 'async': True, 'binding': 'function'},
    'rasa.core.channels.channel:CollectingOutputChannel.send_text_message':
        {'signature': '(self, recipient_id, text, **kwargs)', 'async': True, 'binding': 'function'},
    'rasa.core.channels.rest:RestInput._extract_message':
        {'signature': '(self, req)', 'async': False, 'binding': 'function'},
    'rasa.core.channels.rest:RestInput._extract_sender':
        {'signature': '(self, req)', 'async': True, 'binding': 'function'},
    'rasa.core.channels.rest:RestInput.blueprint':
        {'signature': '(self, on_new_message)', 'async': False, 'binding': 'function'},
    'rasa.core.channels.rest:RestInput.get_metadata':
        {'signature': '(self, request)', 'async': False, 'binding': 'function'},
    'rasa.core.lock_store:LockStore.finish_serving':
        {'signature': '(self, conversation_id, ticket_number)', 'async': False, 'binding': 'function'},
    'rasa.core.lock_store:RedisLockStore.__init__':
        {'signature': "(self, host='localhost', port=6379, db=1, username=None, password=None, use_ssl=False, ssl_certfile=None, ssl_keyfile=None, ssl_ca_certs=None, key_prefix=None, socket_timeout=10)", 'async': False, 'binding': 'function'},
    'rasa.core.lock_store:RedisLockStore.cleanup':
        {'signature': '(self, conversation_id, ticket_number)', 'async': False, 'binding': 'function'},
    'rasa.core.lock_store:RedisLockStore.delete_lock':
        {'signature': '(self, conversation_id)', 'async': False, 'binding': 'function'},
    'rasa.core.lock_store:RedisLockStore.finish_serving':
        {'signature': '(self, conversation_id, ticket_number)', 'async': False, 'binding': 'function'},
    'rasa.core.lock_store:RedisLockStore.is_someone_waiting':
        {'signature': '(self, conversation_id)', 'async': False, 'binding': 'function'},
    'rasa.core.lock_store:RedisLockStore.issue_ticket':
        {'signature': '(self, conversation_id, lock_lifetime=60)', 'async': False, 'binding': 'function'},
    'rasa.core.lock_store:RedisLockStore.update_lock':
        {'signature': '(self, conversation_id)', 'async': False, 'binding': 'function'},
    'rasa.core.processor:MessageProcessor.__init__':
        {'signature': '(self, model_path, tracker_store, lock_store, generator, action_endpoint=None, max_number_of_predictions=10, on_circuit_break=None, http_interpreter=None)', 'async': False, 'binding': 'function'},
    'rasa.core.processor:MessageProcessor._handle_message_with_tracker':
        {'signature': '(self, message, tracker)', 'async': True, 'binding': 'function'},
    'rasa.core.processor:MessageProcessor._parse_message_with_graph':
        {'signature': '(self, message, tracker, only_output_properties=True)', 'async': False, 'binding': 'function'},
    'rasa.core.tracker_store:SQLTrackerStore.__init__':
        {'signature': "(self, domain=None, dialect='sqlite', host=None, port=None, db='rasa.db', username=None, password=None, event_broker=None, login_db=None, query=None, **kwargs)", 'async': False, 'binding': 'function'},
    'rasa.core.tracker_store:SQLTrackerStore._additional_events':
        {'signature': '(self, session, tracker)', 'async': False, 'binding': 'function'},
    'rasa.core.tracker_store:SQLTrackerStore._retrieve':
        {'signature': '(self, sender_id, fetch_events_from_all_sessions)', 'async': True, 'binding': 'function'},
    'rasa.core.tracker_store:SQLTrackerStore.save':
        {'signature': '(self, tracker)', 'async': True, 'binding': 'function'},
    'rasa.core.tracker_store:create_engine_kwargs':
        {'signature': '(url)', 'async': False},
    'rasa.shared.core.training_data.story_reader.yaml_story_reader:YAMLStoryReader.unpack_regex_message':
        {'signature': '(message, domain=None, entity_extractor_name=None)', 'async': False, 'binding': 'staticmethod'},
    'rasa.shared.utils.schemas.events:EVENT_SCHEMA':
        {'kind': 'dict'},
}


if __name__ == "__main__":
    print("CONTRACT: dict[str, dict[str, Any]] = {")
    for symbol in symbols():
        print(f"    {symbol!r}:\n        {describe(symbol)!r},")
    print("}")
