"""The project's full stack against a bare Rasa 3.6 project, side by side, same load, alternating.

    .venvs/app/bin/python -m bench.rasa_bench [--samples 30] [--long 100] [--train]
        [--model models/score.tar.gz] [--postgres postgresql://postgres@127.0.0.1:5432/test]

baseline: a minimal project generated in a temp dir (`rasa init`-style config: Rasa's default
pipeline and policies; an intent answered by a response, an intent answered by one custom
action; in-memory tracker store), driven straight over Rasa's REST channel.
project: bot.conversation.ConversationService (the gateway's turn: user upsert, language,
transcript, one message to Rasa's gateway channel, answer and intent to the transcript) -> Rasa
(bounded SQL tracker store) -> action server -> store. Telegram is not involved
(ConversationService is what the Telegram handlers call). The store and the tracker store are
SQLite files in a temp dir, or PostgreSQL databases created and dropped on the server of --postgres.

Figures: p50/p95/p99 of an FAQ turn and of a custom-action turn (project: the booking message
that lists classroom sessions: booking_form's validation, which starts the booking, and the
session list with buttons); throughput at concurrency 1/10/50; turn 1 vs turn 100 of one conversation;
resident memory per process; model training time; start-up time to first answer. Baseline and
project alternate sample by sample. Ports 5601-5604. Prints a table; the headline is the ratios.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from stack import processes
from stack.settings import APP_PYTHON, MODEL_PATH, RASA_PYTHON, ROOT, StackSettings
from stack.train import fingerprint, is_current, rasa_env

BASE_RASA_PORT, BASE_ACTION_PORT, PROJ_RASA_PORT, PROJ_ACTION_PORT = 5601, 5602, 5603, 5604
CACHE = ROOT / "var" / "bench"
TRAIN_RECORD = CACHE / "project_training.json"

FAQ_MESSAGES = ["what is SCORE", "what are the benefits of SCORE", "who funds SCORE", "SCORE是什么"]
# The custom-action turn is the one that lists classroom sessions. In the chat it is a button
# press (the place buttons of the booking form); as one turn of a new conversation it is the
# payload that starts the booking form with module and place: the form's validation
# (validate_booking_form, which starts the booking) and action_ask_booking_target (sessions as
# buttons): two action server calls. Until commit 3a806e0 a third, action_booking_start, came first.
# The baseline's custom-action turn is a payload too, so neither runs NLU on it.
ACTION_MESSAGES = ['/book_classroom{"module":"1","place":"Dongguan"}']
BASE_FAQ = ["hello", "hi there", "good morning", "hey"]
BASE_ACTION = ["/list_sessions"]

# --- typed messages: the NLU's cost on realistic text --------------------------------------------


async def typed_messages(settings: StackSettings) -> str:
    """The FAQ turn above repeats four messages, and the intent classifier asks its second encoder
    only for messages its first regression is unsure of (config.yml): the bench's four may not
    be such (the note says). This parses every held-out message once (each text new to the server's cache) over
    Rasa's HTTP API and says how often the second encoder was asked and what a parse cost."""
    from bench.heldout_sets import load as load_heldout

    texts = list(dict.fromkeys(m.text for m in load_heldout()))
    times: dict[bool, list[float]] = {False: [], True: []}
    async with httpx.AsyncClient(base_url=settings.rasa_url, timeout=60) as api:

        async def asked_second(text: str) -> bool:
            response = await api.post("/model/parse", params={"token": settings.rasa_token}, json={"text": text})
            response.raise_for_status()
            return bool(response.json().get("intent_second_encoder"))

        for text in texts:
            started = time.perf_counter()
            asked = await asked_second(text)
            times[asked].append(time.perf_counter() - started)
        faq_asked = sum([await asked_second(text) for text in FAQ_MESSAGES])
    everything = times[False] + times[True]

    def p(values: list[float], q: int) -> str:
        return f"{pct(values, q) * 1000:.0f}" if values else "-"

    return (f"{len(everything)} held-out texts, each once: parse p50 {p(everything, 50)} ms, "
            f"p95 {p(everything, 95)} ms; second encoder asked for {len(times[True])} "
            f"({len(times[True]) / len(everything):.0%}): parse p50 {p(times[True], 50)} ms with it, "
            f"{p(times[False], 50)} ms without; asked for {faq_asked} of the FAQ turn's {len(FAQ_MESSAGES)}")


# --- the bare baseline project ---------------------------------------------------------------

BASE_CONFIG = """\
# rasa init's config.yml: no pipeline or policies given, so Rasa 3.6 uses its defaults.
recipe: default.v1
assistant_id: bench-baseline
language: en
pipeline:
policies:
"""
BASE_DOMAIN = """\
version: "3.1"
intents:
  - greet
  - list_sessions
responses:
  utter_greet:
  - text: "Hello! SCORE is a training programme for factories."
actions:
  - action_list_sessions
session_config:
  session_expiration_time: 60
  carry_over_slots_to_new_session: true
"""
BASE_NLU = """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hey
    - hello
    - hi
    - hello there
    - good morning
    - good evening
    - hey there
    - hi there
- intent: list_sessions
  examples: |
    - which sessions are open
    - list the training sessions
    - show me the sessions
    - what dates can we book
    - when is the next session
    - show open classroom dates
    - list sessions please
    - any sessions next month
"""
BASE_RULES = """\
version: "3.1"
rules:
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
- rule: sessions
  steps:
  - intent: list_sessions
  - action: action_list_sessions
"""
BASE_STORIES = """\
version: "3.1"
stories:
- story: greet then sessions
  steps:
  - intent: greet
  - action: utter_greet
  - intent: list_sessions
  - action: action_list_sessions
"""
BASE_ACTIONS = '''\
from rasa_sdk import Action


class ActionListSessions(Action):
    def name(self):
        return "action_list_sessions"

    def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(
            text="Open classroom sessions:",
            buttons=[{"title": f"Session {i}", "payload": f"/choose{{\\"n\\":{i}}}"} for i in range(1, 6)],
        )
        return []
'''


def write_baseline(directory: Path) -> None:
    (directory / "data").mkdir(parents=True)
    (directory / "actions").mkdir()
    (directory / "config.yml").write_text(BASE_CONFIG)
    (directory / "domain.yml").write_text(BASE_DOMAIN)
    (directory / "data" / "nlu.yml").write_text(BASE_NLU)
    (directory / "data" / "rules.yml").write_text(BASE_RULES)
    (directory / "data" / "stories.yml").write_text(BASE_STORIES)
    (directory / "actions" / "__init__.py").write_text("")
    (directory / "actions" / "actions.py").write_text(BASE_ACTIONS)
    (directory / "endpoints.yml").write_text(
        f"action_endpoint:\n  url: http://127.0.0.1:{BASE_ACTION_PORT}/webhook\n"
    )
    (directory / "credentials.yml").write_text("rest:\n")


def train_baseline(directory: Path, force: bool) -> tuple[float, bool]:
    """Train the baseline, or reuse the model cached in var/bench/ for the same files.

    Returns the training seconds (of the run that trained it) and whether it was cached."""
    import hashlib

    key = hashlib.sha256("".join((BASE_CONFIG, BASE_DOMAIN, BASE_NLU, BASE_RULES, BASE_STORIES)).encode())
    cached = CACHE / f"baseline-{key.hexdigest()[:12]}.tar.gz"
    record = cached.with_suffix(".json")
    (directory / "models").mkdir(exist_ok=True)
    if not force and cached.exists() and record.exists():
        shutil.copy(cached, directory / "models" / "base.tar.gz")
        return json.loads(record.read_text())["seconds"], True
    started = time.monotonic()
    subprocess.run(
        [str(RASA_PYTHON), "-m", "rasa", "train", "--out", "models", "--fixed-model-name", "base"],
        cwd=directory, env=rasa_env(), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    seconds = time.monotonic() - started
    CACHE.mkdir(parents=True, exist_ok=True)
    shutil.copy(directory / "models" / "base.tar.gz", cached)
    record.write_text(json.dumps({"seconds": seconds, "at": time.time()}))
    return seconds, False


def train_project(out: Path) -> float:
    """A full training: Rasa's cache of trained components is an empty directory."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rasa-cache-") as cache:
        subprocess.run(
            [str(APP_PYTHON), "-m", "stack.train", "--force", "--out", str(out)],
            cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            env={**os.environ, "RASA_CACHE_DIRECTORY": cache},
        )
    return time.monotonic() - started


# --- processes -------------------------------------------------------------------------------


def _popen(argv: list[str], cwd: Path, env: dict, log: Path) -> processes.Server:
    handle = open(log, "ab")
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    return processes.Server(log.stem, process, log)


def start_baseline(directory: Path) -> list[processes.Server]:
    env = rasa_env()
    actions = _popen([str(APP_PYTHON), "-m", "rasa_sdk", "--actions", "actions", "--port", str(BASE_ACTION_PORT)],
                     directory, {**env, "SANIC_HOST": "127.0.0.1"}, directory / "base-actions.log")
    rasa = _popen(
        [str(RASA_PYTHON), "-m", "rasa", "run", "--model", "models/base.tar.gz", "--endpoints", "endpoints.yml",
         "--credentials", "credentials.yml", "--interface", "127.0.0.1", "--port", str(BASE_RASA_PORT),
         "--enable-api"],
        directory, env, directory / "base-rasa.log",
    )
    return [actions, rasa]


def start_project(settings: StackSettings) -> list[processes.Server]:
    return [processes.start_action_server(settings), processes.start_rasa_server(settings)]


def tree_rss(pid: int) -> tuple[float, int]:
    """Resident MB of a process and its descendants (Sanic workers), and how many processes."""
    pids, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            children = []
        pids += [int(c) for c in children]
        frontier += [int(c) for c in children]
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024, len(pids)


def own_rss() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- clients ---------------------------------------------------------------------------------


class BaselineClient:
    name = "baseline"

    def __init__(self) -> None:
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{BASE_RASA_PORT}", timeout=120,
                                      limits=httpx.Limits(max_keepalive_connections=20, max_connections=100))

    async def turn(self, sender: str, text: str) -> list[dict]:
        response = await self.http.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
        response.raise_for_status()
        return response.json()

    async def close(self) -> None:
        await self.http.aclose()


class ProjectClient:
    """The gateway's turn, as the Telegram handlers run it."""

    name = "project"

    def __init__(self, settings: StackSettings, database_url: str) -> None:
        from bot.conversation import ConversationService
        from bot.rasa_client import RasaClient
        from store.db import Database

        self.db = Database(database_url)
        # A long timeout: a slow turn must count as slow, not as a fast "unavailable" reply.
        self.rasa = RasaClient(settings.rasa_url, settings.rasa_token, timeout=120)
        self.service = ConversationService(self.db, self.rasa)
        self.unavailable = 0

    async def turn(self, sender: str, text: str) -> list:
        from bot.conversation import Incoming
        from bot.rasa_client import RasaUnavailable

        result = await self.service.handle(
            Incoming(channel="telegram", external_id=sender, text=text, chat_id=abs(hash(sender)) % 10**9,
                     display_name="Bench", language_code="en", is_payload=text.startswith("/"))
        )
        import i18n
        if any(r.text in (i18n.t("unavailable", result.language), i18n.t("rasa_send_again", result.language))
               for r in result.replies):
            self.unavailable += 1
            raise RasaUnavailable("unavailable")
        return result.replies

    async def close(self) -> None:
        await self.rasa.close()
        self.db.dispose()


def _sender(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().int % 10**12}"


async def wait_first_answer(client, servers: list[processes.Server], started: float, timeout: float = 400) -> float:
    """Seconds from spawning the servers to the first answered message."""
    while time.monotonic() - started < timeout:
        for server in servers:
            if not server.alive():
                raise RuntimeError(f"{server.name} exited:\n{server.tail()}")
        try:
            if await client.turn(_sender("9"), FAQ_MESSAGES[0] if client.name == "project" else "hello"):
                return time.monotonic() - started
        except Exception:
            pass
        await asyncio.sleep(0.5)
    raise RuntimeError(f"no answer within {timeout} s")


# --- measurements ----------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


async def timed(client, sender: str, text: str) -> float:
    started = time.perf_counter()
    await client.turn(sender, text)
    return time.perf_counter() - started


@dataclass
class Figures:
    faq: list[float] = field(default_factory=list)
    action: list[float] = field(default_factory=list)
    throughput: dict[int, float] = field(default_factory=dict)
    errors: dict[int, int] = field(default_factory=dict)
    long: list[float] = field(default_factory=list)
    startup: float = 0.0
    training: float | None = None
    rss: dict[str, float] = field(default_factory=dict)


def messages(client) -> tuple[list[str], list[str]]:
    return (FAQ_MESSAGES, ACTION_MESSAGES) if client.name == "project" else (BASE_FAQ, BASE_ACTION)


async def latency(clients, figures: dict[str, Figures], samples: int) -> None:
    """Each sample: a new conversation's first turn; baseline and project alternate."""
    for i in range(samples):
        order = clients if i % 2 == 0 else list(reversed(clients))
        for client in order:
            faq, action = messages(client)
            figures[client.name].faq.append(await timed(client, _sender("1"), faq[i % len(faq)]))
        for client in order:
            faq, action = messages(client)
            figures[client.name].action.append(await timed(client, _sender("2"), action[i % len(action)]))


async def throughput(client, concurrency: int, turns: int) -> tuple[float, int]:
    faq, action = messages(client)
    queue = list(range(turns))
    errors = 0

    async def worker() -> None:
        nonlocal errors
        while queue:
            n = queue.pop()
            text = faq[n % len(faq)] if n % 2 else action[n % len(action)]
            try:
                await client.turn(_sender("3"), text)
            except Exception:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return turns / (time.perf_counter() - started), errors


async def long_conversation(clients, figures: dict[str, Figures], turns: int) -> None:
    senders = {client.name: _sender("4") for client in clients}
    for i in range(turns):
        for client in clients if i % 2 == 0 else list(reversed(clients)):
            faq, _ = messages(client)
            figures[client.name].long.append(await timed(client, senders[client.name], faq[i % len(faq)]))


# --- the run ---------------------------------------------------------------------------------


def create_pg(url: str, name: str) -> str:
    from sqlalchemy import create_engine, text
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.rsplit("/", 1)[0] + "/" + name


def drop_pg(url: str, name: str) -> None:
    from sqlalchemy import create_engine, text
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def print_table(figures: dict[str, Figures], args, info: dict) -> None:
    b, p = figures["baseline"], figures["project"]
    rows: list[tuple[str, str, str, str, str]] = []

    def row(name: str, bv: float | None, pv: float | None, fmt: str, target: str = "") -> None:
        bs = fmt.format(bv) if bv is not None else "n/a"
        ps = fmt.format(pv) if pv is not None else "n/a"
        rows.append((name, bs, ps, ratio(pv, bv) if bv and pv else "n/a", target))

    for kind, label, target in (("faq", "FAQ turn", ""), ("action", "custom-action turn", "p50 <= 0.60x")):
        for q in (50, 95, 99):
            row(f"{label} p{q} (ms)", pct(getattr(b, kind), q) * 1000, pct(getattr(p, kind), q) * 1000, "{:.0f}",
                target if q == 50 else "")
    for c in sorted(b.throughput):
        row(f"throughput c={c} (turns/s)", b.throughput[c], p.throughput[c], "{:.1f}", ">= 2.00x" if c == 10 else "")
    w = 5
    for name, f in (("baseline", b), ("project", p)):
        info[f"{name}_turn1"] = statistics.median(f.long[:w])
        info[f"{name}_turnN"] = statistics.median(f.long[-w:])
    row(f"turn 1 (median of 1-{w}) (ms)", info["baseline_turn1"] * 1000, info["project_turn1"] * 1000, "{:.0f}")
    row(f"turn {args.long} (median of last {w}) (ms)", info["baseline_turnN"] * 1000,
        info["project_turnN"] * 1000, "{:.0f}")
    rows.append((f"turn {args.long} / turn 1", f"{info['baseline_turnN'] / info['baseline_turn1']:.2f}x",
                 f"{info['project_turnN'] / info['project_turn1']:.2f}x", "", "project <= 1.20x"))
    for proc in ("rasa", "actions", "client"):
        row(f"RSS {proc} (MB)", b.rss.get(proc), p.rss.get(proc), "{:.0f}")
    row("RSS whole stack (MB)", sum(b.rss.values()), sum(p.rss.values()), "{:.0f}", "project <= 1024 MB")
    row("model training (s)", b.training, p.training, "{:.0f}", "project <= 180 s")
    row("start-up to first answer (s)", b.startup, p.startup, "{:.1f}")
    widths = [max(len(r[i]) for r in rows + [("figure", "baseline", "project", "project/base", "target")])
              for i in range(5)]
    header = ("figure", "baseline", "project", "project/base", "target")
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths, strict=True)))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths, strict=False))))
    print()
    for key, value in info.get("notes", {}).items():
        print(f"{key}: {value}")


async def run(args) -> None:
    ACTION_MESSAGES[:] = [args.action_message]
    work = Path(tempfile.mkdtemp(prefix="rasa-bench-"))
    figures = {"baseline": Figures(), "project": Figures()}
    info: dict = {"notes": {}}
    servers: list[processes.Server] = []
    pg_names: list[str] = []
    clients: list = []
    try:
        for port in (BASE_RASA_PORT, BASE_ACTION_PORT, PROJ_RASA_PORT, PROJ_ACTION_PORT):
            if not processes.port_is_free("127.0.0.1", port):
                raise SystemExit(f"port {port} is busy (another benchmark running?)")
        # 1. training
        base_dir = work / "baseline"
        write_baseline(base_dir)
        print("==> the baseline model", file=sys.stderr, flush=True)
        figures["baseline"].training, cached = train_baseline(base_dir, args.train)
        if cached:
            info["notes"]["baseline training"] = "from the run that trained the cached model (var/bench/)"
        model = args.model
        if args.train:
            print("==> training the project model (--train)", file=sys.stderr, flush=True)
            model = work / "score.tar.gz"
            figures["project"].training = train_project(model)
            TRAIN_RECORD.parent.mkdir(parents=True, exist_ok=True)
            TRAIN_RECORD.write_text(json.dumps({"seconds": figures["project"].training,
                                                "fingerprint": fingerprint(), "at": time.time()}))
        elif TRAIN_RECORD.exists():
            record = json.loads(TRAIN_RECORD.read_text())
            figures["project"].training = record["seconds"]
            info["notes"]["project training"] = (
                f"from the last --train run ({TRAIN_RECORD.relative_to(ROOT)}"
                f"{'' if record.get('fingerprint') == fingerprint() else ', older training data'})")
        else:
            info["notes"]["project training"] = "not measured: run with --train"
        if not args.train and model == MODEL_PATH and not is_current(MODEL_PATH):
            info["notes"]["project model"] = "models/score.tar.gz is older than the training data"

        # 2. the project's store and settings
        data_dir = work / "project"
        data_dir.mkdir()
        if args.postgres:
            suffix = uuid.uuid4().hex[:8]
            pg_names = [f"bench_store_{suffix}", f"bench_tracker_{suffix}"]
            database_url = create_pg(args.postgres, pg_names[0]).replace("postgresql://", "postgresql+psycopg://")
            tracker_url = create_pg(args.postgres, pg_names[1])
        else:
            database_url, tracker_url = f"sqlite:///{data_dir / 'assistant.db'}", ""
        settings = StackSettings(
            data_dir=data_dir, rasa_port=PROJ_RASA_PORT, action_port=PROJ_ACTION_PORT,
            rasa_token="bench", database_url=database_url, tracker_store_url=tracker_url,
            lock_store_url=args.lock_store or "", rasa_workers=args.workers, model_path=Path(model),
        )
        os.environ["DATABASE_URL"] = database_url
        os.environ["DATA_DIR"] = str(data_dir)
        processes.prepare_store(settings)
        info["notes"]["project store"] = "PostgreSQL" if args.postgres else "SQLite"
        info["notes"]["project tracker store"] = "SQL on " + ("PostgreSQL" if args.postgres else "SQLite")
        info["notes"]["Rasa workers"] = str(args.workers)
        info["notes"]["project Rasa speed-ups (rasa_extensions/speedups.py)"] = os.environ.get(
            "SCORE_RASA_SPEEDUPS", "1"
        )
        info["notes"]["project model file"] = str(model)

        # 3. start-up, one stack at a time (so neither slows the other's start)
        base = BaselineClient()
        proj = ProjectClient(settings, database_url)
        clients = [base, proj]
        print("==> starting the baseline", file=sys.stderr, flush=True)
        started = time.monotonic()
        base_servers = start_baseline(base_dir)
        servers += base_servers
        figures["baseline"].startup = await wait_first_answer(base, base_servers, started)
        print("==> starting the project stack", file=sys.stderr, flush=True)
        started = time.monotonic()
        proj_servers = start_project(settings)
        servers += proj_servers
        figures["project"].startup = await wait_first_answer(proj, proj_servers, started)
        for client in clients:  # warm-up
            faq, action = messages(client)
            for text in faq + action:
                await client.turn(_sender("0"), text)
        check = await proj.turn(_sender("0"), ACTION_MESSAGES[0])
        info["notes"]["project custom-action turn answers"] = (
            f"{check[0].text[:60]!r}... with {sum(len(r.buttons) for r in check)} buttons" if check else "nothing")

        # 4. load, alternating
        print("==> latency", file=sys.stderr, flush=True)
        await latency(clients, figures, args.samples)
        print("==> throughput", file=sys.stderr, flush=True)
        for c in (1, 10, 50):
            turns = {1: args.samples, 10: max(40, args.samples * 2), 50: max(100, args.samples * 4)}[c]
            for client in clients if c != 10 else list(reversed(clients)):
                tps, errors = await throughput(client, c, turns)
                figures[client.name].throughput[c] = tps
                figures[client.name].errors[c] = errors
        errs = {n: f.errors for n, f in figures.items() if any(f.errors.values())}
        if errs:
            info["notes"]["failed turns"] = str(errs)
        print("==> long conversation", file=sys.stderr, flush=True)
        await long_conversation(clients, figures, args.long)
        print("==> typed messages", file=sys.stderr, flush=True)
        info["notes"]["project NLU on typed messages"] = await typed_messages(settings)

        # 5. memory
        for name, pair in (("baseline", base_servers), ("project", proj_servers)):
            actions, rasa = pair
            figures[name].rss["rasa"], n = tree_rss(rasa.process.pid)
            figures[name].rss["actions"], _ = tree_rss(actions.process.pid)
            info["notes"][f"{name} Rasa processes"] = str(n)
        figures["project"].rss["client"] = own_rss()
        info["notes"]["RSS client"] = "project: this process, which runs the gateway's ConversationService " \
                                      "(and the baseline's httpx client); baseline: n/a"
        for client in clients:
            await client.close()
        clients = []
        info["notes"]["load"] = f"1-minute load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        info["notes"]["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                                 capture_output=True, text=True).stdout.strip()
        print_table(figures, args, info)
    finally:
        for client in clients:
            try:
                await client.close()
            except Exception:
                pass
        for server in reversed(servers):
            server.stop()
        for name in pg_names:
            drop_pg(args.postgres, name)
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=30, help="latency samples per turn kind and stack")
    parser.add_argument("--long", type=int, default=100, help="turns of the long conversation")
    parser.add_argument("--train", action="store_true",
                        help="time full trainings of both models (default: the baseline's is cached in var/bench/, "
                             "the project's figure is the last --train run's)")
    parser.add_argument("--model", type=Path, default=MODEL_PATH, help="project model to serve")
    parser.add_argument("--postgres", default="", help="server URL: store and tracker store on PostgreSQL")
    parser.add_argument("--lock-store", default="", help="redis://host:port/db: Rasa's Redis lock store")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("RASA_WORKERS", "1")),
                        help="Sanic workers of the project's Rasa server (>1 needs --lock-store)")
    parser.add_argument("--action-message", default=ACTION_MESSAGES[0],
                        help="the project's custom-action turn (default: the session list)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, models)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
