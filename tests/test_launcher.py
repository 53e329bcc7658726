"""The launcher's command lines, checked with the programs' own argument parsers."""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from stack import processes
from stack.settings import HEALTH_PORT, RASA_PYTHON, ROOT, StackSettings, new_token
from tests.fakes.bot_api import free_port

# Rasa's own parser, fed each command line (after `python -m rasa_extensions`, which hands
# sys.argv to rasa's main unchanged): prints what it read, or the parser's error.
PARSE = r"""
import json, sys
from rasa.__main__ import create_argument_parser
parser = create_argument_parser()
out = []
for argv in json.load(sys.stdin):
    try:
        args = parser.parse_args(argv)
        out.append({"token": args.auth_token, "port": args.port, "api": args.enable_api,
                    "model": args.model, "interface": args.interface})
    except SystemExit as error:
        out.append({"error": error.code})
print(json.dumps(out))
"""


def test_generated_tokens_cannot_look_like_options():
    tokens = {new_token() for _ in range(20_000)}
    assert len(tokens) == 20_000
    assert not any(token.startswith("-") for token in tokens)
    assert all(len(token) >= 32 for token in tokens)


def test_rasa_reads_every_token_as_the_token(tmp_path):
    # Generated tokens, and tokens an operator may set in RASA_TOKEN that look like options.
    tokens = [new_token() for _ in range(300)]
    tokens += ["-abc", "--enable-api", "-t", "-p 1", "--port=1", "a b", "x=y&z#w", "--x"]
    argvs = []
    for token in tokens:
        settings = StackSettings(data_dir=tmp_path, rasa_port=5123, rasa_token=token,
                                 model_path=Path("/models/m.tar.gz"))
        argv = processes.rasa_command(settings, tmp_path / "e.yml", tmp_path / "c.yml")
        assert argv[:4] == [str(RASA_PYTHON), "-m", "rasa_extensions", "run"]
        argvs.append(argv[3:])
    result = subprocess.run([str(RASA_PYTHON), "-c", PARSE], input=json.dumps(argvs), cwd=ROOT,
                            capture_output=True, text=True, timeout=300,
                            env={"SQLALCHEMY_SILENCE_UBER_WARNING": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    for token, args in zip(tokens, parsed, strict=False):
        assert args == {"token": token, "port": 5123, "api": True, "model": "/models/m.tar.gz",
                        "interface": "127.0.0.1"}, (token, args)


def test_a_token_of_dashes_is_refused(tmp_path):
    settings = StackSettings(data_dir=tmp_path, rasa_token="--")
    with pytest.raises(processes.StackError, match="RASA_TOKEN"):
        processes.rasa_command(settings, tmp_path / "e.yml", tmp_path / "c.yml")


def test_status_url_quotes_the_token(tmp_path):
    settings = StackSettings(data_dir=tmp_path, rasa_port=5005, rasa_token="a&b#c")
    assert settings.rasa_status_url == "http://127.0.0.1:5005/status?token=a%26b%23c"


def _gateway_settings(monkeypatch, tmp_path, env: dict[str, str]):
    """BotSettings as the gateway the launcher starts reads them, with `env` as the operator's."""
    from bot.settings import BotSettings

    for name in ("HEALTH_PORT", "HEALTH_LISTEN", "ACTION_URL", "ACTION_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = StackSettings(data_dir=tmp_path, action_port=5999)
    monkeypatch.setattr(os, "environ", processes.gateway_env(settings))
    return settings, BotSettings()


def test_the_launcher_turns_the_gateways_health_on_by_default_on_loopback(monkeypatch, tmp_path):
    stack, bot = _gateway_settings(monkeypatch, tmp_path, {})
    assert bot.health_port == HEALTH_PORT == stack.health_port
    assert bot.health_listen == "127.0.0.1"
    assert bot.action_url == "http://127.0.0.1:5999"  # the health check finds this stack's action server


def test_the_health_port_can_be_moved_or_turned_off(monkeypatch, tmp_path):
    _, bot = _gateway_settings(monkeypatch, tmp_path, {"HEALTH_PORT": "9123", "HEALTH_LISTEN": "0.0.0.0",
                                                       "ACTION_URL": "http://actions:5055"})
    assert (bot.health_port, bot.health_listen, bot.action_url) == (9123, "0.0.0.0", "http://actions:5055")
    _, bot = _gateway_settings(monkeypatch, tmp_path, {"HEALTH_PORT": "0"})
    assert bot.health_port == 0  # bot/app.py serves no /health then


def test_a_busy_health_port_stops_the_launcher_before_it_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = StackSettings(data_dir=tmp_path, rasa_port=free_port(), action_port=free_port(),
                                 health_port=port)
        with pytest.raises(processes.StackError, match="HEALTH_PORT"):
            processes.check_ports(settings)
        processes.check_ports(settings, gateway=False)  # --headless starts no gateway
        processes.check_ports(dataclasses.replace(settings, health_port=0))  # off: not checked
