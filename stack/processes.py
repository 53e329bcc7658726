"""Start, watch and stop the stack's server processes."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from stack import rasa_config
from stack.settings import APP_PYTHON, RASA_PYTHON, ROOT, StackSettings
from stack.train import rasa_env


class StackError(RuntimeError):
    pass


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_ports(settings: StackSettings, gateway: bool = True) -> None:
    """The ports the stack listens on are free (`gateway`: the gateway's health port too)."""
    ports = [("Rasa server", "127.0.0.1", settings.rasa_port, "RASA_PORT"),
             ("action server", "127.0.0.1", settings.action_port, "ACTION_PORT")]
    if gateway and settings.health_port:
        ports.append(("gateway's /health", settings.health_listen, settings.health_port, "HEALTH_PORT"))
    for name, host, port, variable in ports:
        if not port_is_free(host, port):
            raise StackError(
                f"port {port} for the {name} is busy: is the assistant already running? "
                f"Stop it, or set {variable} to another port."
            )


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    log_path: Path | None  # None: it writes to the terminal (the gateway)
    # Servers run in their own process group (Sanic forks workers) and are stopped with
    # SIGTERM to the group; the gateway shares the terminal's and is sent SIGINT (Ctrl-C).
    own_group: bool = True

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.own_group:
            # Also after the leader exited: a worker it forked may still hold the port.
            try:
                os.killpg(self.process.pid, signal.SIGTERM if self.alive() else signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        elif self.alive():
            self.process.send_signal(signal.SIGINT)
        if self.process.poll() is not None:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            if self.own_group:
                os.killpg(self.process.pid, signal.SIGKILL)
            else:
                self.process.kill()
            self.process.wait()

    def tail(self, lines: int = 20) -> str:
        if self.log_path is None:
            return "(its output is above)"
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def app_env(settings: StackSettings) -> dict[str, str]:
    env = dict(os.environ)
    env["DATA_DIR"] = str(settings.data_dir)
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    env["RASA_URL"] = settings.rasa_url
    env["RASA_TOKEN"] = settings.rasa_token
    env["SANIC_HOST"] = "127.0.0.1"  # the action server listens on loopback only
    return env


def _start(name: str, argv: list[str], env: dict[str, str], settings: StackSettings) -> Server:
    log_dir = settings.run_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = open(log_path, "ab")
    process = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C in the terminal reaches only the chat; we stop servers
    )
    return Server(name, process, log_path)


def gateway_env(settings: StackSettings) -> dict[str, str]:
    """The gateway serves /health and /metrics by default (HEALTH_PORT=0: off), and its health
    check finds this stack's action server."""
    env = app_env(settings)
    env["HEALTH_PORT"] = str(settings.health_port)
    env["HEALTH_LISTEN"] = settings.health_listen
    env.setdefault("ACTION_URL", f"http://127.0.0.1:{settings.action_port}")
    return env


def start_gateway(settings: StackSettings) -> Server:
    """The gateway (Telegram, or the local chat) in this terminal."""
    process = subprocess.Popen([str(APP_PYTHON), "-m", "bot"], cwd=ROOT, env=gateway_env(settings))
    return Server("gateway", process, None, own_group=False)


# The WeChat channel runs when its account is configured (bot/wechat/settings.py, README).
WECHAT_REQUIRED = ("WECHAT_TOKEN", "WECHAT_APP_ID", "WECHAT_APP_SECRET")


def wechat_configured(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return all(env.get(name, "").strip() for name in WECHAT_REQUIRED)


def start_wechat(settings: StackSettings) -> Server:
    """The WeChat Official Account channel (python -m bot.wechat), logging to its own file."""
    return _start("wechat", [str(APP_PYTHON), "-m", "bot.wechat"], app_env(settings), settings)


def start_webchat(settings: StackSettings) -> Server:
    """The website chat server (bot/webchat), when WEBCHAT_PORT is set."""
    return _start("webchat", [str(APP_PYTHON), "-m", "bot.webchat"], app_env(settings), settings)


def webchat_port() -> int:
    value = os.environ.get("WEBCHAT_PORT", "").strip()
    return int(value) if value.isdigit() else 0


def start_action_server(settings: StackSettings) -> Server:
    return _start(
        "action-server",
        # rasa-sdk in one process (stack/action_server.py)
        [str(APP_PYTHON), "-m", "stack.action_server", "--actions", "actions", "--port", str(settings.action_port)],
        app_env(settings),
        settings,
    )


def rasa_command(settings: StackSettings, endpoints: Path, credentials: Path, port: int | None = None) -> list[str]:
    """The Rasa server's command line. Values that may come from the environment are passed as
    `--option=value`, so none can be read as an option, whatever it starts with."""
    if not settings.rasa_token.strip("-"):
        # argparse drops a bare "--" even in `--auth-token=--`: Rasa would run without a token.
        raise StackError("RASA_TOKEN must not be empty or only dashes")
    return [
        # Rasa's command line with the project's patches applied first (rasa_extensions/__main__.py)
        str(RASA_PYTHON), "-m", "rasa_extensions", "run",
        f"--model={settings.model_path}",
        f"--endpoints={endpoints}",
        f"--credentials={credentials}",
        "--interface=127.0.0.1",  # REST channel and HTTP API on loopback only
        f"--port={port or settings.rasa_port}",
        "--enable-api", f"--auth-token={settings.rasa_token}",
    ]


def start_rasa_server(settings: StackSettings, port: int | None = None, name: str = "rasa") -> Server:
    endpoints, credentials = rasa_config.write(settings)
    env = rasa_env()
    env["SANIC_WORKERS"] = str(settings.rasa_workers)
    env.setdefault("TF_INTRA_OP_PARALLELISM_THREADS", "1")
    env.setdefault("TF_INTER_OP_PARALLELISM_THREADS", "1")
    return _start(name, rasa_command(settings, endpoints, credentials, port), env, settings)


def wait_until_up(server: Server, url: str, timeout: float) -> float:
    """Poll `url` until it answers 200; returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not server.alive():
            raise StackError(f"the {server.name} exited during start-up:\n{server.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.3)
    raise StackError(f"the {server.name} did not answer {url} within {timeout:.0f} s:\n{server.tail()}")


def prepare_store(settings: StackSettings) -> None:
    """Migrate the store and load the sample schedule into an empty one."""
    env = app_env(settings)
    subprocess.run([str(APP_PYTHON), "-m", "store.migrate"], cwd=ROOT, env=env, check=True)
    sample = subprocess.run(
        [str(APP_PYTHON), "-m", "store.schedule", "load-sample"], cwd=ROOT, env=env
    )
    if sample.returncode != 0:
        raise StackError("loading the sample schedule failed")
