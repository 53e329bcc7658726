"""The web chat server without Rasa: who may connect, the widget's files, history as the
widget shows it, the per-visitor limit, and staff replies routed to the web channel and pushed
over the visitor's socket. (The conversation itself, on real Rasa, is tests/e2e/test_webchat_browser.py.)"""
from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

import i18n
from bot.settings import BotSettings
from bot.webchat.origins import is_allowed
from bot.webchat.server import RateLimit, create_app, history_line
from bot.webchat.settings import WebchatSettings
from store import conversations, handoff as handoffs, history as transcripts, notifications, users

VISITOR = "3f0c2a9e-5b1d-4c7e-9a8b-0123456789ab"
HOST = "testserver"


def app_for(db, **settings):
    options = {"port": 1, "allowed_origins": frozenset({"https://provider.example"}),
               "notification_interval": 0.1, **settings}
    # Rasa is nowhere: these tests never need it.
    return create_app(WebchatSettings(**options), BotSettings(rasa_url="http://127.0.0.1:9", rasa_token="t"), db)


def test_origins():
    allowed = frozenset({"https://provider.example"})
    assert is_allowed("https://provider.example", "chat.provider.example", allowed)
    assert is_allowed("https://PROVIDER.example/", "x", allowed)
    assert is_allowed("http://127.0.0.1:8500", "127.0.0.1:8500", frozenset())  # its own /demo page
    assert not is_allowed("http://127.0.0.1:8501", "127.0.0.1:8500", frozenset())
    assert not is_allowed("https://evil.example", "chat.provider.example", allowed)
    assert not is_allowed(None, "chat.provider.example", allowed)
    assert not is_allowed("null", "null", allowed)


def test_files_and_foreign_origins(sqlite_db):
    with TestClient(app_for(sqlite_db)) as client:
        script = client.get("/widget.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
        assert "SCORE 助手" in script.text and "/*STRINGS*/" not in script.text
        assert "token" not in script.text.lower()  # nothing secret in the page
        assert client.get("/widget.css").status_code == 200
        demo = client.get("/demo")
        assert '<script src="/widget.js"' in demo.text and "script-src" not in demo.headers["content-security-policy"]
        assert client.get("/widget.js", headers={"Origin": "https://provider.example"}).status_code == 200
        assert client.get("/widget.js", headers={"Origin": "https://evil.example"}).status_code == 403
        for origin in ("https://evil.example", None):
            headers = {"Origin": origin} if origin else {}
            with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws", headers=headers) as ws:
                ws.receive_text()
        assert client.app.state.webchat.refused == 2


def test_history_lines_show_buttons_as_chips():
    line = transcripts.HistoryLine("out", "Choose your language:\n[English] | [中文]", None, None)
    assert history_line(line) == {"from": "bot", "text": "Choose your language:",
                                  "buttons": ["English", "中文"], "staff_name": None}
    user_line = transcripts.HistoryLine("in", "what is [x]\n[y]", None, None)
    assert history_line(user_line)["text"] == "what is [x]\n[y]"  # a visitor's text is never cut
    assert history_line(transcripts.HistoryLine("staff", "hi", "anna", None))["from"] == "staff"


def test_rate_limit_per_visitor():
    limit = RateLimit(2, 60)
    assert limit.allow("a") and limit.allow("a") and not limit.allow("a")
    assert limit.allow("b")


def test_notifications_go_to_their_channel(sqlite_db):
    web = users.upsert_user(sqlite_db, "web", VISITOR)
    tg = users.upsert_user(sqlite_db, "telegram", "12345", chat_id=12345)
    handoffs.start_handoff(sqlite_db, web.sender_id, "asked", "zh")
    handoffs.reply_as(sqlite_db, web.id, "anna", "web reply")
    handoffs.reply_as(sqlite_db, tg.id, "anna", "telegram reply")
    web_rows = notifications.claim_due(sqlite_db, "web", channels=("web",), staff_alerts=False)
    assert [(r.kind, r.payload.get("text")) for r in web_rows] == [("staff_reply", "web reply")]
    tg_rows = notifications.claim_due(sqlite_db, "tg", channels=("telegram", "local", "rest"))
    # The staff group hears of the web visitor's handoff; the web reply is not the gateway's.
    assert sorted((r.kind, r.payload.get("text")) for r in tg_rows) == [
        ("handoff_opened", None), ("staff_reply", "telegram reply")]


def test_history_and_a_staff_reply_pushed_over_the_socket(sqlite_db):
    user = users.upsert_user(sqlite_db, "web", VISITOR, default_language="zh")
    conversations.record_lines(sqlite_db, user.id, ["我想和工作人员谈谈"], direction="in", language="zh")
    conversations.record_lines(sqlite_db, user.id, ["好的，正在为您转接工作人员。\n[English] | [中文]"], language="zh")
    handoffs.start_handoff(sqlite_db, user.sender_id, "asked", "zh")
    with (
        TestClient(app_for(sqlite_db)) as client,
        client.websocket_connect("/ws", headers={"Origin": "https://provider.example"}) as ws,
    ):
        ws.send_text(json.dumps({"type": "hello", "visitor": VISITOR, "language": "en-GB"}))
        past = json.loads(ws.receive_text())
        assert past["type"] == "history" and past["language"] == "zh" and past["paused"] is True
        assert [(line["from"], line["text"], line["buttons"]) for line in past["lines"]] == [
            ("user", "我想和工作人员谈谈", []), ("bot", "好的，正在为您转接工作人员。", ["English", "中文"])]
        # Staff have the conversation: the message is kept for them, Rasa is not asked.
        ws.send_text(json.dumps({"type": "message", "text": "还在吗"}))
        assert json.loads(ws.receive_text())["type"] == "typing"
        notice = json.loads(ws.receive_text())
        assert notice["key"] == "webchat_passed_on" and "工作人员" in notice["text"]
        handoffs.reply_as(sqlite_db, user.id, "anna", "您好，我是安娜。")
        pushed = json.loads(ws.receive_text())
        assert pushed == {"type": "push", "from": "staff", "staff_name": "anna", "text": "您好，我是安娜。",
                          "buttons": []}
        ws.send_text("not json")
        assert json.loads(ws.receive_text())["key"] == "webchat_bad_message"
    lines = transcripts.history(sqlite_db, "web", VISITOR).lines
    assert [line.text for line in lines][-2:] == ["还在吗", "您好，我是安娜。"]  # the reply once, not twice


def test_a_bad_hello_is_refused(sqlite_db):
    with (
        TestClient(app_for(sqlite_db)) as client,
        client.websocket_connect("/ws", headers={"Origin": "https://provider.example"}) as ws,
    ):
        ws.send_text(json.dumps({"type": "hello", "visitor": "../../etc"}))
        with pytest.raises(WebSocketDisconnect):
            ws.receive_text()


def test_the_launcher_starts_the_web_chat_server(tmp_path, monkeypatch):
    """`python -m bot.webchat` as the launcher starts it: up, serving the widget, stopped cleanly."""
    import httpx

    from stack import processes
    from stack.settings import StackSettings
    from tests.fakes.bot_api import free_port

    port = free_port()
    monkeypatch.setenv("WEBCHAT_PORT", str(port))
    assert processes.webchat_port() == port
    settings = StackSettings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'store.db'}",
                             rasa_port=free_port(), rasa_token="t")
    server = processes.start_webchat(settings)
    try:
        processes.wait_until_up(server, f"http://127.0.0.1:{port}/health", 60)
        assert "SCORE" in httpx.get(f"http://127.0.0.1:{port}/widget.js").text
    finally:
        server.stop()
    monkeypatch.setenv("WEBCHAT_PORT", "")
    assert processes.webchat_port() == 0


def test_a_visitor_sending_too_fast_is_told_and_keeps_the_text(sqlite_db):
    user = users.upsert_user(sqlite_db, "web", VISITOR, default_language="zh")
    conversations.record_lines(sqlite_db, user.id, ["你好"], direction="in", language="zh")
    handoffs.start_handoff(sqlite_db, user.sender_id, "asked", "zh")  # staff have it: no Rasa needed
    with (
        TestClient(app_for(sqlite_db, rate=1, rate_window=60)) as client,
        client.websocket_connect("/ws", headers={"Origin": "https://provider.example"}) as ws,
    ):
        ws.send_text(json.dumps({"type": "hello", "visitor": VISITOR}))
        assert json.loads(ws.receive_text())["type"] == "history"
        ws.send_text(json.dumps({"type": "message", "text": "第一条"}))
        assert [json.loads(ws.receive_text())["type"] for _ in range(2)] == ["typing", "notice"]
        ws.send_text(json.dumps({"type": "message", "text": "第二条"}))
        slow = json.loads(ws.receive_text())
        assert slow["key"] == "webchat_slow_down" and slow["retry"] == "第二条" and "太快" in slow["text"]
    assert [line.text for line in transcripts.history(sqlite_db, "web", VISITOR).lines] == ["你好", "第一条"]


def test_a_first_visit_is_welcomed_without_writing_anything(sqlite_db):
    with TestClient(app_for(sqlite_db)) as client, client.websocket_connect(
            "/ws", headers={"Origin": "https://provider.example"}) as ws:
        ws.send_text(json.dumps({"type": "hello", "visitor": VISITOR, "language": "zh-CN"}))
        welcome = json.loads(ws.receive_text())
        assert welcome["type"] == "replies" and welcome["language"] == "zh"
        assert "SCORE 助手" in welcome["replies"][0]["text"]
        assert [b["payload"] for b in welcome["replies"][0]["buttons"]] == ["lang:en", "lang:zh"]
    assert transcripts.history(sqlite_db, "web", VISITOR) is None  # no user, no transcript


def test_connections_per_address_are_limited(sqlite_db):
    from bot.webchat import server

    with TestClient(app_for(sqlite_db)) as client:
        headers = {"Origin": "https://provider.example"}
        for _ in range(server.CONNECTIONS_PER_MINUTE):
            with client.websocket_connect("/ws", headers=headers):
                pass
        with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws", headers=headers) as ws:
            ws.receive_text()


def paused_visitor(db) -> None:
    """A visitor whose conversation staff have: a turn needs no Rasa (its answer: "passed on")."""
    user = users.upsert_user(db, "web", VISITOR, default_language="zh")
    conversations.record_lines(db, user.id, ["你好"], direction="in", language="zh")
    handoffs.start_handoff(db, user.sender_id, "asked", "zh")


@contextlib.contextmanager
def connect(client):
    with client.websocket_connect("/ws", headers={"Origin": "https://provider.example"}) as socket:
        socket.send_text(json.dumps({"type": "hello", "visitor": VISITOR}))
        assert json.loads(socket.receive_text())["type"] == "history"
        yield socket


def inbound(db) -> list[str]:
    return [line.text for line in transcripts.history(db, "web", VISITOR).lines if line.direction == "in"]


def test_a_frame_sent_again_is_answered_once(sqlite_db):
    paused_visitor(sqlite_db)
    frame = json.dumps({"type": "message", "id": "frame-0001", "text": "还在吗"})
    with TestClient(app_for(sqlite_db)) as client:
        with connect(client) as socket:
            socket.send_text(frame)
            assert json.loads(socket.receive_text())["type"] == "typing"
            answer = json.loads(socket.receive_text())
            assert answer["key"] == "webchat_passed_on" and answer["ack"] == "frame-0001"
            # The same id on the same socket: acknowledged, not answered again.
            socket.send_text(frame)
            assert json.loads(socket.receive_text()) == {"type": "ack", "id": "frame-0001", "in_history": False}
        # After a reconnect (the widget did not see the ack): the history has it; a bare ack.
        with connect(client) as socket:
            socket.send_text(frame)
            assert json.loads(socket.receive_text()) == {"type": "ack", "id": "frame-0001", "in_history": True}
        assert client.app.state.webchat.repeated == 2
    # Another server (or this one restarted) knows it from the store.
    with TestClient(app_for(sqlite_db)) as client, connect(client) as socket:
        socket.send_text(frame)
        assert json.loads(socket.receive_text()) == {"type": "ack", "id": "frame-0001", "in_history": True}
    assert inbound(sqlite_db) == ["你好", "还在吗"]


def test_a_frame_sent_again_while_its_turn_runs_gets_the_answer(sqlite_db, monkeypatch):
    """The first socket is gone before the answer, and the new one's history was read before the
    answer was written: the answer goes to the new socket, once."""
    import threading

    from bot.conversation import ConversationService

    paused_visitor(sqlite_db)
    release = threading.Event()
    handle = ConversationService.handle

    async def slow_handle(self, incoming):
        await asyncio.to_thread(release.wait, 10)
        return await handle(self, incoming)

    monkeypatch.setattr(ConversationService, "handle", slow_handle)
    frame = json.dumps({"type": "message", "id": "frame-0002", "text": "在吗"})
    try:
        with TestClient(app_for(sqlite_db)) as client, connect(client) as old:
            old.send_text(frame)
            assert json.loads(old.receive_text())["type"] == "typing"  # the turn is running
            with connect(client) as new:  # its history is read now, before the answer
                new.send_text(frame)
                release.set()
                answer = json.loads(new.receive_text())
                assert answer["key"] == "webchat_passed_on" and answer["ack"] == "frame-0002"
    finally:
        release.set()
    assert inbound(sqlite_db) == ["你好", "在吗"]


def test_a_bad_frame_id_is_refused(sqlite_db):
    paused_visitor(sqlite_db)
    with TestClient(app_for(sqlite_db)) as client, connect(client) as socket:
        socket.send_text(json.dumps({"type": "message", "id": "../x", "text": "hi"}))
        assert json.loads(socket.receive_text())["key"] == "webchat_bad_message"


def test_a_turn_that_fails_is_answered_and_acknowledged(sqlite_db, monkeypatch):
    """A bug or a store outage mid-turn: the visitor is told, the frame acknowledged (not sent
    again for ever), and the socket still takes the next message."""
    from bot.conversation import ConversationService

    paused_visitor(sqlite_db)
    handle = ConversationService.handle
    failures = [RuntimeError("a bug")]

    async def failing_handle(self, incoming):
        if failures:
            raise failures.pop()
        return await handle(self, incoming)

    monkeypatch.setattr(ConversationService, "handle", failing_handle)
    with TestClient(app_for(sqlite_db)) as client, connect(client) as socket:
        socket.send_text(json.dumps({"type": "message", "id": "frame-0003", "text": "一"}))
        assert json.loads(socket.receive_text())["type"] == "typing"
        told = json.loads(socket.receive_text())
        assert (told["key"], told["ack"], told["text"]) == ("unavailable", "frame-0003", i18n.t("unavailable", "en"))
        socket.send_text(json.dumps({"type": "message", "id": "frame-0004", "text": "二"}))
        assert json.loads(socket.receive_text())["type"] == "typing"
        assert json.loads(socket.receive_text())["ack"] == "frame-0004"


def test_a_store_down_at_the_claim_is_said_and_acknowledged(sqlite_db, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from bot.webchat import server

    paused_visitor(sqlite_db)

    def store_down(*args):
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    with TestClient(app_for(sqlite_db)) as client, connect(client) as socket:
        monkeypatch.setattr(server.conversations, "claim_update", store_down)
        socket.send_text(json.dumps({"type": "message", "id": "frame-0005", "text": "三"}))
        told = json.loads(socket.receive_text())
        assert (told["key"], told["ack"]) == ("store_unavailable", "frame-0005")
        socket.send_text(json.dumps({"type": "message", "id": "frame-0005", "text": "三"}))  # not left waiting
        assert json.loads(socket.receive_text())["id"] == "frame-0005"
