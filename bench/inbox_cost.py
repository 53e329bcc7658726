"""What the inbox costs a turn in the store: the store's work of one Telegram turn without the
inbox (main before it) and with it, side by side, on SQLite and PostgreSQL.

    .venvs/app/bin/python -m bench.inbox_cost [--turns 400]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

Without: claim the update id (processed_updates), start the turn (user, language, the user's
transcript line), record the answer (its lines and intent). With: receive (the claim and the
inbox row, one transaction), start the turn (the row marked `sending` in that transaction), record
the answer (the row deleted in that transaction). Both take three commits; the inbox adds one
INSERT, one UPDATE and one DELETE to them. Turns alternate between the two (same users, same
database), so both see the same disk and cache. Prints ms per turn; uses throw-away databases.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench.booking_bench import _Postgres
from store import conversations, inbox
from store.db import Database


def _turn(db: Database, n: int, with_inbox: bool) -> float:
    user = str(1000 + n % 50)
    text = f"how long is the training {n}"
    started = time.perf_counter()
    row = None
    if with_inbox:
        payload = json.dumps({"update_id": n, "message": {"message_id": n, "text": text,
                                                          "chat": {"id": int(user), "type": "private"}}})
        row = inbox.receive(db, "bench:1:run", "telegram", user, int(user), n, "bot", payload, text,
                            dt.datetime.now(dt.UTC))
    else:
        conversations.claim_update(db, n, "bot")
    view, line_id = conversations.start_turn(
        db, "telegram", user, text, lambda current, chosen: current, chat_id=int(user),
        inbox_id=row, rasa_text=text)
    conversations.record_lines(db, view.id, ["The classroom training takes two days."], chat_id=int(user),
                               language=view.language, intent=(line_id, "ask_duration", 0.97), release_held=row)
    return (time.perf_counter() - started) * 1000


def _run(db: Database, turns: int) -> dict[bool, list[float]]:
    for n in range(20):  # warm up: the users exist, the connections are open
        _turn(db, 10_000_000 + n, n % 2 == 0)
    times: dict[bool, list[float]] = {False: [], True: []}
    for n in range(turns):
        with_inbox = n % 2 == 1
        times[with_inbox].append(_turn(db, n, with_inbox))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=400)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help="admin URL of a PostgreSQL server; '' to skip")
    args = parser.parse_args()
    print(f"store time per turn, ms ({args.turns // 2} turns each, alternating)")
    print(f"{'store':<12}{'':<16}{'mean':>8}{'p50':>8}{'p95':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        backends: list[tuple[str, Database]] = []
        sqlite = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        sqlite.create_all()
        backends.append(("sqlite", sqlite))
        pg = _Postgres(args.postgres) if args.postgres else None
        try:
            if pg is not None:
                backends.append(("postgresql", pg.new()))
            for name, db in backends:
                times = _run(db, args.turns)
                for with_inbox in (False, True):
                    values = sorted(times[with_inbox])
                    print(f"{name:<12}{'with inbox' if with_inbox else 'without':<16}"
                          f"{statistics.mean(values):>8.2f}{statistics.median(values):>8.2f}"
                          f"{values[int(len(values) * 0.95) - 1]:>8.2f}")
                extra = statistics.mean(times[True]) - statistics.mean(times[False])
                print(f"{name:<12}{'cost':<16}{extra:>+8.2f}  ({extra / statistics.mean(times[False]):+.0%})")
                db.dispose()
        finally:
            if pg is not None:
                pg.drop()


if __name__ == "__main__":
    main()
