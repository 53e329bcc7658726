"""The launcher's supervisor (stack/supervisor.py) with tiny dummy processes: restart with
backoff, give up after repeated failures, stop cleanly."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from stack.processes import Server, StackError
from stack.supervisor import Supervisor

SLEEPER = "import time; print('sleeper up', flush=True); time.sleep(600)"


class Dummy:
    """Starts `python -c CODE` as the launcher starts a server: own process group, log file."""

    def __init__(self, tmp_path: Path, name: str, code: str) -> None:
        self.log_path = tmp_path / f"{name}.log"
        self.name = name
        self.code = code
        self.started: list[Server] = []

    def __call__(self) -> Server:
        log = open(self.log_path, "ab")
        process = subprocess.Popen([sys.executable, "-c", self.code], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        server = Server(self.name, process, self.log_path)
        self.started.append(server)
        return server


def until(condition, supervisor: Supervisor, limit: float = 30.0) -> None:
    """Drive the supervisor until `condition()` holds (a bound only against a hang)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "supervisor did not get there"
        supervisor.check()
        time.sleep(0.01)


def test_a_process_that_exits_is_restarted_with_growing_backoff(tmp_path):
    lines: list[str] = []
    crasher = Dummy(tmp_path, "crasher", "import sys; print('boom: disk on fire', flush=True); sys.exit(3)")
    sleeper = Dummy(tmp_path, "sleeper", SLEEPER)
    supervisor = Supervisor(max_failures=10, period=60, backoff_start=0.01, backoff_max=0.04, log=lines.append)
    supervisor.add("crasher", crasher)
    supervisor.add("sleeper", sleeper)
    try:
        until(lambda: len(crasher.started) >= 5, supervisor)
        exits = [line for line in lines if "exited" in line]
        assert len(exits) >= 4
        # exit code and the tail of its log, then the backoff: doubling up to the cap
        assert all("exit code 3" in line and "boom: disk on fire" in line for line in exits)
        delays = [float(line.split("restarting in ")[1].split(" s")[0]) for line in exits[:4]]
        assert delays == [0.01, 0.02, 0.04, 0.04]
        assert sum("restarted the crasher" in line for line in lines) == len(crasher.started) - 1
        # the healthy process was left alone
        assert len(sleeper.started) == 1 and sleeper.started[0].alive()
    finally:
        supervisor.stop_all()


def test_a_killed_server_is_restarted_and_its_signal_named(tmp_path):
    lines: list[str] = []
    sleeper = Dummy(tmp_path, "rasa", SLEEPER)
    supervisor = Supervisor(backoff_start=0.01, log=lines.append)
    supervisor.add("Rasa server", sleeper)
    try:
        until(lambda: "sleeper up" in sleeper.log_path.read_text(), supervisor)
        sleeper.started[0].process.kill()
        until(lambda: len(sleeper.started) == 2, supervisor)
        assert "the Rasa server exited with exit code -9 (SIGKILL)" in lines[0]
        assert "sleeper up" in lines[0]  # the tail of its log
        until(lambda: sleeper.started[1].alive(), supervisor)
    finally:
        supervisor.stop_all()


def test_repeated_failures_give_up_with_one_clear_error(tmp_path):
    lines: list[str] = []
    crasher = Dummy(tmp_path, "actions", "import sys; print('ImportError: no module x', flush=True); sys.exit(1)")
    sleeper = Dummy(tmp_path, "sleeper", SLEEPER)
    supervisor = Supervisor(max_failures=5, period=120, backoff_start=0.01, backoff_max=0.02,
                            poll_interval=0.01, log=lines.append)
    supervisor.add("sleeper", sleeper)
    supervisor.add("action server", crasher)
    with pytest.raises(StackError) as raised:
        supervisor.run()
    message = str(raised.value)
    assert message.startswith("the action server failed 5 times in 120 s (last: exit code 1); stopping everything")
    assert "ImportError: no module x" in message
    assert len(crasher.started) == 5  # started once, restarted four times, then given up
    supervisor.stop_all()
    assert not sleeper.started[0].alive()


def test_failures_spread_over_more_than_the_period_do_not_give_up(tmp_path):
    now = [0.0]
    crasher = Dummy(tmp_path, "crasher", "raise SystemExit(2)")
    supervisor = Supervisor(max_failures=3, period=10, backoff_start=0.0, log=lambda _line: None,
                            clock=lambda: now[0])
    supervisor.add("crasher", crasher)
    try:
        for _ in range(6):  # one failure every 6 s: never 3 within 10 s
            crasher.started[-1].process.wait()
            count = len(crasher.started)
            until(lambda count=count: len(crasher.started) > count, supervisor)
            now[0] += 6
        assert len(crasher.started) == 7
    finally:
        supervisor.stop_all()


def test_clean_stop_stops_every_process_group_and_restarts_nothing(tmp_path):
    # A server that forks a worker (as Sanic does): stopping must end the worker too.
    forker = Dummy(tmp_path, "forker", "import subprocess, sys, time; "
                   "w = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
                   "print(w.pid, flush=True); time.sleep(600)")
    sleeper = Dummy(tmp_path, "sleeper", SLEEPER)
    supervisor = Supervisor(backoff_start=0.0, log=lambda _line: None)
    supervisor.add("forker", forker)
    supervisor.add("sleeper", sleeper)
    deadline = time.monotonic() + 30
    while not forker.log_path.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    worker = int(forker.log_path.read_text().split()[0])
    supervisor.stop_all()
    assert not forker.started[0].alive() and not sleeper.started[0].alive()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{worker}").exists() and "Z" not in Path(f"/proc/{worker}/stat").read_text().split()[2]:
        assert time.monotonic() < deadline, "the forked worker survived the stop"
        time.sleep(0.05)
    assert supervisor.check() is False
    assert len(forker.started) == 1 and len(sleeper.started) == 1


def test_the_gateway_exiting_cleanly_ends_the_run(tmp_path):
    lines: list[str] = []
    gateway = Dummy(tmp_path, "gateway", "print('bye')")
    sleeper = Dummy(tmp_path, "sleeper", SLEEPER)
    supervisor = Supervisor(poll_interval=0.01, log=lines.append)
    supervisor.add("sleeper", sleeper)
    supervisor.add("gateway", gateway, clean_exit_stops=True)
    supervisor.run()  # returns: /quit in the local chat stops the stack
    assert lines == ["==> the gateway stopped"]
    supervisor.stop_all()
    assert not sleeper.started[0].alive()
