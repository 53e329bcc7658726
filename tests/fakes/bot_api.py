"""A Telegram Bot API server on 127.0.0.1 for tests: feeds updates, records every call.

PTB's `base_url` points at it, so the gateway's real HTTP code runs; nothing reaches Telegram.

Faults: `inject(method, *faults)` makes the next calls of a Bot API method fail, one fault per
call, before the call is handled (so nothing was done): "429" (Too Many Requests with
retry_after), "502" (a proxy's Bad Gateway, HTML body), "drop" (the connection is closed after
the status line: the client sees a broken response).
"""
from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

BOT_ID = 7000001
BOT_USERNAME = "score_test_bot"
TOKEN = f"{BOT_ID}:TEST-token"
# Telegram's update ids only grow for a bot; tests share a store, so ids are global here too.
_UPDATE_IDS = itertools.count(int(time.time()) % 1_000_000 * 1000)
# Telegram never reuses a message id in a chat, and the store remembers which staff-group
# message belongs to which handoff: ids are global here too, or a later test's alert would
# be found as an earlier test's (resolved) handoff.
_MESSAGE_IDS = itertools.count(100)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    result: Any = None


class FakeBotApi:
    def __init__(self, token: str = TOKEN, message_ids: Iterator[int] | None = None) -> None:
        """`message_ids`: share one counter between two fakes that stand for the same Bot API
        (two gateway replicas), so a message id names one message, as on Telegram."""
        self.token = token
        self.port = free_port()
        self.calls: list[Call] = []
        self.updates: list[dict[str, Any]] = []
        self.repeats: list[dict[str, Any]] = []  # delivered again by the next getUpdates (repeat())
        self.confirmed = 0  # the highest offset a getUpdates confirmed: Telegram forgets updates below it
        self._update_ids = _UPDATE_IDS
        self._message_ids = message_ids if message_ids is not None else _MESSAGE_IDS
        self._new_update = asyncio.Event()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task | None = None
        self.reject_token = False
        self.faults: dict[str, deque[str]] = defaultdict(deque)
        self.faulted: list[tuple[str, str]] = []  # (method, fault) as they happened
        self.retry_after = 1

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    # --- server --------------------------------------------------------------------------

    async def start(self) -> None:
        app = Starlette(routes=[Route("/bot{token}/{method}", self._dispatch, methods=["GET", "POST"])])
        config = uvicorn.Config(
            self._with_faults(app), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task

    # --- fault injection --------------------------------------------------------------------

    def inject(self, method: str, *faults: str) -> None:
        for fault in faults:
            assert fault in ("429", "502", "drop"), fault
            self.faults[method].append(fault)

    def _with_faults(self, app):
        async def asgi(scope, receive, send):
            if scope["type"] == "http":
                method = scope["path"].rsplit("/", 1)[-1]
                if self.faults.get(method):
                    fault = self.faults[method].popleft()
                    self.faulted.append((method, fault))
                    return await self._fail(fault, send)
            await app(scope, receive, send)

        return asgi

    async def _fail(self, fault: str, send) -> None:
        if fault == "429":
            body = json.dumps({"ok": False, "error_code": 429,
                               "description": f"Too Many Requests: retry after {self.retry_after}",
                               "parameters": {"retry_after": self.retry_after}}).encode()
            status, kind = 429, b"application/json"
        elif fault == "502":
            body, status, kind = b"<html><body><h1>502 Bad Gateway</h1></body></html>", 502, b"text/html"
        else:  # drop: promise a body, send none, return: uvicorn closes the connection
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")]})
            return
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _dispatch(self, request: Request) -> JSONResponse:
        token, method = request.path_params["token"], request.path_params["method"]
        params = await self._params(request)
        if token != self.token or self.reject_token:
            return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"}, status_code=401)
        call = Call(method, params)
        self.calls.append(call)
        handler = getattr(self, f"api_{method}", None)
        result = await handler(params) if handler else True
        call.result = result
        return JSONResponse({"ok": True, "result": result})

    @staticmethod
    async def _params(request: Request) -> dict[str, Any]:
        if request.headers.get("content-type", "").startswith("application/json"):
            raw = await request.json()
        else:
            raw = dict(await request.form())
        params: dict[str, Any] = {}
        for key, value in raw.items():
            if isinstance(value, str) and value[:1] in "{[":
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            params[key] = value
        return params

    # --- Bot API methods -----------------------------------------------------------------

    async def api_getMe(self, params):
        return {"id": BOT_ID, "is_bot": True, "first_name": "SCORE", "username": BOT_USERNAME,
                "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}

    async def api_getUpdates(self, params):
        # A confirmed update is gone for good, even if a client asks from an older offset (as
        # it does after getting a repeated update).
        self.confirmed = offset = max(int(params.get("offset") or 0), self.confirmed)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 1.0)
        while True:
            pending = [u for u in self.updates if u["update_id"] >= offset]
            if self.repeats:
                pending, self.repeats = [*self.repeats, *pending], []
            if pending or time.monotonic() >= deadline:
                return pending[: int(params.get("limit") or 100)]
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), max(deadline - time.monotonic(), 0.01))
            except TimeoutError:
                pass

    async def api_sendMessage(self, params):
        return self._message(params)

    async def api_editMessageText(self, params):
        return self._message(params, message_id=int(params.get("message_id", 0)))

    async def api_editMessageReplyMarkup(self, params):
        return self._message(params, message_id=int(params.get("message_id", 0)), text="")

    async def api_getWebhookInfo(self, params):
        return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}

    def _message(self, params, message_id: int | None = None, text: str | None = None):
        chat_id = int(params["chat_id"])
        message = {
            "message_id": message_id or next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "SCORE", "username": BOT_USERNAME},
            "text": params.get("text", text or ""),
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return message

    # --- feeding updates -----------------------------------------------------------------

    def push(self, update: dict[str, Any]) -> int:
        update = {"update_id": next(self._update_ids), **update}
        self.updates.append(update)
        self._new_update.set()
        return update["update_id"]

    def repeat(self, update_id: int) -> None:
        """Deliver an update again, its offset confirmed or not, as Telegram does when the
        confirming getUpdates did not reach it (a dropped connection, a restart)."""
        original = next(u for u in self.updates if u["update_id"] == update_id)
        self.repeats.append(dict(original))
        self._new_update.set()

    @staticmethod
    def user(user_id: int, language_code: str = "en", first_name: str = "Li") -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": language_code}

    def message(self, user_id: int, text: str | None = None, *, chat_id: int | None = None,
                chat_type: str = "private", language_code: str = "en", reply_to: dict | None = None,
                first_name: str = "Li", **content: Any) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {
                "id": chat_id or user_id,
                "type": chat_type,
                **({"title": "Group"} if chat_type != "private" else {}),
            },
            "from": self.user(user_id, language_code, first_name),
            **content,
        }
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                command = text.split()[0]
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        return message

    def push_text(self, user_id: int, text: str, **kwargs: Any) -> int:
        return self.push({"message": self.message(user_id, text, **kwargs)})

    def push_callback(self, user_id: int, data: str, message: dict[str, Any], language_code: str = "en") -> int:
        return self.push({"callback_query": {
            "id": str(next(self._message_ids)),
            "from": self.user(user_id, language_code),
            "chat_instance": "ci",
            "data": data,
            "message": message,
        }})

    # --- reading what the bot did --------------------------------------------------------

    def sent(self, chat_id: int | None = None, method: str = "sendMessage") -> list[dict[str, Any]]:
        return [c.params for c in self.calls if c.method == method
                and (chat_id is None or int(c.params.get("chat_id", 0)) == chat_id)]

    def texts(self, chat_id: int) -> list[str]:
        return [p.get("text", "") for p in self.sent(chat_id)]

    def sent_message(self, chat_id: int, index: int = -1) -> dict[str, Any]:
        """A sent message as the user's client sees it (with its buttons, to press them)."""
        calls = [c for c in self.calls if c.method == "sendMessage" and int(c.params.get("chat_id", 0)) == chat_id]
        return calls[index].result

    def last_with_buttons(self, chat_id: int) -> dict[str, Any]:
        calls = [c for c in self.calls if c.method == "sendMessage"
                 and int(c.params.get("chat_id", 0)) == chat_id and c.params.get("reply_markup")]
        return calls[-1].result

    def press(self, user_id: int, message: dict[str, Any], title_part: str, language_code: str = "en") -> int:
        """Press the button whose title contains `title_part` on a sent message."""
        for row in message["reply_markup"]["inline_keyboard"]:
            for button in row:
                if title_part in button["text"]:
                    return self.push_callback(user_id, button["callback_data"], message, language_code)
        raise AssertionError(f"no button {title_part!r} in {message['reply_markup']}")

    async def wait_for(self, predicate, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"timed out; calls so far: {[(c.method, c.params.get('text', '')[:60]) for c in self.calls]}"
        )

    async def wait_sent(self, chat_id: int, count: int, timeout: float = 15.0) -> list[str]:
        await self.wait_for(lambda: len(self.sent(chat_id)) >= count, timeout)
        return self.texts(chat_id)
