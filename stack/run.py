"""Run the assistant: `python -m stack.run` (README command 1 calls this after set-up).

Trains the model if its data changed, starts the action server and the Rasa server, waits for
Rasa's /status, then runs the gateway: Telegram with TELEGRAM_BOT_TOKEN, else a local chat in
this terminal; and the website chat when WEBCHAT_PORT is set. `--headless` starts only the two
servers. All of them are supervised
(stack/supervisor.py): one that exits is restarted with backoff, and one that fails
SUPERVISE_MAX_FAILURES times in SUPERVISE_PERIOD seconds stops everything with one error.
Ctrl-C stops everything.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

from stack import processes
from stack.processes import StackError
from stack.settings import StackSettings
from stack.supervisor import Supervisor
from stack.train import train


def _stop_on_sigterm(*_args) -> None:
    raise KeyboardInterrupt


def start_servers(settings: StackSettings, supervisor: Supervisor) -> float:
    """Start the action server and the Rasa server under `supervisor` and wait until both
    answer; returns the seconds Rasa took."""
    actions = processes.start_action_server(settings)
    supervisor.add("action server", lambda: processes.start_action_server(settings), server=actions)
    rasa = processes.start_rasa_server(settings)
    supervisor.add("Rasa server", lambda: processes.start_rasa_server(settings), server=rasa)
    processes.wait_until_up(actions, f"http://127.0.0.1:{settings.action_port}/health", 60)
    return processes.wait_until_up(rasa, settings.rasa_status_url, 300)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--headless", action="store_true", help="start only the Rasa and action servers")
    args = parser.parse_args()
    settings = StackSettings()
    supervisor = Supervisor(
        max_failures=int(os.environ.get("SUPERVISE_MAX_FAILURES", "5")),
        period=float(os.environ.get("SUPERVISE_PERIOD", "120")),
    )

    # Ctrl-C and a service manager's SIGTERM both stop all three processes, even when the
    # launcher inherited an ignored SIGINT (started in the background by a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        processes.check_ports(settings, gateway=not args.headless)
        train(settings.model_path)
        processes.prepare_store(settings)
        print("==> starting the action server and the Rasa server (loading the model takes ~30 s)", flush=True)
        waited = start_servers(settings, supervisor)
        print(
            f"==> Rasa is up after {waited:.0f} s: REST webhook {settings.rasa_url}/webhooks/rest/webhook", flush=True
        )
        print(f"    logs: {settings.run_dir / 'logs'}", flush=True)
        if args.headless:
            print("==> headless: Rasa server and action server running; Ctrl-C stops them", flush=True)
        else:
            if processes.webchat_port():  # the website chat: on when WEBCHAT_PORT is set
                supervisor.add("web chat", lambda: processes.start_webchat(settings))
                host = os.environ.get("WEBCHAT_HOST", "").strip() or "127.0.0.1"
                print(f"==> web chat: http://{host}:{processes.webchat_port()}/demo", flush=True)
            # The gateway's /quit (local chat) exits with 0 and stops the stack; a crash restarts it.
            supervisor.add("gateway", lambda: processes.start_gateway(settings), clean_exit_stops=True)
            if settings.health_port:
                print(f"==> gateway health: http://{settings.health_listen}:{settings.health_port}/health"
                      " and /metrics (HEALTH_PORT=0: off)", flush=True)
            if processes.wechat_configured():
                print(f"==> WeChat channel on (log: {settings.run_dir / 'logs' / 'wechat.log'})", flush=True)
                supervisor.add("WeChat channel", lambda: processes.start_wechat(settings))
        supervisor.run()  # restarts what exits; StackError after repeated failures
    except KeyboardInterrupt:
        pass
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        supervisor.stop_all()
        sys.exit(1)
    except subprocess.CalledProcessError as error:
        print(f"error: {' '.join(map(str, error.cmd))} failed (exit {error.returncode})", file=sys.stderr)
        supervisor.stop_all()
        sys.exit(1)
    finally:
        print("\n==> stopping", flush=True)
        supervisor.stop_all()


if __name__ == "__main__":
    main()
