"""Nothing the user sent is dropped while Rasa is unreachable (bot/conversation.py): kept and
answered in order when Rasa is back, one notice per outage, "send it again" after the window."""
from __future__ import annotations

import asyncio
import dataclasses
import time

import i18n
from bot.conversation import ConversationService, Incoming
from bot.rasa_client import RasaAnswer, RasaUnavailable, RasaUnreachable, Reply
from store import conversations

WAIT = i18n.t("rasa_waiting", "en")
AGAIN = i18n.t("rasa_send_again", "en")


class FlakyRasa:
    """Stands in for the Rasa client: refuses connections until `up` is set; then answers each
    message, the first of a batch slowest (so answers would come out of order if turns overlapped)."""

    def __init__(self, timeout: float = 4.5) -> None:
        self.timeout = timeout
        self.up = asyncio.Event()
        self.taken: list[tuple[str, str]] = []  # what Rasa handled, in order
        self.refused = 0
        self.running = 0
        self.overlap = False

    async def send(self, sender, text, metadata=None, timeout=None):
        if not self.up.is_set():
            self.refused += 1
            raise RasaUnreachable("connection refused")
        self.running += 1
        self.overlap |= self.running > 1
        await asyncio.sleep(0.05 * max(0, 5 - len(self.taken)))
        self.running -= 1
        self.taken.append((sender, text))
        return RasaAnswer([Reply(f"answer to {text}")], "greet", 1.0)

    async def status(self) -> bool:
        return self.up.is_set()


class Inbox:
    """What the user saw in the middle of turns (the channel's notify)."""

    def __init__(self) -> None:
        self.notices: list[tuple[float, str]] = []

    async def notify(self, replies: list[Reply]) -> None:
        self.notices += [(time.monotonic(), r.text) for r in replies]


def message(user: str, text: str, inbox: Inbox | None = None, **extra) -> Incoming:
    return Incoming(channel="telegram", external_id=user, text=text, chat_id=int(user),
                    language_code="en", notify=inbox.notify if inbox else None, **extra)


async def until(condition, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_messages_sent_during_an_outage_are_answered_in_order_once_with_one_notice(sqlite_db):
    rasa = FlakyRasa()
    service = ConversationService(sqlite_db, rasa, hold_window=60)
    alice, bob = Inbox(), Inbox()
    texts = ["first question", "second question", "third question"]
    # Concurrent messages, as several updates of one chat (and another chat) arriving together.
    turns = [asyncio.create_task(service.handle(message("11", text, alice))) for text in texts]
    other = asyncio.create_task(service.handle(message("22", "hello there", bob)))
    await until(lambda: alice.notices and bob.notices)
    await asyncio.sleep(0.3)
    assert not any(t.done() for t in turns + [other])  # kept, not dropped or refused
    assert [n for _, n in alice.notices] == [WAIT] and [n for _, n in bob.notices] == [WAIT]

    rasa.up.set()  # Rasa is back
    results = await asyncio.gather(*turns)
    await other
    assert [[r.text for r in result.replies] for result in results] == [[f"answer to {t}"] for t in texts]
    # Each message reached Rasa exactly once, alice's in the order she sent them, one at a time.
    assert [text for sender, text in rasa.taken if sender == "tg-11"] == texts
    assert sorted(rasa.taken) == sorted(set(rasa.taken)) and len(rasa.taken) == 4
    assert [n for _, n in alice.notices] == [WAIT]  # still one notice for her whole outage
    # The transcript tells the same story, in order.
    user = conversations.get_user(sqlite_db, "tg-11")
    lines = [line.text for line in conversations.recent_lines(sqlite_db, user.id, limit=20)]
    assert lines == ["first question", WAIT, "answer to first question", "second question",
                     "answer to second question", "third question", "answer to third question"]


async def test_a_users_turns_never_overlap_even_when_rasa_is_up(sqlite_db):
    rasa = FlakyRasa()
    rasa.up.set()
    service = ConversationService(sqlite_db, rasa)
    texts = [f"message {i}" for i in range(6)]
    results = await asyncio.gather(*(service.handle(message("33", text)) for text in texts))
    assert not rasa.overlap
    assert [text for _, text in rasa.taken] == texts
    assert [r.replies[0].text for r in results] == [f"answer to {t}" for t in texts]
    assert len(service._turns) == 0  # no lock left behind


async def test_after_the_window_the_user_is_asked_to_send_it_again(sqlite_db):
    rasa = FlakyRasa()
    service = ConversationService(sqlite_db, rasa, hold_window=0.6)
    inbox = Inbox()
    started = time.monotonic()
    result = await service.handle(message("44", "are we eligible", inbox))
    assert [r.text for r in result.replies] == [AGAIN]
    assert [n for _, n in inbox.notices] == [WAIT]
    assert inbox.notices[0][0] - started < 5.0  # told at once, not after the window
    assert rasa.taken == [] and rasa.refused >= 1

    # A message the user sent before being asked to send again was covered by the notice...
    sent_earlier = message("44", "hello?", inbox, received_at=time.time() - 0.2)
    assert [r.text for r in (await service.handle(sent_earlier)).replies] == [AGAIN]
    assert len(inbox.notices) == 1
    # ...one sent afterwards, with Rasa still down, starts a new wait with a new notice.
    await asyncio.sleep(0.05)
    assert [r.text for r in (await service.handle(message("44", "hello again", inbox))).replies] == [AGAIN]
    assert [n for _, n in inbox.notices] == [WAIT, WAIT]


async def test_without_a_way_to_notify_the_notice_comes_first_in_the_answer(sqlite_db):
    rasa = FlakyRasa()
    service = ConversationService(sqlite_db, rasa, hold_window=30)
    turn = asyncio.create_task(service.handle(message("55", "modules?")))
    await until(lambda: rasa.refused > 0)
    rasa.up.set()
    assert [r.text for r in (await turn).replies] == [WAIT, "answer to modules?"]


class SlowRasa(FlakyRasa):
    """Takes the message and answers after `delay`, or times out (RasaUnavailable)."""

    def __init__(self, delay: float, times_out: bool = False) -> None:
        super().__init__(timeout=0.3)
        self.delay, self.times_out, self.sends = delay, times_out, 0

    async def send(self, sender, text, metadata=None, timeout=None):
        self.sends += 1
        await asyncio.sleep(min(self.delay, timeout or self.delay))
        if self.times_out:
            raise RasaUnavailable("read timeout")
        self.taken.append((sender, text))
        return RasaAnswer([Reply(f"answer to {text}")], "greet", 1.0)


async def test_a_slow_rasa_gets_the_notice_and_the_message_is_not_sent_twice(sqlite_db):
    rasa = SlowRasa(delay=1.0)
    service = ConversationService(sqlite_db, rasa, hold_window=60)
    inbox = Inbox()
    result = await service.handle(message("66", "book module 1", inbox))
    assert [n for _, n in inbox.notices] == [WAIT]  # told after RASA_TIMEOUT (here 0.3 s)
    assert [r.text for r in result.replies] == ["answer to book module 1"]
    assert rasa.sends == 1

    # Rasa has the message but never answers within the window: asked again, never resent.
    stuck = SlowRasa(delay=0.5, times_out=True)
    service = ConversationService(sqlite_db, stuck, hold_window=1)
    result = await service.handle(message("77", "confirm", Inbox()))
    assert [r.text for r in result.replies] == [AGAIN] and stuck.sends == 1


async def test_a_notice_and_the_answers_in_chinese(sqlite_db):
    rasa = FlakyRasa()
    service = ConversationService(sqlite_db, rasa, hold_window=0.3)
    inbox = Inbox()
    result = await service.handle(dataclasses.replace(message("88", "你们有哪些培训模块", inbox)))
    assert [n for _, n in inbox.notices] == [i18n.t("rasa_waiting", "zh")]
    assert [r.text for r in result.replies] == [i18n.t("rasa_send_again", "zh")]
