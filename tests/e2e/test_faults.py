"""Fault injection through the gateway (fake Bot API) against real servers that the launcher's
own code starts and supervises (stack.run.start_servers + stack/supervisor.py).

These tests kill servers, so they start their own pair instead of the session's shared `stack`:
- `kill -9` the Rasa server in the middle of the booking form: the user is told within 5 s,
  the supervisor restarts Rasa, the message sent during the outage is answered, and the form
  goes on from the question it was at (the tracker is in SQLite).
- `kill -9` the action server while it is inside the booking transaction (held there by a
  slow trigger on `bookings`): nothing half-written, seats taken equal confirmed bookings, and
  confirming again books exactly once.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

import i18n
from stack import processes
from stack.processes import Server, StackError
from stack.run import start_servers
from stack.settings import StackSettings
from stack.supervisor import Supervisor
from store.booking import seats_consistent
from store.db import Database
from store.models import Booking, ClassroomSession, User
from tests.e2e.conftest import current_model, running_gateway
from tests.fakes.bot_api import free_port

WAITING = i18n.t("rasa_waiting", "en")


@dataclasses.dataclass
class SupervisedStack:
    settings: StackSettings
    db: Database
    db_path: Path
    supervisor: Supervisor
    log: list[str]
    errors: list[BaseException]

    def server(self, name: str) -> Server:
        server = self.supervisor.server(name)
        assert server is not None
        return server

    def kill(self, name: str) -> Server:
        """SIGKILL, as a crash: no graceful shutdown."""
        server = self.server(name)
        os.killpg(server.process.pid, signal.SIGKILL)
        return server

    def restarted(self, name: str, old: Server) -> bool:
        server = self.supervisor.server(name)
        return server is not None and server is not old and server.alive()

    def tracker(self, sender: str) -> dict:
        response = httpx.get(f"{self.settings.rasa_url}/conversations/{sender}/tracker",
                             params={"token": self.settings.rasa_token}, timeout=30)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def supervised(tmp_path_factory) -> Iterator[SupervisedStack]:
    data_dir: Path = tmp_path_factory.mktemp("supervised")
    db_path = data_dir / "assistant.db"
    settings = StackSettings(
        data_dir=data_dir, rasa_port=free_port(), action_port=free_port(), rasa_token="faults-token",
        database_url=f"sqlite:///{db_path}", tracker_store_url="", lock_store_url="",
        model_path=current_model(),
    )
    processes.prepare_store(settings)
    log: list[str] = []
    errors: list[BaseException] = []
    supervisor = Supervisor(log=log.append)  # the launcher's defaults: 1 s backoff, 5 in 120 s
    stop = threading.Event()

    def watch() -> None:
        try:
            supervisor.run(sleep=stop.wait)
        except StackError as error:
            errors.append(error)

    thread = threading.Thread(target=watch, name="supervisor", daemon=True)
    db = Database(settings.database_url)
    try:
        start_servers(settings, supervisor)
        thread.start()
        yield SupervisedStack(settings, db, db_path, supervisor, log, errors)
    finally:
        supervisor.stopped = True
        stop.set()
        if thread.is_alive():
            thread.join(10)
        supervisor.stop_all()
        db.dispose()
    assert not errors, errors


def buttons(message: dict) -> list[str]:
    return [b["text"] for row in (message.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]


async def next_question(api, user: int, after: int, timeout: float = 60) -> dict:
    """The first message with buttons sent to `user` after the first `after` messages."""
    def found() -> bool:
        return any(m.get("reply_markup") for m in sent_messages(api, user)[after:])
    await api.wait_for(found, timeout)
    return next(m for m in sent_messages(api, user)[after:] if m.get("reply_markup"))


def sent_messages(api, user: int) -> list[dict]:
    return [api.sent_message(user, i) for i in range(len(api.sent(user)))]


async def booking_up_to_city(api, user: int) -> dict:
    """Start a classroom booking of Module 1 with buttons; returns the city question."""
    api.push_text(user, "/start")
    welcome = await next_question(api, user, 0)
    count = len(api.sent(user))
    api.push_callback(user, "/start_booking", welcome)  # the booking's own intent payload
    kind = await next_question(api, user, count)
    assert i18n.t("booking_ask_kind", "en") in kind["text"]
    count = len(api.sent(user))
    api.press(user, kind, i18n.t("booking_button_classroom", "en"))
    module = await next_question(api, user, count)
    count = len(api.sent(user))
    api.press(user, module, "1")
    return await next_question(api, user, count)


async def test_rasa_killed_mid_form_is_restarted_and_the_message_sent_meanwhile_answered(supervised):
    async with running_gateway(supervised.settings.rasa_url, supervised.settings.rasa_token,
                               supervised.db) as gateway:
        api, user = gateway.api, gateway.new_user()
        sender = f"tg-{user}"
        city = await booking_up_to_city(api, user)
        assert "Dongguan" in buttons(city)
        state = supervised.tracker(sender)
        assert state["active_loop"]["name"] == "booking_form"
        assert state["slots"]["requested_slot"] == "booking_place"

        old = supervised.kill("Rasa server")
        old.process.wait()
        count = len(api.sent(user))
        pushed = time.monotonic()
        api.press(user, city, "Dongguan")  # the answer to the question, sent during the outage

        # Told within 5 s that the message is kept (measured from the push to the Bot API call).
        await api.wait_for(lambda: len(api.sent(user)) > count, 30)
        notice = next(c for c in api.calls if c.method == "sendMessage"
                      and int(c.params["chat_id"]) == user and c.at >= pushed)
        assert notice.params["text"] == WAITING
        assert notice.at - pushed < 5.0

        # The supervisor restarts Rasa (it loads the model again), then the kept message is
        # answered: the form goes on from the city question with the next one, the dates.
        dates = await next_question(api, user, count + 1, timeout=240)
        assert supervised.restarted("Rasa server", old)
        assert any("the Rasa server exited with exit code -9 (SIGKILL)" in line for line in supervised.log)
        assert dates["text"].startswith(i18n.t("booking_ask_session", "en", module="@", place="@").split("@")[0])
        assert "Dongguan" in dates["text"] and all("Dongguan" in title for title in buttons(dates))
        texts = api.texts(user)[count:]
        assert texts.count(WAITING) == 1 and i18n.t("rasa_send_again", "en") not in texts
        state = supervised.tracker(sender)
        assert state["active_loop"]["name"] == "booking_form"
        assert state["slots"]["booking_module"] in (1, "1", 1.0)
        assert state["slots"]["booking_place"] == "Dongguan"
        assert state["slots"]["requested_slot"] == "booking_target"
        # The message was handled once: one user event for it in the tracker.
        pressed = [e for e in state["events"] if e["event"] == "user" and "Dongguan" in (e.get("text") or "")]
        assert len(pressed) == 1, pressed


def write_lock_holder(db_path: Path) -> set[int]:
    """Pids holding SQLite's WAL write lock on the store (byte 120 of the -shm file)."""
    inode = os.stat(f"{db_path}-shm").st_ino
    holders = set()
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        # "1: POSIX  ADVISORY  WRITE 1234 00:2d:5678 120 120"
        if len(fields) >= 8 and fields[1] == "POSIX" and fields[3] == "WRITE" \
                and fields[5].rsplit(":", 1)[-1] == str(inode) and fields[6] == "120":
            holders.add(int(fields[4]))
    return holders


def booking_counts(db: Database, session_id: int, user_id: int) -> tuple[int, int, int]:
    """(seats taken, confirmed bookings of the session, this user's bookings)."""
    with db.session() as session:
        taken = session.scalar(select(ClassroomSession.seats_taken).where(ClassroomSession.id == session_id))
        confirmed = session.scalar(select(func.count(Booking.id)).where(
            Booking.session_id == session_id, Booking.status == "confirmed"))
        mine = session.scalar(select(func.count(Booking.id)).where(Booking.user_id == user_id))
        return taken, confirmed, mine


async def test_action_server_killed_inside_the_booking_transaction_leaves_nothing_half_written(supervised):
    t = lambda key, **values: i18n.t(key, "en", **values)  # noqa: E731
    async with running_gateway(supervised.settings.rasa_url, supervised.settings.rasa_token,
                               supervised.db) as gateway:
        api, user = gateway.api, gateway.new_user()
        city = await booking_up_to_city(api, user)
        count = len(api.sent(user))
        api.press(user, city, "Dongguan")
        dates = await next_question(api, user, count)
        session_id = int(dates["reply_markup"]["inline_keyboard"][0][0]["callback_data"].split('"')[-2])
        count = len(api.sent(user))
        api.press(user, dates, dates["reply_markup"]["inline_keyboard"][0][0]["text"])
        await api.wait_sent(user, count + 1)
        assert api.texts(user)[count] == t("booking_ask_factory")
        count = len(api.sent(user))
        api.push_text(user, "Huaxing Garments")
        attendees = await next_question(api, user, count)
        count = len(api.sent(user))
        api.press(user, attendees, t("booking_button_skip"))
        await api.wait_sent(user, count + 1)
        assert api.texts(user)[count] == t("booking_ask_contact")
        count = len(api.sent(user))
        api.push_text(user, "+86 769 1234 5678")
        summary = await next_question(api, user, count)
        assert t("booking_button_confirm") in buttons(summary)
        with supervised.db.session() as session:
            user_id = session.scalar(select(User.id).where(User.sender_id == f"tg-{user}"))
        before = booking_counts(supervised.db, session_id, user_id)
        assert before[0] == before[1] and before[2] == 0

        # Hold the booking transaction after its seat UPDATE, inside the booking INSERT: a
        # trigger that counts a large cross join (SQLite has no sleep()).
        with sqlite3.connect(supervised.db_path) as spin:
            spin.execute("CREATE TABLE fault_spin (x INTEGER)")
            spin.executemany("INSERT INTO fault_spin VALUES (?)", [(i,) for i in range(3000)])
            spin.execute("CREATE TRIGGER fault_slow_booking BEFORE INSERT ON bookings BEGIN "
                         "SELECT count(*) FROM fault_spin a, fault_spin b, fault_spin c; END")
        actions = supervised.server("action server")
        count = len(api.sent(user))
        api.press(user, summary, t("booking_button_confirm"))
        # Inside the transaction: the action server has held the write lock for a while
        # (an uncontended booking holds it for milliseconds).
        deadline, held_since = time.monotonic() + 60, None
        while True:
            assert time.monotonic() < deadline, "the booking transaction never started"
            if actions.process.pid in write_lock_holder(supervised.db_path):
                held_since = held_since or time.monotonic()
                if time.monotonic() - held_since > 1.0:
                    break
            else:
                held_since = None
            await asyncio.sleep(0.05)
        supervised.kill("action server")
        actions.process.wait()
        with sqlite3.connect(supervised.db_path, timeout=30) as spin:
            spin.execute("DROP TRIGGER fault_slow_booking")
            spin.execute("DROP TABLE fault_spin")

        # Nothing half-written: the seat taken inside the killed transaction is not taken.
        assert booking_counts(supervised.db, session_id, user_id) == before
        assert seats_consistent(supervised.db, session_id)
        # The user hears that it did not work (the turn ends; nothing was confirmed).
        await api.wait_for(lambda: len(api.sent(user)) > count, 60)
        await api.wait_for(lambda: t("action_failed") in api.texts(user)[count:], 60)
        # (and, had the turn taken longer than RASA_TIMEOUT, that it was being worked on)
        assert [text for text in api.texts(user)[count:] if text != WAITING] == [t("action_failed")]
        await api.wait_for(lambda: supervised.restarted("action server", actions), 60)
        processes.wait_until_up(supervised.server("action server"),
                                f"http://127.0.0.1:{supervised.settings.action_port}/health", 60)
        assert any("the action server exited with exit code -9 (SIGKILL)" in line for line in supervised.log)

        # A retry books exactly once, even confirmed twice.
        references = []
        for _ in range(2):
            count = len(api.sent(user))
            api.push_text(user, "confirm the booking")
            await api.wait_for(lambda count=count: any("SC-" in text for text in api.texts(user)[count:]), 60)
            references += re.findall(r"SC-[0-9A-Z]{6}", " ".join(api.texts(user)[count:]))
        assert len(set(references)) == 1, references
        taken, confirmed, mine = booking_counts(supervised.db, session_id, user_id)
        assert (taken, confirmed, mine) == (before[0] + 1, before[1] + 1, 1)
        assert seats_consistent(supervised.db, session_id)
