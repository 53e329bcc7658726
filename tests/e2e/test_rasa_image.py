"""The Rasa image path: the deployment's Rasa command starts with only the extension package.

Docker does not run here, so the image is reproduced as far as it matters to the command: the
`rasa` service of deploy/docker-compose.yml (entrypoint + command, working_dir, environment,
volumes) and deploy/rasa.Dockerfile's `PYTHONPATH` are read from the files and run with
`.venvs/rasa`, which is exactly `rasa_extensions/requirements.txt` (rasa[jieba]==3.6.21 and the
extras), from a directory holding only a copy of `rasa_extensions/` (the image's /app), the
model and `deploy/rasa/` mounted as in the compose file. Changed for the test only: the service
hosts in deploy/rasa/endpoints.yml point at the test PostgreSQL and Redis on loopback (the
action server at a closed loopback port), and the server listens on 127.0.0.1 at a free port.
It must answer /status, parse a message, and answer one through the gateway channel with the
patches applied (the language slot set from metadata, the intent in the answer), its tracker
in PostgreSQL."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, text

from stack.settings import RASA_PYTHON, ROOT
from tests.e2e.conftest import current_model
from tests.fakes.bot_api import free_port
from tests.services import POSTGRES_URL, REDIS_URL, postgres_up, redis_up

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

DEPLOY = ROOT / "deploy"
ALL_PATCHES = "cache_jsonschema_validators, sqlite_wal, sqlite_connection_pool, payloads_without_nlu, gateway_hook"


def compose_expand(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} substitution."""
    def one(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        found = env.get(name, "")
        if op == ":-" and not found:
            return arg
        if op == ":?" and not found:
            raise AssertionError(f"compose needs {name}: {arg}")
        return found
    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def dockerfile_env(name: str) -> str:
    text_ = (DEPLOY / "rasa.Dockerfile").read_text(encoding="utf-8")
    return re.search(rf"^ENV {name}=(\S+)$", text_, re.MULTILINE).group(1)


def test_compose_rasa_command_starts_with_only_the_extension_package(tmp_path):
    if not postgres_up():
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL}")
    if not redis_up():
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    model = current_model()
    service = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))["services"]["rasa"]
    assert service["build"]["dockerfile"] == "deploy/rasa.Dockerfile"

    # The image's /app: the package as the Dockerfile copies it, nothing else of the repository.
    app = tmp_path / "app"
    shutil.copytree(ROOT / "rasa_extensions", app / "rasa_extensions",
                    ignore=shutil.ignore_patterns("__pycache__"))

    def host_path(path: str) -> str:
        return str(app) + path.removeprefix("/app") if path == "/app" or path.startswith("/app/") else path

    run_id = uuid.uuid4().hex[:10]
    tracker_db, prefix = f"image_tracker_{run_id}", f"image{run_id}"
    pg, redis = urlsplit(POSTGRES_URL), urlsplit(REDIS_URL)
    token = f"image-{run_id}"
    compose_env = {"RASA_TOKEN": token, "POSTGRES_PASSWORD": pg.password or "", "LOCK_STORE_PREFIX": prefix}

    # The volumes: ../models and ./rasa (relative to deploy/), read-only.
    for volume in service["volumes"]:
        source, target = volume.split(":")[:2]
        source_path = (DEPLOY / source).resolve()
        if source_path == (ROOT / "models").resolve():
            (app / "models").symlink_to(model.parent.resolve(), target_is_directory=True)
            assert target == "/app/models"
        elif source_path == DEPLOY / "rasa":
            config = Path(host_path(target))
            config.mkdir(parents=True)
            shutil.copy(source_path / "credentials.yml", config / "credentials.yml")
            endpoints = yaml.safe_load((source_path / "endpoints.yml").read_text(encoding="utf-8"))
            endpoints["action_endpoint"]["url"] = f"http://127.0.0.1:{free_port()}/webhook"  # nothing there
            endpoints["tracker_store"].update(url=pg.hostname or "127.0.0.1", port=pg.port or 5432,
                                              db=tracker_db, username=pg.username or "postgres")
            endpoints["lock_store"].update(url=redis.hostname or "127.0.0.1", port=redis.port or 6379,
                                           db=int(redis.path.lstrip("/") or 0))
            (config / "endpoints.yml").write_text(yaml.safe_dump(endpoints, sort_keys=False))
        else:
            raise AssertionError(f"a volume this test does not know: {volume}")

    env = {"PATH": f"{RASA_PYTHON.parent}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "PYTHONPATH": host_path(dockerfile_env("PYTHONPATH"))}
    env.update({name: compose_expand(str(value), compose_env) for name, value in service["environment"].items()})
    argv = [compose_expand(str(part), compose_env) for part in service["entrypoint"] + service["command"]]
    argv = [host_path(part) for part in argv]
    assert argv[:3] == ["python", "-m", "rasa_extensions"]
    port = free_port()
    argv[argv.index("--port") + 1] = str(port)
    argv += ["--interface", "127.0.0.1"]  # loopback only, unlike the container
    cwd = host_path(service["working_dir"])

    # What this environment can import: the package from /app, not the repository.
    where = subprocess.run(
        ["python", "-c", "import importlib.util as u, rasa_extensions as r; print(r.__file__, u.find_spec('stack'))"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )
    assert where.returncode == 0, where.stderr[-2000:]
    assert where.stdout.split() == [str(app / "rasa_extensions" / "__init__.py"), "None"]

    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{tracker_db}"'))
    log_path = tmp_path / "rasa.log"
    process = None
    try:
        with open(log_path, "wb") as log:
            process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        while True:
            assert process.poll() is None, log_path.read_text(errors="replace")[-4000:]
            assert time.monotonic() - started < 400, log_path.read_text(errors="replace")[-4000:]
            try:
                status = httpx.get(f"{base}/status", params={"token": token}, timeout=5)
                if status.status_code == 200 and status.json().get("model_file"):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        assert f"rasa_extensions: patches applied: {ALL_PATCHES}" in log_path.read_text(errors="replace")

        parsed = httpx.post(f"{base}/model/parse", params={"token": token}, json={"text": "hello"}, timeout=30)
        parsed.raise_for_status()
        assert parsed.json()["intent"]["name"] == "greet"

        sender = f"image-{run_id}"
        answer = httpx.post(f"{base}/webhooks/gateway/webhook",
                            json={"sender": sender, "message": "hello", "metadata": {"language": "zh"}}, timeout=30)
        answer.raise_for_status()
        body = answer.json()
        assert body["intent"]["name"] == "greet" and body["reset"] is False and body["action_failed"] is None
        assert any("您好" in message.get("text", "") for message in body["messages"]), body
        tracker = httpx.get(f"{base}/conversations/{sender}/tracker", params={"token": token}, timeout=30)
        assert tracker.json()["slots"]["language"] == "zh"
        with create_engine(f"{POSTGRES_URL.rsplit('/', 1)[0]}/{tracker_db}").connect() as conn:
            rows = conn.execute(text("SELECT count(*) FROM events WHERE sender_id = :s"), {"s": sender}).scalar()
        assert rows and rows > 3  # the tracker store wrote the turn to PostgreSQL
    finally:
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{tracker_db}" WITH (FORCE)'))
        admin.dispose()
