"""Run the assistant: `python -m stack.run` (README command 1 calls this after set-up).

Trains the model if its data changed, starts the action server and the Rasa server, waits for
Rasa's /status, then runs the gateway: Telegram with TELEGRAM_BOT_TOKEN, else a local chat in
this terminal. `--headless` starts only the two servers. Ctrl-C stops everything.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from stack import processes
from stack.processes import StackError
from stack.settings import APP_PYTHON, ROOT, StackSettings
from stack.train import train


def _stop_on_sigterm(*_args) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--headless", action="store_true", help="start only the Rasa and action servers")
    args = parser.parse_args()
    settings = StackSettings()
    servers: list[processes.Server] = []

    def stop_all(*_args) -> None:
        for server in reversed(servers):
            server.stop()

    # Ctrl-C and a service manager's SIGTERM both stop all three processes, even when the
    # launcher inherited an ignored SIGINT (started in the background by a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        processes.check_ports(settings)
        train(settings.model_path)
        processes.prepare_store(settings)
        print("==> starting the action server and the Rasa server (loading the model takes ~30 s)", flush=True)
        actions = processes.start_action_server(settings)
        servers.append(actions)
        rasa = processes.start_rasa_server(settings)
        servers.append(rasa)
        processes.wait_until_up(actions, f"http://127.0.0.1:{settings.action_port}/health", 60)
        waited = processes.wait_until_up(rasa, settings.rasa_status_url, 300)
        print(f"==> Rasa is up after {waited:.0f} s: REST webhook {settings.rasa_url}/webhooks/rest/webhook", flush=True)
        print(f"    logs: {settings.run_dir / 'logs'}", flush=True)
        if args.headless:
            print("==> headless: Rasa server and action server running; Ctrl-C stops them", flush=True)
            while all(server.alive() for server in servers):
                time.sleep(1)
            raise StackError("a server stopped:\n" + "\n".join(s.tail() for s in servers if not s.alive()))
        env = processes.app_env(settings)
        gateway = subprocess.Popen([str(APP_PYTHON), "-m", "bot"], cwd=ROOT, env=env)
        try:
            gateway.wait()
        except KeyboardInterrupt:
            gateway.send_signal(signal.SIGINT)
            try:
                gateway.wait(10)
            except subprocess.TimeoutExpired:
                gateway.kill()
    except KeyboardInterrupt:
        pass
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        stop_all()
        sys.exit(1)
    except subprocess.CalledProcessError as error:
        print(f"error: {' '.join(map(str, error.cmd))} failed (exit {error.returncode})", file=sys.stderr)
        stop_all()
        sys.exit(1)
    finally:
        print("\n==> stopping", flush=True)
        stop_all()


if __name__ == "__main__":
    main()
