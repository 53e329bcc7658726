"""WeChat on 127.0.0.1 for tests, both sides of it.

`FakeWeChatApi` is WeChat's server API (`/cgi-bin/token`, `/cgi-bin/message/custom/send`): it
issues access tokens, refuses expired or unknown ones with WeChat's errcodes, and records every
message sent. `WeChatUsers` is WeChat calling the account's callback URL: it signs (plain mode)
or encrypts and signs (safe mode, with wechatpy's WeChatCrypto, as WeChat does) each message.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

from tests.fakes.bot_api import free_port

APP_ID = "wx0123456789abcdef"
APP_SECRET = "test-secret"
TOKEN = "test-callback-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as WeChat gives
ACCOUNT = "gh_0123456789ab"  # the account's own id (ToUserName)
_MSG_IDS = itertools.count(int(time.time()) * 1000)


@dataclass
class Sent:
    touser: str
    msgtype: str
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)

    @property
    def text(self) -> str:
        if self.msgtype == "text":
            return self.body["text"]["content"]
        if self.msgtype == "msgmenu":
            menu = self.body["msgmenu"]
            return "\n".join([menu.get("head_content", ""), *(i["content"] for i in menu["list"]),
                              menu.get("tail_content", "")]).strip()
        return json.dumps(self.body, ensure_ascii=False)

    @property
    def items(self) -> list[dict[str, str]]:
        return self.body["msgmenu"]["list"] if self.msgtype == "msgmenu" else []


class FakeWeChatApi:
    def __init__(self, app_id: str = APP_ID, secret: str = APP_SECRET, expires_in: int = 7200) -> None:
        self.app_id, self.secret, self.expires_in = app_id, secret, expires_in
        self.port = free_port()
        self.tokens: dict[str, float] = {}  # token -> when it expires (monotonic)
        self.token_requests = 0
        self.refused: list[int] = []  # errcodes answered to send calls
        self.sent: list[Sent] = []
        self.raw_bodies: list[bytes] = []
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = Starlette(routes=[
            Route("/cgi-bin/token", self._token, methods=["GET"]),
            Route("/cgi-bin/message/custom/send", self._send, methods=["POST"]),
        ])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                     lifespan="off"))
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server:
            self._server.should_exit = True
            await self._task

    def expire_tokens(self) -> None:
        """Every token issued so far expires now (WeChat's tokens live 7200 s)."""
        for token in self.tokens:
            self.tokens[token] = 0.0

    async def _token(self, request: Request) -> JSONResponse:
        query = request.query_params
        if query.get("grant_type") != "client_credential" or query.get("appid") != self.app_id:
            return JSONResponse({"errcode": 40013, "errmsg": "invalid appid"})
        if query.get("secret") != self.secret:
            return JSONResponse({"errcode": 40125, "errmsg": "invalid appsecret"})
        self.token_requests += 1
        token = f"ACCESS-{self.token_requests}-{time.monotonic_ns()}"
        self.tokens[token] = time.monotonic() + self.expires_in
        return JSONResponse({"access_token": token, "expires_in": self.expires_in})

    async def _send(self, request: Request) -> JSONResponse:
        token = request.query_params.get("access_token", "")
        if token not in self.tokens:
            self.refused.append(40001)
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"})
        if self.tokens[token] <= time.monotonic():
            self.refused.append(42001)
            return JSONResponse({"errcode": 42001, "errmsg": "access_token expired"})
        raw = await request.body()
        self.raw_bodies.append(raw)
        body = json.loads(raw.decode("utf-8"))
        if body.get("msgtype") not in ("text", "msgmenu") or not body.get("touser"):
            return JSONResponse({"errcode": 40008, "errmsg": "invalid message type"})
        if body["msgtype"] == "text" and len(body["text"]["content"].encode()) > 2048:
            return JSONResponse({"errcode": 45002, "errmsg": "content size out of limit"})
        self.sent.append(Sent(body["touser"], body["msgtype"], body))
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    # --- reading what was sent ---------------------------------------------------------------

    def to(self, openid: str) -> list[Sent]:
        return [s for s in self.sent if s.touser == openid]

    def texts(self, openid: str) -> list[str]:
        return [s.text for s in self.to(openid)]

    async def wait_for(self, predicate, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; sent so far: {[s.text[:80] for s in self.sent[-8:]]}")
            await asyncio.sleep(0.05)


class WeChatUsers:
    """WeChat's side of the callback: builds, signs (and in safe mode encrypts) and posts messages."""

    def __init__(self, url: str, token: str = TOKEN, aes_key: str | None = None, app_id: str = APP_ID) -> None:
        self.url, self.token = url, token
        self.crypto = WeChatCrypto(token, aes_key, app_id) if aes_key else None
        self.client = httpx.AsyncClient(timeout=10)

    async def close(self) -> None:
        await self.client.aclose()

    def sign(self, timestamp: str, nonce: str) -> str:
        signer = WeChatSigner()
        signer.add_data(self.token, timestamp, nonce)
        return signer.signature

    @staticmethod
    def xml(openid: str, fields: dict[str, Any]) -> str:
        def value(v: Any) -> str:
            return str(v) if isinstance(v, int) else f"<![CDATA[{v}]]>"
        parts = {"ToUserName": ACCOUNT, "FromUserName": openid, "CreateTime": int(time.time()), **fields}
        return "<xml>" + "".join(f"<{k}>{value(v)}</{k}>" for k, v in parts.items()) + "</xml>"

    async def post(self, openid: str, fields: dict[str, Any], *, signature: str | None = None) -> httpx.Response:
        timestamp, nonce = str(int(time.time())), f"n{next(_MSG_IDS)}"
        xml = self.xml(openid, fields)
        params = {"signature": signature or self.sign(timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                  "openid": openid}
        if self.crypto:
            encrypted = self.crypto.encrypt_message(xml, nonce, timestamp)
            # WeChat's own envelope: only ToUserName and Encrypt; the signature goes in the query.
            import xmltodict
            parsed = xmltodict.parse(encrypted)["xml"]
            body = (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
                    f"<Encrypt><![CDATA[{parsed['Encrypt']}]]></Encrypt></xml>")
            params.update(encrypt_type="aes", msg_signature=signature or parsed["MsgSignature"])
            return await self.client.post(self.url, params=params, content=body.encode())
        return await self.client.post(self.url, params=params, content=xml.encode())

    @staticmethod
    def new_msg_id() -> int:
        return next(_MSG_IDS)

    async def text(self, openid: str, content: str, msg_id: int | None = None, **extra: Any) -> httpx.Response:
        return await self.post(openid, {"MsgType": "text", "Content": content, **extra,
                                        "MsgId": msg_id or self.new_msg_id()})

    async def voice(self, openid: str, recognition: str) -> httpx.Response:
        return await self.post(openid, {"MsgType": "voice", "MediaId": "media-1", "Format": "amr",
                                        "Recognition": recognition, "MsgId": self.new_msg_id()})

    async def event(self, openid: str, event: str) -> httpx.Response:
        return await self.post(openid, {"MsgType": "event", "Event": event})

    async def other(self, openid: str, kind: str, signature: str | None = None, **fields: Any) -> httpx.Response:
        return await self.post(openid, {"MsgType": kind, **fields, "MsgId": self.new_msg_id()}, signature=signature)
