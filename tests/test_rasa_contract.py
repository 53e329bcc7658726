"""The Rasa symbols rasa_extensions patches or relies on are as in the pinned Rasa (name,
signature, sync/async, binding, copied body), the patches keep their signatures, and the
version guard applies nothing to another Rasa. Runs in the Rasa environment; no model."""
from __future__ import annotations

import json
import subprocess

import pytest

from stack.settings import RASA_PYTHON
from stack.train import rasa_env

SCRIPT = r"""
import asyncio, inspect, json, logging, sys
import rasa
from rasa_extensions import patches, rasa_contract
from rasa_extensions.rasa_contract import CONTRACT, check, describe, resolve

out = {"installed": rasa.__version__, "problems": check()}

# The check catches each kind of change: every mutation must be reported, then undone.
from rasa.core.processor import MessageProcessor
from rasa.core.actions.action import RemoteAction
from rasa.core.tracker_store import SQLTrackerStore


def caught(owner, name, replacement):
    original = inspect.getattr_static(owner, name)
    if replacement is None:
        delattr(owner, name)
    else:
        setattr(owner, name, replacement)
    try:
        return check()
    finally:
        setattr(owner, name, original)


def run_with_extra(self, output_channel, nlg, tracker, domain, extra=None):
    pass


def retrieve_sync(self, sender_id, fetch_events_from_all_sessions):
    pass


async def run_async_renamed_param(self, output_channel, nlg, tracker, the_domain):
    pass


P, A, T = "rasa.core.processor:MessageProcessor", "rasa.core.actions.action:RemoteAction", \
    "rasa.core.tracker_store:SQLTrackerStore"
out["mutations"] = {
    "renamed": [P + "._parse_message_with_graph", caught(MessageProcessor, "_parse_message_with_graph", None)],
    "new parameter": [A + ".run", caught(RemoteAction, "run", run_with_extra)],
    "renamed parameter": [A + ".run", caught(RemoteAction, "run", run_async_renamed_param)],
    "async to sync": [T + "._retrieve", caught(SQLTrackerStore, "_retrieve", retrieve_sync)],
    "binding": [A + ".action_response_format_spec",
                caught(RemoteAction, "action_response_format_spec", classmethod(lambda cls: {}))],
}
out["after_mutations"] = check()

# The version guard: another Rasa gets no patch and one log line.
records = []
handler = logging.Handler()
handler.emit = lambda record: records.append(record.getMessage())
logging.getLogger("rasa_extensions").addHandler(handler)
original_parse = MessageProcessor._parse_message_with_graph
rasa.__version__ = "3.6.22"
out["other_version_applied"] = patches.apply({})
out["other_version_untouched"] = MessageProcessor._parse_message_with_graph is original_parse and not getattr(
    MessageProcessor, "_gateway_hook", False)
from rasa_extensions.tracker_store import BoundedSQLTrackerStore
out["other_version_bounded"] = BoundedSQLTrackerStore(dialect="sqlite", db=sys.argv[1]).bounded
out["other_version_log"] = records[:]
rasa.__version__ = out["installed"]
out["pinned_bounded"] = BoundedSQLTrackerStore(dialect="sqlite", db=sys.argv[1]).bounded

# Speed-ups off: only the gateway hook. Then all of them; each replacement keeps the signature.
out["speedups_off"] = patches.apply({"SCORE_RASA_SPEEDUPS": "0"})
out["applied"] = patches.apply({})
replaced = {}
for patch in patches.PATCHES:
    for symbol in patch.symbols:
        now, before = describe(symbol), CONTRACT[symbol]
        if now != before:
            replaced[symbol] = [before, now]
out["replacements_differ"] = replaced
out["patched_parse_is_new"] = MessageProcessor._parse_message_with_graph is not original_parse
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def contract(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("contract")
    done = subprocess.run([str(RASA_PYTHON), "-c", SCRIPT, str(work / "tracker.db")], cwd=work,
                          env=rasa_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_every_patched_or_used_rasa_symbol_is_as_pinned(contract):
    assert contract["installed"] == "3.6.21"
    assert contract["problems"] == []


def test_the_contract_check_catches_each_kind_of_change(contract):
    for kind, (symbol, reported) in contract["mutations"].items():
        assert len(reported) == 1 and reported[0].startswith(symbol + ": expected"), (kind, reported)
    assert contract["after_mutations"] == []  # and every mutation was undone


def test_another_rasa_version_gets_rasas_own_behaviour(contract):
    assert contract["other_version_applied"] == []
    assert contract["other_version_untouched"]
    assert contract["other_version_bounded"] is False and contract["pinned_bounded"] is True
    log = [line for line in contract["other_version_log"] if "3.6.22" in line]
    assert any("not the pinned 3.6.21" in line and "no patch applied" in line for line in log), log


def test_patches_apply_on_the_pinned_version_and_keep_signatures(contract):
    assert contract["speedups_off"] == ["gateway_hook"]
    assert contract["applied"] == ["cache_jsonschema_validators", "sqlite_wal", "sqlite_connection_pool",
                                   "payloads_without_nlu", "gateway_hook"]
    assert contract["patched_parse_is_new"]
    assert contract["replacements_differ"] == {}
