"""Every change rasa_extensions makes to Rasa's own code, in one list, applied by `apply()`.

They replace or wrap Rasa symbols (private ones among them), so they are written for one Rasa
version: the pin of requirements.txt. On any other version none is applied: one log line, and
Rasa behaves as Rasa. tests/test_rasa_contract.py fails when a symbol listed here changes its
name, signature or sync/async-ness (rasa_extensions/rasa_contract.py holds them as they are in
the pinned Rasa). The table patch -> Rasa symbol -> test -> switch is in docs/performance.md.

Subclasses that endpoints.yml and credentials.yml name (the tracker store, the lock store, the
gateway channel) are not patches: Rasa builds them only when configured. Their uses of Rasa's
internals are in the contract too.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rasa_extensions.pinned import installed_rasa_version, pinned_rasa_version

logger = logging.getLogger(__name__)

SPEEDUPS = "SCORE_RASA_SPEEDUPS"  # "0": the speed-ups are off (the gateway hook stays)


@dataclass(frozen=True)
class Patch:
    name: str
    symbols: tuple[str, ...]  # "module:Qualified.name" of what it replaces or relies on
    install: Callable[[], None]
    speedup: bool  # switched off by SCORE_RASA_SPEEDUPS=0


def _speedup(name: str) -> Callable[[], None]:
    def install() -> None:
        from rasa_extensions import speedups

        getattr(speedups, name)()

    return install


def _gateway_hook() -> None:
    from rasa_extensions.gateway_channel import install_processor_hook

    install_processor_hook()


PATCHES: tuple[Patch, ...] = (
    Patch("cache_jsonschema_validators", (
        "jsonschema:validate",
        "rasa.core.actions.action:RemoteAction.action_response_format_spec",
        "rasa.shared.utils.schemas.events:EVENT_SCHEMA",
    ), _speedup("cache_jsonschema_validators"), speedup=True),
    Patch("sqlite_wal", (), _speedup("sqlite_wal"), speedup=True),  # a SQLAlchemy event only
    Patch("sqlite_connection_pool", (
        "rasa.core.tracker_store:create_engine_kwargs",
    ), _speedup("sqlite_connection_pool"), speedup=True),
    Patch("payloads_without_nlu", (
        "rasa.core.processor:MessageProcessor._parse_message_with_graph",
        "rasa.shared.core.training_data.story_reader.yaml_story_reader:YAMLStoryReader.unpack_regex_message",
    ), _speedup("payloads_without_nlu"), speedup=True),
    Patch("gateway_hook", (
        "rasa.core.processor:MessageProcessor._handle_message_with_tracker",
        "rasa.core.processor:MessageProcessor.__init__",
        "rasa.core.actions.action:RemoteAction.run",
    ), _gateway_hook, speedup=False),
)


def apply(environ: Mapping[str, str] | None = None) -> list[str]:
    """Applies the patches to the installed Rasa if it is the pinned version; returns their names."""
    environ = os.environ if environ is None else environ
    installed, pinned = installed_rasa_version(), pinned_rasa_version()
    if installed != pinned:
        logger.warning(
            "rasa_extensions: Rasa %s is not the pinned %s (rasa_extensions/requirements.txt): "
            "no patch applied, Rasa's own behaviour (no speed-ups, no gateway hook)", installed, pinned)
        return []
    speedups_on = environ.get(SPEEDUPS, "1") != "0"
    applied = []
    for patch in PATCHES:
        if patch.speedup and not speedups_on:
            continue
        patch.install()
        applied.append(patch.name)
    logger.info("rasa_extensions: Rasa %s, patches applied: %s", installed, ", ".join(applied))
    return applied
