"""Seeded random conversations through the gateway's conversation service, against the real
Rasa server and action server: no dialogue path may loop, repeat itself, go silent or brick.

Each conversation is a random walk in one main language (sometimes the other) over: typed
examples of every intent from nlu/ (form answers out of context included), presses of the
buttons the last answer offered, stale buttons from earlier answers, commands, and junk
(emoji, bare numbers, 4,000 characters, HTML, SQL, mixed scripts). Checked on every turn:
- Rasa sent 1 to 4 messages, none repeated, and the gateway passed on 1 to 4;
- Rasa's log has no "Circuit breaker tripped", the action server's log no exception;
- when a form is active, /cancel (tried often) leaves it;
- after /start, the next FAQ question gets that topic's answer.
A failing conversation is shrunk (turns removed while it still fails, replayed on new users)
and printed. FUZZ_SEED, FUZZ_CONVERSATIONS change the run; the figures go to the log.
"""
from __future__ import annotations

import asyncio
import os
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from actions.knowledge import knowledge
from bot.conversation import MAX_REPLIES, ConversationService, Incoming, TurnResult
from bot.rasa_client import Button, RasaAnswer, RasaClient
from stack.settings import ROOT
from store.handoff import open_for_sender, resolve_as

SEED = int(os.environ.get("FUZZ_SEED", "20261125"))
CONVERSATIONS = int(os.environ.get("FUZZ_CONVERSATIONS", "320"))
MIN_TURNS, MAX_TURNS = 4, 18
SHRINK_SECONDS = 120
CONCURRENCY = int(os.environ.get("FUZZ_CONCURRENCY", "4"))
# FUZZ_SURVEY=1: don't stop at the first failure; count failing turns by the intent Rasa gave
# the message and what went wrong (to list every loop or dead end a model has), then fail.
SURVEY = os.environ.get("FUZZ_SURVEY") == "1"

ENTITY = re.compile(r"\[([^\]]+)\]\([^)]+\)|\[([^\]]+)\]\{[^}]+\}")
HAN = re.compile(r"[\u4e00-\u9fff]")
# Questions whose topic NLU gets right (each is in nlu/): the check after /start is about the
# dialogue coming back, not about NLU quality.
CANONICAL = {
    "en": [("what is SCORE?", "what_is"), ("what modules are there?", "modules"),
           ("how much does the training cost?", "fees")],
    "zh": [("SCORE是什么？", "what_is"), ("SCORE培训有哪些模块？", "modules"), ("培训要多少钱？", "fees")],
}
COMMANDS = [("start", []), ("help", []), ("cancel", []), ("bookings", []), ("human", []),
            ("language", ["zh"]), ("language", ["en"]), ("language", []), ("foo", []), ("forget", [])]
JUNK = [
    "👍", "😀😀😀", "🙏", "???", "...", "5", "120", "0", "-3", "999999999999", "两百", "一千二百",
    "<b>hello</b><script>alert(1)</script>", "'; DROP TABLE users; --", "SELECT * FROM bookings",
    "我们有 200 workers in 东莞", "ok 好的", "2019-05-01", "yesterday", "明天", "asdfghjkl",
    "x" * 4000, ("培训" * 2000), "   ", "/", "//", "@#$%^&*", "/restart", "/book module 1",
]
# Buttons that no answer offers now: from deleted sessions, old bookings, earlier versions.
BOGUS_BUTTONS = [
    "/affirm", "/deny", "/confirm_booking", "/choose_session{\"session_id\":\"999999\"}",
    "/choose_session{\"slot_id\":\"-1\"}", "/confirm_cancel{\"ref\":\"SC-NOPE00\"}",
    "/reschedule_to{\"ref\":\"SC-NOPE00\",\"session_id\":\"1\"}", "/book_classroom{\"module\":\"9\"}",
    "/choose_module{\"module\":\"abc\"}", "/choose_place{\"place\":\"Atlantis\"}", "/join_waitlist",
    "/no_such_intent", "lang:fr",
]
# A typed "/word" is a command on every channel (Telegram, the local chat).
COMMAND_TEXT = re.compile(r"^/[A-Za-z]")


def training_examples() -> dict[str, dict[str, list[str]]]:
    """intent -> language -> typed examples, from nlu/ (entity markup removed)."""
    examples: dict[str, dict[str, list[str]]] = {}
    for path in sorted((ROOT / "nlu").glob("*.yml")):
        for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu") or []:
            if "intent" not in block:
                continue
            for line in str(block.get("examples") or "").splitlines():
                text = ENTITY.sub(lambda m: m.group(1) or m.group(2), line.strip().removeprefix("- "))
                if text:
                    lang = "zh" if HAN.search(text) else "en"
                    examples.setdefault(block["intent"], {}).setdefault(lang, []).append(text)
    return examples


@dataclass
class Step:
    kind: str  # text | press | command
    text: str = ""  # the text, the payload or the command name
    title: str | None = None
    args: list[str] = field(default_factory=list)
    source: str = ""  # of a press: offered (by the last answer) | earlier | bogus
    # A question asked right after /start: its topic's answer must come back (checked on
    # replays too, so the shrunk conversation shows the same failure).
    expect_topic: str | None = None

    def __str__(self) -> str:
        if self.kind == "press":
            return f"[press {self.title!r} -> {self.text}]"
        if self.kind == "command":
            return "/" + " ".join([self.text, *self.args])
        return repr(self.text if len(self.text) < 80 else self.text[:60] + f"...({len(self.text)} chars)")


class Failure(AssertionError):
    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{where}: {what}")
        self.what = what


class RecordingRasa(RasaClient):
    """The real client; remembers what Rasa itself answered each sender, before the gateway's
    bounds (conversations run concurrently)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.last: dict[str, RasaAnswer] = {}

    async def send(self, sender, text, metadata=None, timeout=None) -> RasaAnswer:
        answer = await super().send(sender, text, metadata, timeout)
        self.last[sender] = RasaAnswer(list(answer.replies), answer.intent, answer.confidence, answer.reset)
        return answer


class LogWatch:
    """New lines of a server log since the last look."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def new_lines(self) -> str:
        with open(self.path, "rb") as log:
            log.seek(self.offset)
            data = log.read()
        self.offset += len(data)
        return data.decode("utf-8", errors="replace")


def circuit_breaker_senders(log: str) -> set[str]:
    return set(re.findall(r"Circuit breaker tripped\. Stopped predicting more actions for sender '([^']+)'", log))


ACTION_ERRORS = re.compile(r"Traceback|Exception|\bERROR\b")


@dataclass
class Figures:
    conversations: int = 0
    turns: int = 0
    checks: int = 0
    cancels: int = 0
    restarts: int = 0
    presses: dict[str, int] = field(default_factory=dict)  # by source
    handoffs: int = 0


class Walker:
    def __init__(self, stack, service: ConversationService, rasa: RecordingRasa, examples) -> None:
        self.stack = stack
        self.service = service
        self.rasa = rasa
        self.examples = examples
        self.rasa_log = LogWatch(stack.logs["rasa"])
        self.action_log = LogWatch(stack.logs["action-server"])
        self.figures = Figures()
        self.users = 0
        self.tripped: set[str] = set()  # senders named in Rasa's circuit breaker warnings
        self.last_intent: str | None = None

    def new_user(self) -> str:
        self.users += 1
        return f"fuzz{SEED}-{self.users}-{time.time_ns() % 10**8}"

    # --- one turn ---------------------------------------------------------------------------

    async def run_step(self, user: str, step: Step) -> TurnResult:
        incoming = Incoming(channel="local", external_id=user, text=step.text, display_name="fuzz")
        self.rasa.last.pop(f"local-{user}", None)
        if step.kind == "press":
            return await self.service.press(incoming, step.text, step.title)
        if step.kind == "command":
            return await self.service.command(incoming, step.text, step.args)
        if COMMAND_TEXT.match(step.text):
            words = step.text.split()
            return await self.service.command(incoming, words[0][1:].lower(), words[1:])
        return await self.service.handle(incoming)

    def active_loop(self, user: str) -> str | None:
        response = httpx.get(f"{self.stack.rasa_url}/conversations/local-{user}/tracker",
                             params={"token": self.stack.settings.rasa_token, "include_events": "NONE"},
                             timeout=30)
        response.raise_for_status()
        return (response.json().get("active_loop") or {}).get("name")

    async def checked_turn(self, user: str, step: Step) -> TurnResult:
        result = await self.run_step(user, step)
        self.figures.turns += 1
        where = f"after {step}"
        raw = self.rasa.last.get(f"local-{user}")
        if step.kind == "command" and step.text == "start":
            raw = None  # Rasa's restart answers nothing; the welcome is the gateway's
        if result.paused:
            raise Failure(where, "the user was paused without a handoff in this walk")
        self.last_intent = raw.intent if raw is not None else None
        if raw is not None:
            self.figures.checks += 3
            if not 1 <= len(raw.replies) <= MAX_REPLIES:
                raise Failure(where, f"Rasa sent {len(raw.replies)} messages: {[r.text[:60] for r in raw.replies]}")
            texts = [(r.text, tuple((b.title, b.payload) for b in r.buttons)) for r in raw.replies]
            if len(set(texts)) < len(texts):
                raise Failure(where, f"Rasa repeated a message: {[r.text[:60] for r in raw.replies]}")
            if raw.reset:
                raise Failure(where, "the turn tripped Rasa's circuit breaker")
        self.figures.checks += 1
        if not 1 <= len(result.replies) <= MAX_REPLIES:
            raise Failure(where, f"the user got {len(result.replies)} messages")
        if step.expect_topic:
            # In the user's language, which a /language choice may have fixed before /start.
            expected = knowledge()["topics"][step.expect_topic][result.language].strip()[:30]
            self.figures.checks += 1
            if not any(expected in reply.text for reply in result.replies):
                raise Failure("after /start", f"{step.text!r} did not get the {step.expect_topic} "
                              f"answer: {[r.text[:80] for r in result.replies]}")
        self.figures.checks += 2
        self.tripped |= circuit_breaker_senders(self.rasa_log.new_lines())
        if f"local-{user}" in self.tripped:
            raise Failure(where, "Rasa's log says the circuit breaker tripped")
        action_log = self.action_log.new_lines()
        if ACTION_ERRORS.search(action_log):
            # With conversations running side by side the culprit may be another one: the
            # shrinking replays this one alone, and says so if it does not fail again.
            raise Failure(where, f"the action server logged an error:\n{action_log[-2000:]}")
        # A handoff pauses the bot for this user: staff hand the conversation back at once.
        handoff = open_for_sender(self.stack.db, f"local-{user}")
        if handoff is not None:
            self.figures.handoffs += 1
            resolve_as(self.stack.db, handoff.id, "fuzz-staff")
        return result

    # --- a conversation ---------------------------------------------------------------------

    def pick(self, rng: random.Random, lang: str, last: list[Button], seen: list[Button]) -> Step:
        roll = rng.random()
        if last and roll < 0.30:
            button = rng.choice(last)
            return Step("press", button.payload, button.title, source="offered")
        if seen and roll < 0.36:
            button = rng.choice(seen)
            return Step("press", button.payload, button.title, source="earlier")
        if roll < 0.39:
            return Step("press", rng.choice(BOGUS_BUTTONS), "?", source="bogus")
        if roll < 0.46:
            name, args = rng.choice(COMMANDS)
            return Step("command", name, args=list(args))
        if roll < 0.52:
            return Step("text", rng.choice(JUNK))
        intent = rng.choice(sorted(self.examples))
        by_lang = self.examples[intent]
        texts = by_lang.get(lang) or next(iter(by_lang.values()))
        return Step("text", rng.choice(texts))

    async def walk(self, rng: random.Random) -> list[Step] | None:
        """One random conversation; the steps up to a failure, or None when all was well."""
        user = self.new_user()
        lang = rng.choice(["en", "zh"])
        steps: list[Step] = []
        last: list[Button] = []
        seen: list[Button] = []
        try:
            for _ in range(rng.randint(MIN_TURNS, MAX_TURNS)):
                turn_lang = lang if rng.random() < 0.85 else ("zh" if lang == "en" else "en")
                step = self.pick(rng, turn_lang, last, seen)
                if step.kind == "press":
                    self.figures.presses[step.source] = self.figures.presses.get(step.source, 0) + 1
                steps.append(step)
                result = await self.checked_turn(user, step)
                last = [b for r in result.replies for b in r.buttons]
                seen.extend(last)
                if step.kind == "command" and step.text == "start":
                    await self.after_start(user, rng, lang, steps)
                    last = []
                elif rng.random() < 0.5 and self.active_loop(user):
                    await self.cancel_form(user, steps)
                    last = []
        except Failure as failure:
            failure.steps = steps  # type: ignore[attr-defined]
            raise
        finally:
            self.figures.conversations += 1
        return None

    async def after_start(self, user: str, rng: random.Random, lang: str, steps: list[Step]) -> None:
        self.figures.restarts += 1
        question, topic = rng.choice(CANONICAL[lang])
        step = Step("text", question, expect_topic=topic)
        steps.append(step)
        await self.checked_turn(user, step)

    async def cancel_form(self, user: str, steps: list[Step]) -> None:
        self.figures.cancels += 1
        step = Step("command", "cancel")
        steps.append(step)
        await self.checked_turn(user, step)
        self.figures.checks += 1
        loop = self.active_loop(user)
        if loop:
            raise Failure("after /cancel", f"the form {loop} is still active")

    # --- shrinking --------------------------------------------------------------------------

    async def fails(self, steps: list[Step]) -> str | None:
        user = self.new_user()
        self.rasa_log.new_lines()
        self.action_log.new_lines()
        try:
            for step in steps:
                await self.checked_turn(user, step)
                if step.kind == "command" and step.text == "cancel" and self.active_loop(user):
                    raise Failure("after /cancel", "the form is still active")
        except Failure as failure:
            return str(failure)
        return None

    async def shrink(self, steps: list[Step]) -> tuple[list[Step], str]:
        """Remove turns while the conversation still fails (greedy, bounded in time)."""
        reason = await self.fails(steps) or "(did not fail again when replayed)"
        deadline = time.monotonic() + SHRINK_SECONDS
        chunk = max(1, len(steps) // 2)
        while chunk >= 1 and time.monotonic() < deadline:
            index, shrunk = 0, False
            while index < len(steps) and time.monotonic() < deadline:
                candidate = steps[:index] + steps[index + chunk:]
                failed = await self.fails(candidate) if candidate else None
                if failed:
                    steps, reason, shrunk = candidate, failed, True
                else:
                    index += chunk
            if not shrunk:
                chunk //= 2
        return steps, reason


@pytest.fixture
async def walker(stack):
    rasa = RecordingRasa(stack.rasa_url, stack.settings.rasa_token, timeout=30)
    service = ConversationService(stack.db, rasa)
    yield Walker(stack, service, rasa, training_examples())
    await rasa.close()


async def test_random_conversations_never_loop_repeat_or_go_silent(walker, capsys):
    rng = random.Random(SEED)
    seeds = [rng.random() for _ in range(CONVERSATIONS)]  # conversation n is the same in every run
    started = time.monotonic()
    pending = iter(enumerate(seeds))
    failures: list[tuple[int, Failure]] = []
    survey: dict[tuple[str, str], int] = {}

    async def worker() -> None:
        # Conversations side by side keep both cores busy (Rasa, the action server, this test).
        for number, seed in pending:
            if failures:
                return
            try:
                await walker.walk(random.Random(seed))
            except Failure as failure:
                if SURVEY:
                    what = failure.what.split(":")[0]
                    survey[(walker.last_intent or "-", what)] = survey.get((walker.last_intent or "-", what), 0) + 1
                    continue
                failures.append((number, failure))

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    if survey:
        table = "\n".join(f"  {count:4d}  {intent:<22} {what}" for (intent, what), count
                          in sorted(survey.items(), key=lambda item: -item[1]))
        pytest.fail(f"{sum(survey.values())} of {CONVERSATIONS} conversations failed; by intent and "
                    f"failure:\n{table}", pytrace=False)
    if failures:
        number, failure = min(failures, key=lambda item: item[0])
        steps = getattr(failure, "steps", [])
        shortest, reason = await walker.shrink(list(steps))
        lines = "\n".join(f"  {i + 1}. {step}" for i, step in enumerate(shortest))
        again = "the same failure" if reason == str(failure) else reason
        pytest.fail(
            f"conversation {number} (FUZZ_SEED={SEED}) failed: {failure}\n"
            f"shortest conversation that reproduces it, alone ({again}):\n{lines}",
            pytrace=False,
        )
    f = walker.figures
    summary = (f"conversation fuzzing: seed {SEED}, {f.conversations} conversations, {f.turns} turns, "
               f"{f.checks} invariant checks, button presses {f.presses}, "
               f"{f.cancels} /cancel in a form, {f.restarts} /start, {f.handoffs} handoffs, "
               f"{time.monotonic() - started:.0f} s")
    with capsys.disabled():
        print("\n" + summary)
    log = ROOT / "var" / "test-logs"
    log.mkdir(parents=True, exist_ok=True)
    (log / "fuzz.txt").write_text(summary + "\n", encoding="utf-8")
    assert f.conversations >= 300 and f.turns >= 3000
