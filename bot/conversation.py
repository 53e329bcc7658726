"""One conversation turn, independent of Telegram: used by the Telegram handlers and the
local terminal chat alike, so both exercise the same code path.

A turn: find the user, decide the language, write the transcript, ask Rasa (unless staff
have the conversation), write the replies to the transcript. Commands (/start, /help,
/language, /cancel, ...) and button presses are handled here too, so every channel answers
them the same way.

Whatever happens inside Rasa, one user message gets at most MAX_REPLIES bot messages: a
repeated message is dropped and the rest cut, with an error in the log (a dialogue that
repeats itself is a bug to fix, not something to show the user). A turn that tripped Rasa's
circuit breaker comes back with `reset` (rasa_extensions/gateway_channel.py has reset the dialogue): the
user gets one short apology instead of what the looping turn said.

Nothing the user sent is dropped when Rasa is unreachable (restarting, overloaded): the turn
is held, per user and in order, for up to `hold_window` seconds (RASA_HOLD_WINDOW) from when
the message arrived, and answered when Rasa is back. The user is told once per outage that
the message is kept (through `Incoming.notify`, at once when Rasa refuses the connection,
after RASA_TIMEOUT when it is slow); after the window they are asked to send it again. A
message is sent to Rasa again only when Rasa did not take it (RasaUnreachable), so none is
handled twice.

With `durable` (the Telegram gateway), every message is in the store's inbox (store.inbox)
from its receipt (`Incoming.inbox_id`; a message that came without one gets a row once it is
held) until the transaction that records its answer, so it outlives the gateway process. The
turn's first transaction marks the row `sending`: from then on Rasa may have it. A gateway that
starts takes over the rows of one that died (`start_recovery`): a message only received is
handled again from the start (`replay`, the channel's own path) while the window lasts; a held
one is sent to Rasa while the window lasts and Rasa answers; otherwise the user is asked, once
per message, to send it again. One that may have reached Rasa is never sent again (a booking
confirmation must not run twice): the user is told, quoting it, that it may not have been
answered.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field, replace

import i18n
from bot import metrics
from bot.rasa_client import Button, RasaAnswer, RasaClient, RasaUnavailable, RasaUnreachable, Reply
from store import conversations, inbox, users
from store.db import Database
from store.inbox import InboxView
from store.users import UserView

logger = logging.getLogger(__name__)

# NLU cost grows with length; a 4096-character paste still gets an answer from its start.
MAX_NLU_CHARS = 2000
# At most this many bot messages answer one user message (the answer, a form's next question,
# a note: never more in a healthy dialogue).
MAX_REPLIES = 4

# Payloads the gateway handles itself; everything else is a Rasa payload.
LANG_PREFIX = "lang:"
FORGET_YES, FORGET_NO = "forget:yes", "forget:no"
# Commands that are Rasa intents: the command goes to Rasa as an intent payload.
RASA_COMMANDS = {"bookings": "/my_bookings", "human": "/request_human", "cancel": "/stop_form"}
# What Rasa is sent on /start: its default `restart` intent clears the dialogue (forms,
# slots), so a conversation in any state starts clean.
RESTART_PAYLOAD = "/restart"
# How long a message is kept for Rasa to come back (RASA_HOLD_WINDOW).
HOLD_WINDOW = 120.0
# A message stamped (Telegram: whole seconds) up to this long before the notice was sent is
# still one the user sent knowing the assistant was waiting.
STAMP_SLACK = 1.0
# A gateway touches the inbox rows of the messages it has this often; a row untouched for
# STALE_AFTER seconds (its gateway is gone) is taken over by another; every RECOVER_EVERY
# seconds a gateway looks for such rows.
HEARTBEAT = 5.0
STALE_AFTER = 30.0
RECOVER_EVERY = 5.0
# The claims of handled update ids (repeated deliveries) are kept this long, pruned this often.
KEEP_PROCESSED_UPDATES = dt.timedelta(days=2)
PRUNE_EVERY = 3600.0
# How a recovered answer reaches the user: (chat id, replies).
SendTo = Callable[[int, list[Reply]], Awaitable[None]]
# How a channel handles a message it received (and a gateway that is gone never started) again.
Replay = Callable[[InboxView], Awaitable[None]]


@dataclass
class Incoming:
    channel: str  # a store.kinds.Channel: telegram | local
    external_id: str  # the Telegram user id
    text: str
    chat_id: int | None = None
    display_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_payload: bool = False  # a button press: the text is a Rasa payload, not user prose
    shown_text: str | None = None  # what the user saw (button title) for the transcript
    # When the message arrived (epoch seconds; Telegram's message date), for the hold window.
    received_at: float | None = None
    # Sends a message to the user now, in the middle of a turn (the "please wait" notice).
    notify: Callable[[list[Reply]], Awaitable[None]] | None = field(default=None, repr=False)
    inbox_id: int | None = None  # its row in the store's inbox, recorded on receipt (durable)

    @property
    def conversation(self) -> tuple[str, str]:
        return self.channel, self.external_id


@dataclass
class TurnResult:
    user: UserView
    language: str
    replies: list[Reply] = field(default_factory=list)
    paused: bool = False  # staff have this conversation: nothing went to Rasa


@dataclass
class Outage:
    """What one user was told while Rasa was unreachable."""
    told_at: float  # the "please wait" notice
    ended_at: float | None = None  # they were asked to send a message again


@dataclass
class Hold:
    """The message's inbox row (store.inbox), once it has one, and its state there."""
    id: int | None = None
    state: str | None = None


class PerUserLocks:
    """One FIFO lock per conversation (or chat), dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    async def __call__(self, key: Hashable):
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            await lock.acquire()
        except BaseException:
            self._release(key, acquired=False)
            raise
        return _Held(self, key)

    def _release(self, key: Hashable, acquired: bool = True) -> None:
        lock, users = self._locks[key]
        if acquired:
            lock.release()
        if users <= 1:
            del self._locks[key]
        else:
            self._locks[key] = (lock, users - 1)


class _Held:
    def __init__(self, locks: PerUserLocks, key: Hashable) -> None:
        self.locks, self.key = locks, key

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_exc) -> None:
        self.locks._release(self.key)


class ConversationService:
    def __init__(self, db: Database, rasa: RasaClient, hold_window: float = HOLD_WINDOW,
                 durable: bool = False) -> None:
        self.db = db
        self.rasa = rasa
        self.hold_window = hold_window
        # Messages in the store's inbox (see the module's docstring), as `holder`.
        self.durable = durable
        self.holder = inbox.new_holder()
        self.heartbeat, self.stale_after, self.recover_every = HEARTBEAT, STALE_AFTER, RECOVER_EVERY
        # Inbox rows this process has and has not released: touched by the heartbeat.
        self.inbox_ids: set[int] = set()
        self._heartbeat: asyncio.Task | None = None
        self._recovery: asyncio.Task | None = None
        self._resuming: set[asyncio.Task] = set()
        # After this long without an answer the user is told their message is kept (RASA_TIMEOUT).
        self.notice_after = getattr(rasa, "timeout", 0.0) or 4.5
        self._turns = PerUserLocks()  # one turn at a time per user, in arrival order
        self._outages: dict[str, Outage] = {}  # sender id -> what they were told
        self._rasa_back: asyncio.Event | None = None  # set by the poller when Rasa answers
        self._poller: asyncio.Task | None = None
        self._waiting_for_rasa = 0

    async def in_thread(self, fn, *args, **kwargs):
        # The store is synchronous SQLAlchemy; keep the event loop free for other chats.
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def user_for(self, incoming: Incoming) -> UserView:
        return await self.in_thread(
            users.upsert_user,
            self.db,
            incoming.channel,
            incoming.external_id,
            chat_id=incoming.chat_id,
            display_name=incoming.display_name,
            username=incoming.username,
            telegram_language_code=incoming.language_code,
            default_language=i18n.normalise(incoming.language_code),
        )

    async def handle(self, incoming: Incoming) -> TurnResult:
        if incoming.received_at is None:
            incoming = replace(incoming, received_at=time.time())
        arrived = time.monotonic()  # RASA_TIMEOUT counts from here
        # Taken before the first await: a user's messages are handled one at a time, in order.
        async with await self._turns(incoming.conversation):
            return await self._handle(incoming, arrived)

    async def _handle(self, incoming: Incoming, arrived: float) -> TurnResult:
        def decide_language(current: str, chosen: bool) -> str:
            # A language the user chose (/language, a language button) holds until they choose
            # again; until then a message clearly in the other language switches it.
            return current if incoming.is_payload or chosen else i18n.detect(incoming.text, current)

        user, line_id = await self.in_thread(
            conversations.start_turn,
            self.db,
            incoming.channel,
            incoming.external_id,
            incoming.shown_text or incoming.text,
            decide_language,
            chat_id=incoming.chat_id,
            display_name=incoming.display_name,
            username=incoming.username,
            telegram_language_code=incoming.language_code,
            default_language=i18n.normalise(incoming.language_code),
            inbox_id=incoming.inbox_id,
            rasa_text=incoming.text.strip()[:MAX_NLU_CHARS],
        )
        language = user.language
        hold = Hold(incoming.inbox_id, inbox.SENDING if incoming.inbox_id is not None else None)
        if user.paused:  # its inbox row went in that transaction
            self.inbox_ids.discard(hold.id or 0)
            return TurnResult(user=user, language=language, paused=True)
        text = incoming.text.strip()
        intent: tuple[int, str, float | None] | None = None
        replies = [Reply(text=i18n.t("empty_message", language))]
        try:
            if text:
                answer = await self.ask_rasa(user, language, text[:MAX_NLU_CHARS], incoming, arrived, hold)
                # the turn latency metric: from the message's arrival, store and Rasa included
                metrics.observe_turn(incoming.channel, language, time.monotonic() - arrived, answer.intent)
                replies = answer.replies
                if answer.intent and line_id is not None:
                    intent = (line_id, answer.intent, answer.confidence)
            await self.record_replies(user, language, replies, incoming.chat_id, intent=intent,
                                      release_held=hold.id)
        finally:
            # Unanswered (the store failed): no longer touched, so taken over once stale.
            self.inbox_ids.discard(hold.id or 0)
        return TurnResult(user=user, language=language, replies=replies)

    async def ask_rasa(self, user: UserView, language: str, text: str,
                       incoming: Incoming | None = None, arrived: float | None = None,
                       hold: Hold | None = None) -> RasaAnswer:
        """Rasa's answer, holding the message while Rasa is unreachable. `hold`: the message's
        row in the store is kept there (durable); the caller releases it with the answer."""
        incoming = incoming or Incoming("", "", text)
        arrived = arrived or time.monotonic()
        received = incoming.received_at or time.time()
        deadline = received + self.hold_window
        notices: list[Reply] = []  # the notice, when there is no way to send it at once

        async def tell_waiting() -> None:
            outage = self._outages.get(user.sender_id)
            if outage and outage.told_at <= received + STAMP_SLACK and (
                outage.ended_at is None or received < outage.ended_at
            ):
                return  # told once per outage: this message was sent after the notice
            self._outages[user.sender_id] = Outage(time.time())
            notice = Reply(text=i18n.t("rasa_waiting", language))
            if incoming.notify is not None:
                try:
                    await incoming.notify([notice])  # first: the user waits, the transcript can
                except Exception:  # the channel failed too; the turn still waits for Rasa
                    logger.exception("could not tell %s to wait", user.sender_id)
            else:
                notices.append(notice)
            await self.record_replies(user, language, [notice], incoming.chat_id)

        async def keep(state: str) -> None:
            """The message's row in the store: HELD (Rasa did not take it) or SENDING."""
            if not self.durable or hold is None or hold.state == state:
                return
            try:
                if hold.id is None:
                    hold.id = await self.in_thread(
                        inbox.keep, self.db, self.holder, user.id, text,
                        (incoming.shown_text or incoming.text)[:MAX_NLU_CHARS], language,
                        dt.datetime.fromtimestamp(received, dt.UTC), incoming.chat_id, state)
                    self.track(hold.id)
                else:
                    await self.in_thread(inbox.mark, self.db, hold.id, state)
                hold.state = state
            except Exception:  # the store is failing too: the message is still held in memory
                logger.warning("could not keep the held message of %s in the store", user.sender_id,
                               exc_info=True)

        pause = 0.5
        while True:
            if hold is not None and hold.id is not None:
                await keep(inbox.SENDING)  # if the gateway dies now, Rasa may have taken it
            # The language goes with the message: Rasa's gateway channel sets the slot from it.
            sending = asyncio.ensure_future(self.rasa.send(
                user.sender_id, text, metadata={"language": language, "channel": "gateway"},
                timeout=max(deadline - time.time(), self.notice_after),
            ))
            try:
                # Slow: told RASA_TIMEOUT after the message arrived (the store's work included).
                done, _ = await asyncio.wait(
                    {sending}, timeout=max(arrived + self.notice_after - time.monotonic(), 0.1))
                if not done:  # slow: tell the user, and keep waiting for this answer
                    await keep(inbox.SENDING)
                    await tell_waiting()
                answer = await sending
                break
            except RasaUnreachable:
                # Rasa did not take the message: keep it until Rasa is back, then send it again.
                await keep(inbox.HELD)
                await tell_waiting()
                if time.time() >= deadline or not await self._until_rasa_is_back(deadline):
                    return self._send_again(user, language, notices,
                                            f"Rasa was unreachable for the whole window ({self.hold_window:.0f} s)")
                await asyncio.sleep(min(pause, max(deadline - time.time(), 0)))  # a flapping server
                pause = min(pause * 2, 5.0)
            except RasaUnavailable:
                # Rasa had the message for the whole window: asking again could answer it twice.
                return self._send_again(user, language, notices,
                                        "Rasa took the message and gave no answer (timeout or a bad answer)")
            finally:
                if not sending.done():
                    sending.cancel()
        self._outages.pop(user.sender_id, None)
        if answer.reset:
            logger.error("Rasa's circuit breaker stopped a turn of %s (%d messages); its dialogue "
                         "was reset", user.sender_id, len(answer.replies))
            answer.replies = [Reply(text=i18n.t("dialogue_reset", language))]
        if not answer.replies and answer.action_failed:
            # The action server is down or died mid-action (the launcher restarts it).
            logger.error("action %s failed for %s", answer.action_failed, user.sender_id)
            answer.replies = [Reply(text=i18n.t("action_failed", language))]
        if not answer.replies:
            # Silence is a dialogue bug too; the user still gets an answer.
            logger.error("Rasa answered %s with no message (intent %s)", user.sender_id, answer.intent)
            answer.replies = [Reply(text=i18n.t("no_answer", language))]
        answer.replies = notices + bounded(answer.replies, user.sender_id)
        return answer

    def _send_again(self, user: UserView, language: str, notices: list[Reply], why: str) -> RasaAnswer:
        # The log says what happened: a read timeout is not a 120-s outage.
        logger.error("%s: %s is asked to send a message again", why, user.sender_id)
        outage = self._outages.get(user.sender_id)
        if outage and outage.ended_at is None:
            outage.ended_at = time.time()
        return RasaAnswer(notices + [Reply(text=i18n.t("rasa_send_again", language))])

    async def _until_rasa_is_back(self, deadline: float) -> bool:
        """Wait until Rasa answers /status (one poller for all waiting users); False at the deadline."""
        if self._rasa_back is None:
            self._rasa_back = asyncio.Event()
            self._poller = asyncio.get_running_loop().create_task(self._poll_rasa(self._rasa_back))
        back = self._rasa_back
        self._waiting_for_rasa += 1
        try:
            await asyncio.wait_for(back.wait(), max(deadline - time.time(), 0))
            return True
        except TimeoutError:
            return False
        finally:
            self._waiting_for_rasa -= 1

    async def _poll_rasa(self, back: asyncio.Event) -> None:
        pause = 0.25
        try:
            while self._waiting_for_rasa > 0:
                if await self.rasa.status():
                    back.set()
                    return
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)
        except Exception:  # the client was closed at shutdown
            logger.debug("stopped polling Rasa's status", exc_info=True)
        finally:
            if self._rasa_back is back:
                self._rasa_back = None

    async def record_replies(
        self, user: UserView, language: str, replies: list[Reply], chat_id: int | None,
        intent: tuple[int, str, float | None] | None = None, release_held: int | None = None,
    ) -> None:
        """The answer's lines, and the intent Rasa gave the user's line, in one transaction
        (with the release of the inbox row of the message they answer)."""
        texts = [
            (reply.text + ("\n" + " | ".join(f"[{b.title}]" for b in reply.buttons) if reply.buttons else "")).strip()
            for reply in replies
        ]
        if texts or intent or release_held is not None:
            await self.in_thread(
                conversations.record_lines, self.db, user.id, texts, chat_id=chat_id, language=language,
                intent=intent, release_held=release_held,
            )

    # --- the inbox: messages that outlive the gateway (store.inbox) ----------------------------

    def track(self, inbox_id: int) -> None:
        """An inbox row this process has (received, or taken over): touched until released."""
        self.inbox_ids.add(inbox_id)
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat())

    async def release(self, inbox_id: int) -> None:
        """A row nothing released in a turn's transaction (a command, a sticker): handled."""
        if inbox_id in self.inbox_ids:
            await self.in_thread(inbox.release_all, self.db, [inbox_id])
            self.inbox_ids.discard(inbox_id)

    async def _beat(self) -> None:
        """Touch the rows this process has, so that no other gateway takes them over."""
        while self.inbox_ids:
            await asyncio.sleep(self.heartbeat)
            try:
                await self.in_thread(inbox.touch, self.db, sorted(self.inbox_ids))
            except Exception:
                logger.warning("could not touch the inbox rows in the store", exc_info=True)

    async def start_recovery(self, channel: str, send: SendTo, replay: Replay | None = None) -> None:
        """Take over what gateways that are gone received and did not answer (now, then every
        RECOVER_EVERY seconds)."""
        await self.resume_held(channel, send, replay)

        async def again() -> None:
            prune_at = time.monotonic()
            while True:
                await asyncio.sleep(self.recover_every)
                try:
                    await self.resume_held(channel, send, replay)
                except Exception:  # the store is failing: next round
                    logger.warning("could not look for unanswered messages", exc_info=True)
                if time.monotonic() >= prune_at:
                    prune_at = time.monotonic() + PRUNE_EVERY
                    try:
                        await self.in_thread(conversations.prune_processed_updates, self.db,
                                             dt.datetime.now(dt.UTC) - KEEP_PROCESSED_UPDATES)
                    except Exception:  # the store is failing: in an hour
                        logger.warning("could not prune the handled update ids", exc_info=True)

        self._recovery = asyncio.get_running_loop().create_task(again())

    async def stop_recovery(self) -> None:
        for task in [self._recovery, self._heartbeat, *self._resuming]:
            if task is not None:
                task.cancel()
        for task in [self._recovery, self._heartbeat, *self._resuming]:
            if task is not None:
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        # What is still held stays in the store: the next gateway takes it over.

    async def resume_held(self, channel: str, send: SendTo, replay: Replay | None = None) -> int:
        """Take over the inbox rows of `channel` whose gateway is gone and answer them, per user
        in order: each user's turn lock is queued for at once, before their next message, for
        the rows answered here; then the rows only received are handed to `replay`, in order
        (the channel handles them as it handles a message, so they queue behind those)."""
        rows = await self.in_thread(inbox.take_over, self.db, channel, self.holder, self.stale_after,
                                    sorted(self.inbox_ids))
        here: dict[str, list[InboxView]] = {}
        again: list[InboxView] = []
        for row in rows:
            self.track(row.id)
            if (replay is not None and row.state == inbox.RECEIVED and row.payload is not None
                    and time.time() < row.received_at.timestamp() + self.hold_window):
                again.append(row)
            else:
                here.setdefault(row.external_id, []).append(row)
        for user_rows in here.values():
            logger.warning("answering %d message(s) of %s:%s left by a gateway that is gone",
                           len(user_rows), channel, user_rows[0].external_id)
            task = asyncio.get_running_loop().create_task(self._resume(user_rows, send))
            self._resuming.add(task)
            task.add_done_callback(self._resuming.discard)
        if again:
            logger.warning("handling %d message(s) received by a gateway that is gone", len(again))
        for row in again:
            assert replay is not None
            await replay(row)
        return len(rows)

    async def _resume(self, rows: list[InboxView], send: SendTo) -> None:
        async with await self._turns((rows[0].channel, rows[0].external_id)):
            for row in rows:
                try:
                    await self._resume_one(row, send)
                except Exception:
                    logger.exception("could not answer the inbox message %d of %s:%s", row.id, row.channel,
                                     row.external_id)
                    try:  # not a message to try again every STALE_AFTER seconds: ask for it
                        await self._resume_one(row, send, ask_again=True)
                    except Exception:  # the store is failing: taken over again once stale
                        logger.warning("inbox message %d of %s:%s left for later", row.id, row.channel,
                                       row.external_id)
                finally:
                    self.inbox_ids.discard(row.id)

    async def _resume_one(self, row: InboxView, send: SendTo, ask_again: bool = False) -> None:
        if row.sender_id is not None:
            user = await self.in_thread(users.get_user, self.db, row.sender_id)
        else:  # only received: the turn never started (the user may be new)
            user = await self.in_thread(users.upsert_user, self.db, row.channel, row.external_id,
                                        chat_id=row.chat_id)
        received = row.received_at.timestamp()
        if user is None or user.paused:
            # Forgotten since, or staff have the conversation (they see the message in it).
            await self.in_thread(inbox.release_all, self.db, [row.id])
            return
        language = row.language or user.language
        if row.state == inbox.HELD and time.time() < received + self.hold_window and not ask_again:
            # The user was told to wait before the gateway went: no second notice.
            outage = self._outages.get(user.sender_id)
            if outage is None or outage.told_at > received:
                self._outages[user.sender_id] = Outage(told_at=received)
            incoming = Incoming(row.channel, row.external_id, row.text, chat_id=row.chat_id,
                                shown_text=row.shown_text, received_at=received)
            answer = await self.ask_rasa(user, language, row.text, incoming, hold=Hold(row.id, row.state))
            replies = answer.replies
        else:
            shown = row.shown_text if len(row.shown_text) <= 200 else row.shown_text[:199] + "…"
            if row.state == inbox.SENDING:
                # It may have reached Rasa: sending it again could answer it twice (a booking).
                replies = [Reply(text=i18n.t("inbox_may_be_unanswered", language, text=shown))]
            elif shown:  # past the window (or it cannot be handled again here)
                replies = [Reply(text=i18n.t("held_send_again", language, text=shown))]
            else:  # a sticker, a photo: nothing to quote
                replies = [Reply(text=i18n.t("rasa_send_again", language))]
        await self.record_replies(user, language, replies, row.chat_id, release_held=row.id)
        if row.chat_id is not None:
            await send(row.chat_id, replies)

    def record_replies_sync(
        self, user_id: int, language: str, text: str, chat_id: int | None,
        direction: str = "out", staff_name: str | None = None,
    ) -> None:
        conversations.record_lines(
            self.db, user_id, [text], direction=direction, chat_id=chat_id, language=language,
            staff_name=staff_name,
        )

    async def say(self, user: UserView, language: str, key: str, chat_id: int | None = None, **values) -> Reply:
        """A text the gateway says itself (from i18n), written to the transcript."""
        reply = Reply(text=i18n.t(key, language, **values))
        await self.record_replies(user, language, [reply], chat_id)
        return reply

    # --- commands and buttons shared by every channel --------------------------------------

    async def command(self, incoming: Incoming, name: str, args: list[str] | None = None) -> TurnResult:
        """A command the user typed (`name` without the slash, lower case)."""
        args = args or []
        if name == "start":
            return await self.start(incoming)
        if name in RASA_COMMANDS:
            return await self.handle(
                replace(incoming, text=RASA_COMMANDS[name], is_payload=True, shown_text=f"/{name}")
            )
        if name == "language":
            choice = args[0].lower() if args else ""
            if choice in ("en", "english", "zh", "chinese", "中文"):
                return await self.choose_language(incoming, "zh" if choice in ("zh", "chinese", "中文") else "en")
            return await self.reply_with(incoming, "choose_language", buttons=language_buttons())
        if name == "forget":
            user = await self.user_for(incoming)
            buttons = [Button(i18n.t("forget_yes", user.language), FORGET_YES),
                       Button(i18n.t("forget_no", user.language), FORGET_NO)]
            # Not written to the transcript: the user may be about to delete it.
            return TurnResult(user, user.language, [Reply(i18n.t("forget_confirm", user.language), buttons)])
        return await self.reply_with(incoming, "help" if name == "help" else "unknown_command")

    async def press(self, incoming: Incoming, payload: str, title: str | None = None) -> TurnResult:
        """A button press: the gateway's own buttons here, Rasa's payloads to Rasa."""
        if payload.startswith(LANG_PREFIX):
            return await self.choose_language(incoming, payload[len(LANG_PREFIX):])
        if payload in (FORGET_YES, FORGET_NO):
            if payload == FORGET_YES:
                return await self.forget(incoming)
            user = await self.user_for(incoming)
            return TurnResult(user, user.language, [Reply(i18n.t("forget_kept", user.language))])
        return await self.handle(replace(incoming, text=payload, is_payload=True, shown_text=title))

    async def start(self, incoming: Incoming) -> TurnResult:
        """/start: a clean dialogue in Rasa (whatever state it was in), then the welcome."""
        user = await self.user_for(incoming)
        if not user.paused:  # staff have the conversation: theirs to hand back
            try:
                await self.rasa.send(user.sender_id, RESTART_PAYLOAD,
                                     metadata={"language": user.language, "channel": "gateway"})
            except RasaUnavailable:
                logger.warning("could not restart Rasa's dialogue for %s", user.sender_id)
        reply = await self.say(user, user.language, "welcome", incoming.chat_id)
        reply.buttons = language_buttons()
        return TurnResult(user=user, language=user.language, replies=[reply])

    async def reply_with(self, incoming: Incoming, key: str, buttons: list[Button] | None = None) -> TurnResult:
        user = await self.user_for(incoming)
        reply = await self.say(user, user.language, key, incoming.chat_id)
        reply.buttons = buttons or []
        return TurnResult(user=user, language=user.language, replies=[reply])

    async def choose_language(self, incoming: Incoming, language: str) -> TurnResult:
        user = await self.user_for(incoming)
        language = i18n.normalise(language)
        await self.in_thread(users.set_language, self.db, user.id, language, chosen=True)
        reply = await self.say(user, language, "language_set", incoming.chat_id)
        return TurnResult(user=user, language=language, replies=[reply])

    async def forget(self, incoming: Incoming) -> TurnResult:
        user = await self.user_for(incoming)
        language = user.language
        report = await self.in_thread(conversations.forget_user, self.db, user.sender_id)
        try:
            await self.rasa.forget(user.sender_id)
        except RasaUnavailable:
            logger.warning("could not reset Rasa's tracker for %s", user.sender_id)
        if report is None:
            text = i18n.t("forget_nothing", language)
        else:
            text = i18n.t("forget_done", language, **report.__dict__)
        # Nothing is written to the transcript: the user just asked us to forget them.
        return TurnResult(user=user, language=language, replies=[Reply(text=text)])


def language_buttons() -> list[Button]:
    return [Button(title="English", payload=f"{LANG_PREFIX}en"), Button(title="中文", payload=f"{LANG_PREFIX}zh")]


def bounded(replies: list[Reply], sender: str) -> list[Reply]:
    """At most MAX_REPLIES messages, none repeated; anything more is a dialogue bug: logged."""
    kept: list[Reply] = []
    seen: set[tuple] = set()
    for reply in replies:
        key = (reply.text, tuple((b.title, b.payload) for b in reply.buttons), repr(reply.custom))
        if key not in seen:
            seen.add(key)
            kept.append(reply)
    if len(kept) < len(replies) or len(kept) > MAX_REPLIES:
        logger.error("Rasa answered %s with %d messages (%d distinct); sending %d",
                     sender, len(replies), len(kept), min(len(kept), MAX_REPLIES))
    return kept[:MAX_REPLIES]
