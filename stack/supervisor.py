"""Keeps the stack's processes running: a process that exits is started again after a backoff;
one that keeps failing stops everything with one clear error.

The launcher (stack/run.py) registers the action server, the Rasa server and the gateway and
calls `run()`. Each exit is logged with its exit code and the last lines of the process's log.
Restarts wait `backoff_start` seconds, doubling per failure of that process within `period`
(up to `backoff_max`); `max_failures` exits of one process within `period` seconds give up:
`run()` raises StackError and the caller stops everything (`stop_all()`).

A process registered with `clean_exit_stops=True` (the gateway: the local chat's /quit) ends
`run()` normally when it exits with code 0.
"""
from __future__ import annotations

import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from stack.processes import Server, StackError


def describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"exit code {code} ({signal.Signals(-code).name})"
        except ValueError:
            pass
    return f"exit code {code}"


@dataclass
class Watched:
    name: str
    start: Callable[[], Server]
    clean_exit_stops: bool = False
    server: Server | None = None
    failures: deque[float] = field(default_factory=deque)  # when it exited, within `period`
    restart_at: float | None = None  # pending restart (monotonic clock)
    restarts: int = 0


class Supervisor:
    def __init__(
        self,
        max_failures: int = 5,
        period: float = 120.0,
        backoff_start: float = 1.0,
        backoff_max: float = 30.0,
        poll_interval: float = 0.5,
        log: Callable[[str], None] = lambda line: print(line, flush=True),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.period = period
        self.backoff_start = backoff_start
        self.backoff_max = backoff_max
        self.poll_interval = poll_interval
        self.log = log
        self.clock = clock
        self.watched: dict[str, Watched] = {}
        self.stopped = False  # a clean stop was asked for: no more restarts

    # --- registering and starting ------------------------------------------------------------

    def add(self, name: str, start: Callable[[], Server], clean_exit_stops: bool = False,
            server: Server | None = None) -> Watched:
        """Watch a process; start it now unless `server` (already started) is given."""
        watched = Watched(name, start, clean_exit_stops, server or start())
        self.watched[name] = watched
        return watched

    def server(self, name: str) -> Server | None:
        return self.watched[name].server

    # --- watching ------------------------------------------------------------------------------

    def backoff(self, failures: int) -> float:
        return min(self.backoff_start * 2 ** max(failures - 1, 0), self.backoff_max)

    def check(self) -> bool:
        """One look at every process: note exits, restart what is due. False when the stack
        should stop normally (a `clean_exit_stops` process exited with 0). Raises StackError
        when a process failed `max_failures` times within `period`."""
        if self.stopped:
            return False
        now = self.clock()
        for watched in self.watched.values():
            server = watched.server
            if watched.restart_at is None and server is not None and not server.alive():
                code = server.process.returncode
                if watched.clean_exit_stops and code == 0:
                    self.log(f"==> the {watched.name} stopped")
                    return False
                server.stop()  # leftovers of its process group (Sanic workers)
                while watched.failures and now - watched.failures[0] > self.period:
                    watched.failures.popleft()
                watched.failures.append(now)
                tail = server.tail()
                count = len(watched.failures)
                if count >= self.max_failures:
                    raise StackError(
                        f"the {watched.name} failed {count} times in {self.period:.0f} s "
                        f"(last: {describe_exit(code)}); stopping everything. Its last log lines:\n{tail}"
                    )
                delay = self.backoff(count)
                watched.restart_at = now + delay
                self.log(
                    f"==> the {watched.name} exited with {describe_exit(code)}; restarting in {delay:g} s "
                    f"(failure {count} of {self.max_failures} allowed in {self.period:.0f} s). "
                    f"Its last log lines:\n{tail}"
                )
            if watched.restart_at is not None and now >= watched.restart_at:
                watched.restart_at = None
                watched.restarts += 1
                watched.server = watched.start()
                self.log(f"==> restarted the {watched.name} (pid {watched.server.process.pid})")
        return True

    def run(self, sleep: Callable[[float], None] = time.sleep) -> None:
        """Watch until a clean stop; StackError on repeated failures (the caller stops all)."""
        while self.check():
            sleep(self.poll_interval)

    def stop_all(self) -> None:
        """Stop every process, last registered first; nothing is restarted afterwards."""
        self.stopped = True
        for watched in reversed(list(self.watched.values())):
            watched.restart_at = None
            if watched.server is not None:
                watched.server.stop()
