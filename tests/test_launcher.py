"""The launcher's command lines, checked with the programs' own argument parsers."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from stack import processes
from stack.settings import RASA_PYTHON, ROOT, StackSettings, new_token

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
