"""Figures behind single Rasa speed-ups (docs/performance.md), each measured side by side:

    .venvs/app/bin/python -m bench.rasa_parts [--model models/score.tar.gz] [--turns 60]

1. Memory of a loaded model: RSS growth of Agent.load (in a fresh Rasa process).
2. The action response check: jsonschema (Rasa's), fastjsonschema on the whole schema, and
   rasa_extensions.speedups.action_response_check (per event, remembered), on a booking-sized answer.
3. Turn time inside Rasa through the gateway channel, for payloads that need no, one and two
   action server calls (median of the second turn of new conversations).
Prints a table. A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench import rasa_bench
from stack import processes
from stack.settings import MODEL_PATH, RASA_PYTHON, ROOT, StackSettings
from stack.train import rasa_env

LOAD = """
import sys
def rss():
    return next(int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmRSS"))
from rasa.core.agent import Agent
before = rss()
Agent.load(sys.argv[1])
print("RESULT", rss() - before)
"""

CHECK = """
import json, time
import fastjsonschema, jsonschema
from rasa.core.actions.action import RemoteAction
from rasa.shared.core import events as E
from rasa_extensions.speedups import action_response_check

spec = RemoteAction.action_response_format_spec()
events = [E.SlotSet(f"booking_{i}", None).as_dict() for i in range(8)] + [E.BotUttered(
    "Available dates for Module 1 in Dongguan", {"buttons": [
        {"title": f"date {i}", "payload": '/choose_session{"session_id":"%d"}' % i} for i in range(5)]}).as_dict()]
answer = {"events": events, "responses": [{"text": "x", "buttons": []}]}
slow = jsonschema.validators.validator_for(spec)(spec)
whole = fastjsonschema.compile(spec)
ours = action_response_check(spec)

def ms(fn, n=200):
    fn()
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1000

def first_time():
    fresh = action_response_check(spec)
    started = time.perf_counter()
    fresh(answer)
    return (time.perf_counter() - started) * 1000

print("RESULT " + json.dumps({
    "jsonschema (Rasa's check)": ms(lambda: slow.is_valid(answer), 50),
    "fastjsonschema, whole schema": ms(lambda: whole(answer)),
    "per event, first time (best of 20)": min(first_time() for _ in range(20)),
    "per event, remembered": ms(lambda: ours(answer)),
}))
"""

PAYLOADS = ["/greet", "/faq_fees", '/book_classroom{"module":"1","place":"Dongguan"}']


def in_rasa(script: str, *args: str) -> str:
    done = subprocess.run([str(RASA_PYTHON), "-c", script, *args], cwd=ROOT, env=rasa_env(),
                          capture_output=True, text=True, check=True)
    return next(line for line in done.stdout.splitlines() if line.startswith("RESULT")).split(" ", 1)[1]


async def payload_turns(model: Path, turns: int) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="rasa-parts-"))
    settings = StackSettings(data_dir=work, rasa_port=rasa_bench.PROJ_RASA_PORT,
                             action_port=rasa_bench.PROJ_ACTION_PORT, rasa_token="bench",
                             database_url=f"sqlite:///{work / 'assistant.db'}", tracker_store_url="",
                             lock_store_url="", model_path=model)
    os.environ["DATABASE_URL"], os.environ["DATA_DIR"] = settings.database_url, str(work)
    processes.prepare_store(settings)
    servers = rasa_bench.start_project(settings)
    try:
        processes.wait_until_up(servers[0], f"http://127.0.0.1:{settings.action_port}/health", 60)
        processes.wait_until_up(servers[1], f"{settings.rasa_url}/status?token=bench", 300)
        medians = {}
        async with httpx.AsyncClient(base_url=settings.rasa_url, timeout=60) as http:
            async def post(sender: str, text: str) -> None:
                response = await http.post("/webhooks/gateway/webhook",
                                           json={"sender": sender, "message": text, "metadata": {"language": "en"}})
                response.raise_for_status()

            for text in PAYLOADS:  # warm-up
                await post("warm", text)
            for text in PAYLOADS:
                times = []
                for _ in range(turns):
                    sender = f"parts-{time.time_ns()}"
                    await post(sender, "/greet")
                    started = time.perf_counter()
                    await post(sender, text)
                    times.append((time.perf_counter() - started) * 1000)
                medians[text] = statistics.median(times)
        return medians
    finally:
        for server in reversed(servers):
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=MODEL_PATH)
    parser.add_argument("--turns", type=int, default=60)
    args = parser.parse_args()
    rows = [("figure", "value")]
    rows.append(("RSS added by loading the model (MB)", f"{float(in_rasa(LOAD, str(args.model))):.0f}"))
    for name, value in json.loads(in_rasa(CHECK)).items():
        rows.append((f"action response check: {name} (ms)", f"{value:.2f}"))
    for text, value in asyncio.run(payload_turns(args.model, args.turns)).items():
        rows.append((f"turn through Rasa, second of a conversation: {text} (ms, median)", f"{value:.1f}"))
    width = max(len(r[0]) for r in rows)
    for index, (name, value) in enumerate(rows):
        print(f"{name.ljust(width)}  {value}")
        if index == 0:
            print("-" * (width + 10))
    print(f"\nmodel {args.model}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
