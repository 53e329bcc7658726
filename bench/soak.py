"""Soak run: mixed conversations at a steady rate through the whole stack, for a long time.

    .venvs/app/bin/python -m bench.soak                 # 30 minutes, ~10 turns/s
    .venvs/app/bin/python -m bench.soak --minutes 3     # a short check

Starts its own action server and Rasa server (stack.processes, SQLite store and tracker store in
a temp folder), the fake Telegram Bot API (tests/fakes/bot_api.py) on loopback in this process,
and the real gateway as its own process (`python -m bot`, polling the fake Bot API, /metrics on
a loopback port). Virtual users send the next message of a scripted conversation (FAQ in English
and Chinese, the eligibility check, a booking started and cancelled, commands, nonsense) at
about `--rate` messages per second in all; a user waits for the answer to its last message
before it sends the next one.

Prints: errors (target 0: no answer within --timeout, or "temporarily unavailable", "can't save",
"no answer", an apology for a reset dialogue; ERROR lines in the gateway's log; processes that
died), latency p50/p95 (message pushed to the first answer sent) per window (--window, 5 min),
and RSS and open file descriptors of each process at the start (after a warm-up) and the end
(target: growth <= 5 %). Everything is on 127.0.0.1; every loop has a deadline.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from stack import processes
from stack.settings import APP_PYTHON, MODEL_PATH, ROOT, StackSettings
from tests.fakes.bot_api import TOKEN, FakeBotApi, free_port

ROOT_DIR = ROOT
SCRIPTS: dict[str, list[tuple[str, str]]] = {
    # name: [(text, language_code)]
    "faq_en": [("what is SCORE", "en"), ("who funds SCORE", "en"), ("how long is the training", "en"),
               ("who should attend the training", "en"), ("thanks", "en")],
    "faq_zh": [("SCORE是什么", "zh-hans"), ("培训多长时间", "zh-hans"), ("谁应该参加培训", "zh-hans")],
    "eligibility": [("is my factory eligible", "en"), ("about 200", "en"), ("auto parts", "en"),
                    ("Chongqing", "en"), ("no", "en"), ("yes", "en")],
    "booking": [("I want to book a classroom training", "en"), ("/cancel", "en"), ("/bookings", "en")],
    "commands": [("/start", "en"), ("/help", "en"), ("/language", "en")],
    "nonsense": [("qwzx vbnm plokij", "en"), ("what is SCORE", "en")],
    "handoff": [("/human", "en"), ("/start", "en")],
}
WEIGHTS = {"faq_en": 5, "faq_zh": 2, "eligibility": 2, "booking": 2, "commands": 1, "nonsense": 1, "handoff": 0}
BAD_ANSWER_KEYS = ("unavailable", "store_unavailable", "no_answer", "dialogue_reset")


@dataclass
class User:
    user_id: int
    language: str = "en"
    script: list[tuple[str, str]] = field(default_factory=list)
    waiting_since: float | None = None  # a message is out; its answer is awaited
    first_at: float | None = None  # when its first answer came
    answers: list[str] = field(default_factory=list)


@dataclass
class Turn:
    at: float  # when sent (monotonic)
    latency: float | None  # None: no answer in time
    bad: str | None = None


def proc_stats(pid: int) -> tuple[float, int, int]:
    """RSS in MB, open file descriptors and how many of them are sockets, of a process and its
    descendants."""
    pids, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        try:
            children = [int(c) for c in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]
        except OSError:
            children = []
        pids += children
        frontier += children
    rss, fds, sockets = 0, 0, 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
            for fd in os.listdir(f"/proc/{p}/fd"):
                fds += 1
                try:
                    sockets += os.readlink(f"/proc/{p}/fd/{fd}").startswith("socket:")
                except OSError:
                    pass
        except OSError:
            pass
    return rss / 1024, fds, sockets


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]



def fd_targets(pid: int) -> dict[str, int]:
    """What a process's descriptors point at, counted (sockets and pipes by kind): the
    descriptors a run added say what grew (a pooled database connection, a leaked socket)."""
    counts: dict[str, int] = {}
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return counts
    for fd in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        kind = target.split(":", 1)[0] + ":" if target.startswith(("socket:", "pipe:", "anon_inode:")) else target
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def diff_counts(before: dict[str, int], after: dict[str, int]) -> str:
    """`+1 /tmp/x/assistant.db-wal, -2 socket:` (what changed, by target)."""
    parts = []
    for target in sorted(set(before) | set(after)):
        delta = after.get(target, 0) - before.get(target, 0)
        if delta:
            parts.append(f"{delta:+d} {target}")
    return ", ".join(parts)

class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        import i18n

        self.args = args
        self.bad_texts = {i18n.t(key, lang): key for key in BAD_ANSWER_KEYS for lang in ("en", "zh")}
        self.turns: list[Turn] = []
        self.samples: list[dict[str, tuple[float, int, int]]] = []  # per window, under load
        self.fd_changes: dict[str, str] = {}
        self.rng = random.Random(args.seed)
        self.users = [User(7_000_000_000 + i) for i in range(args.users)]
        self.by_chat = {u.user_id: u for u in self.users}

    def next_script(self) -> list[tuple[str, str]]:
        names = [n for n, w in WEIGHTS.items() for _ in range(w)]
        return list(SCRIPTS[self.rng.choice(names)])

    async def run(self) -> int:
        workdir = Path(tempfile.mkdtemp(prefix="score-soak-"))
        settings = StackSettings(
            data_dir=workdir, rasa_port=free_port(), action_port=free_port(), rasa_token="soak-token",
            database_url=f"sqlite:///{workdir / 'assistant.db'}", tracker_store_url="", lock_store_url="",
            model_path=Path(os.environ.get("RASA_MODEL") or MODEL_PATH),
        )
        print(f"soak: {self.args.minutes:g} min at ~{self.args.rate:g} turns/s, {self.args.users} users; "
              f"data in {workdir}", flush=True)
        processes.prepare_store(settings)
        servers = [processes.start_action_server(settings), processes.start_rasa_server(settings)]
        api = FakeBotApi()
        await api.start()
        self.api = api
        gateway = None
        metrics_port = free_port()
        gateway_log = workdir / "gateway.log"
        try:
            processes.wait_until_up(servers[0], f"http://127.0.0.1:{settings.action_port}/health", 60)
            processes.wait_until_up(servers[1], settings.rasa_status_url, 400)
            env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_BASE_URL": api.base_url,
                   "TELEGRAM_BASE_FILE_URL": api.base_url, "RASA_URL": settings.rasa_url,
                   "RASA_TOKEN": settings.rasa_token, "DATABASE_URL": settings.database_url,
                   "DATA_DIR": str(workdir), "HEALTH_PORT": str(metrics_port),
                   "ACTION_URL": f"http://127.0.0.1:{settings.action_port}"}
            with open(gateway_log, "ab") as log:
                gateway = subprocess.Popen([str(APP_PYTHON), "-m", "bot"], cwd=ROOT_DIR, env=env, stdout=log,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            await self.wait_healthy(metrics_port, gateway)
            named = {"gateway": gateway.pid, "rasa": servers[1].process.pid, "actions": servers[0].process.pid}

            # Warm-up: pools and keep-alive connections reach their working size first.
            warmup = min(60.0, max(30.0, self.args.minutes * 60 / 5))
            print(f"warm-up {warmup:.0f} s ...", flush=True)
            await self.drive(warmup, record=False)
            await asyncio.sleep(self.args.settle)  # at rest: idle keep-alive sockets closed, as at the end
            start_stats = {name: proc_stats(pid) for name, pid in named.items()}
            start_fds = {name: fd_targets(pid) for name, pid in named.items()}
            started = time.monotonic()
            sampler = asyncio.get_running_loop().create_task(self.sample(named))
            try:
                await self.drive(self.args.minutes * 60, record=True)
            finally:
                sampler.cancel()
            elapsed = time.monotonic() - started
            await asyncio.sleep(self.args.settle)
            end_stats = {name: proc_stats(pid) for name, pid in named.items()}
            self.fd_changes = {name: diff_counts(start_fds[name], fd_targets(pid)) for name, pid in named.items()}
            metrics = await self.scrape(metrics_port)
            died = [name for name, server in (("rasa", servers[1]), ("actions", servers[0])) if not server.alive()]
            if gateway.poll() is not None:
                died.append("gateway")
        finally:
            if gateway is not None and gateway.poll() is None:
                gateway.terminate()  # the fake Bot API in this loop must keep answering meanwhile
                try:
                    await asyncio.to_thread(gateway.wait, 15)
                except subprocess.TimeoutExpired:
                    gateway.kill()
            await api.stop()
            for server in reversed(servers):
                server.stop()
        log_errors = [line for line in gateway_log.read_text(errors="replace").splitlines() if " ERROR " in line]
        return self.report(elapsed, start_stats, end_stats, log_errors, died, metrics)

    async def sample(self, named: dict[str, int]) -> None:
        """RSS and descriptors of each process at the end of every window, under load: a
        plateau is a pool or cache reaching its size, a steady climb is a leak."""
        while True:
            await asyncio.sleep(self.args.window * 60)
            self.samples.append({name: proc_stats(pid) for name, pid in named.items()})

    async def wait_healthy(self, port: int, gateway: subprocess.Popen) -> None:
        deadline = time.monotonic() + 120
        async with httpx.AsyncClient(timeout=5) as client:
            while time.monotonic() < deadline:
                if gateway.poll() is not None:
                    raise SystemExit("error: the gateway exited during start-up")
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.5)
        raise SystemExit("error: the gateway did not report healthy within 120 s")

    async def scrape(self, port: int) -> dict[str, float]:
        wanted = ("score_turns_total", "score_rasa_unavailable_total", "score_store_errors_total",
                  "score_fallbacks_total")
        out: dict[str, float] = {}
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        except httpx.HTTPError:
            return out
        for line in text.splitlines():
            for name in wanted:
                if line.startswith(name):
                    out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
        return out

    async def drive(self, seconds: float, record: bool) -> None:
        """Send about `rate` messages a second until `seconds` have passed; then wait (bounded)
        for the answers still out."""
        interval = 1.0 / self.args.rate
        end = time.monotonic() + seconds
        next_send = time.monotonic()
        while time.monotonic() < end:
            now = time.monotonic()
            self.collect(record)
            if now >= next_send:
                idle = [u for u in self.users if u.waiting_since is None]
                if idle:
                    self.send(self.rng.choice(idle))
                next_send += interval
                if next_send < now - 1.0:  # fell behind (all users busy): do not burst later
                    next_send = now
            await asyncio.sleep(min(0.01, max(next_send - time.monotonic(), 0)))
        drain = time.monotonic() + self.args.timeout + 2
        while any(u.waiting_since is not None for u in self.users) and time.monotonic() < drain:
            self.collect(record)
            await asyncio.sleep(0.05)
        self.collect(record, final=True)

    def send(self, user: User) -> None:
        if not user.script:
            user.script = self.next_script()
        text, language = user.script.pop(0)
        user.answers = []
        user.first_at = None
        self.api.push_text(user.user_id, text, language_code=language)
        user.waiting_since = time.monotonic()

    def read_calls(self) -> None:
        """Hand the fake Bot API's new sendMessage calls to their users, then drop them (a
        30-minute run must not rescan or keep tens of thousands of calls)."""
        calls, self.api.calls[:] = list(self.api.calls), []
        now = time.monotonic()
        for call in calls:
            if call.method != "sendMessage":
                continue
            user = self.by_chat.get(int(call.params.get("chat_id", 0)))
            if user is not None and user.waiting_since is not None:
                user.answers.append(call.params.get("text", ""))
                if user.first_at is None:
                    user.first_at = now
        if len(self.api.updates) > 2000:  # long fetched: every user waits for its answer first
            del self.api.updates[:-500]

    def collect(self, record: bool, final: bool = False) -> None:
        self.read_calls()
        now = time.monotonic()
        for user in self.users:
            if user.waiting_since is None:
                continue
            if user.first_at is not None and (now - user.first_at >= self.args.grace or final):
                # the first answer came, and the grace time for the turn's further messages is over
                bad = next((self.bad_texts[t] for t in user.answers if t in self.bad_texts), None)
                if record:
                    self.turns.append(Turn(user.waiting_since, user.first_at - user.waiting_since, bad))
                user.waiting_since = None
            elif user.first_at is None and (now - user.waiting_since > self.args.timeout or final):
                if record:
                    self.turns.append(Turn(user.waiting_since, None, "no answer in time"))
                user.waiting_since = None
                user.script = []  # a lost turn: start a new conversation

    def report(self, elapsed: float, start: dict, end: dict, log_errors: list[str], died: list[str],
               metrics: dict[str, float]) -> int:
        turns = self.turns
        answered = [t for t in turns if t.latency is not None]
        errors = [t for t in turns if t.bad is not None]
        window = self.args.window * 60
        first = turns[0].at if turns else 0.0
        print()
        print(f"turns: {len(turns)} in {elapsed:.0f} s = {len(turns) / max(elapsed, 1):.1f}/s; "
              f"answered {len(answered)}")
        kinds: dict[str, int] = {}
        for t in errors:
            bad = t.bad or ""
            kinds[bad] = kinds.get(bad, 0) + 1
        total_errors = len(errors) + len(log_errors) + len(died)
        print(f"errors: {total_errors} (target 0): bad or missing answers {kinds or 0}, "
              f"gateway log ERROR lines {len(log_errors)}, processes died {died or 0}")
        for line in log_errors[:5]:
            print(f"  {line[:200]}")
        print()
        print("| window | turns | p50 ms | p95 ms |")
        print("| --- | --- | --- | --- |")
        index = 0
        while True:
            lo, hi = first + index * window, first + (index + 1) * window
            chunk = [t.latency * 1000 for t in answered if t.latency is not None and lo <= t.at < hi]
            if not chunk and lo > (turns[-1].at if turns else 0):
                break
            print(f"| {index * self.args.window:g}-{(index + 1) * self.args.window:g} min | {len(chunk)} | "
                  f"{percentile(chunk, 0.5):.0f} | {percentile(chunk, 0.95):.0f} |")
            index += 1
        everything = [t.latency * 1000 for t in answered if t.latency is not None]
        print(f"| all | {len(everything)} | {percentile(everything, 0.5):.0f} | {percentile(everything, 0.95):.0f} |")
        print()
        print("| process | RSS start MB | RSS end MB | growth | fds start (sockets) | fds end (sockets) | growth |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        worst = 0.0
        for name in start:
            (rss0, fd0, so0), (rss1, fd1, so1) = start[name], end[name]
            g_rss = (rss1 - rss0) / rss0 * 100 if rss0 else 0.0
            g_fd = (fd1 - fd0) / fd0 * 100 if fd0 else 0.0
            worst = max(worst, g_rss, g_fd)
            print(
                f"| {name} | {rss0:.0f} | {rss1:.0f} | {g_rss:+.1f} % | {fd0} ({so0}) | {fd1} ({so1}) | {g_fd:+.1f} % |"
            )
        if self.samples:
            print()
            print("Under load, at the end of each window (RSS MB / fds):")
            print("| window end | " + " | ".join(start) + " |")
            print("| --- |" + " --- |" * len(start))
            for index, sample in enumerate(self.samples, 1):
                cells = [f"{sample[n][0]:.0f} / {sample[n][1]}" if n in sample else "-" for n in start]
                print(f"| {index * self.args.window:g} min | " + " | ".join(cells) + " |")
        changed = {name: change for name, change in self.fd_changes.items() if change}
        if changed:
            print("descriptors added or gone, start to end: "
                  + "; ".join(f"{name}: {change}" for name, change in changed.items()))
        print()
        if metrics:
            print("gateway metrics: " + ", ".join(f"{k} {v:g}" for k, v in metrics.items()))
        print(f"mean latency {statistics.fmean(everything):.0f} ms" if everything else "no answers")
        ok = total_errors == 0 and worst <= 5.0
        print("result: " + ("OK" if ok else "NOT OK") + f" (errors {total_errors}, worst growth {worst:+.1f} %)")
        return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="measured duration (default 30)")
    parser.add_argument("--rate", type=float, default=10.0, help="user messages per second in all (default 10)")
    parser.add_argument("--users", type=int, default=40, help="virtual users (default 40)")
    parser.add_argument("--window", type=float, default=5.0, help="minutes per latency window (default 5)")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds before a turn counts as unanswered")
    parser.add_argument("--grace", type=float, default=0.3, help="seconds to collect a turn's further messages")
    parser.add_argument(
        "--settle",
        type=float,
        default=35.0,
        help="seconds at rest before measuring RSS and fds (idle keep-alive connections close: aiohttp 15-30 s)",
    )
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.rate <= 0 or args.users <= 0:
        parser.error("--minutes, --rate and --users must be positive")
    return asyncio.run(_until_signalled(Soak(args).run()))


async def _until_signalled(work) -> int:
    """SIGTERM or SIGINT cancels the run, so its servers and gateway (own sessions) are stopped
    by its `finally`; a plain SIGTERM left all three running."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        print("soak: stopped by a signal; servers stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

