"""The website chat in a real browser (Debian Chromium through Playwright, launched as in
tests/test_console_browser.py) against the web chat server on real Rasa and action servers:
the demo page, a question in Chinese, a chip, the history after a reload, a network drop,
a handoff answered from the console; a message whose socket is cut as it is sent, answered once
after the reconnect; a page on a disallowed origin is refused.

Screenshots: docs/webchat-desktop.png, docs/webchat-phone.png and docs/webchat-pending.png with
UPDATE_SCREENSHOTS=1 (var/screenshots/ otherwise)."""
from __future__ import annotations

import asyncio
import functools
import http.server
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from bot.settings import BotSettings
from bot.webchat.server import create_app
from bot.webchat.settings import WebchatSettings
from store import conversations
from tests.console.helpers import PASSWORD, add_staff, make_app
from tests.fakes.bot_api import free_port
from tests.test_console_browser import CHROMIUM, CHROMIUM_ARGS, DOCS, ThreadedServer

pytestmark = pytest.mark.browser
WAIT = 30_000  # ms: a turn on real Rasa, on 2 shared cores


def serve(app, port: int, **config) -> tuple[ThreadedServer, threading.Thread]:
    server = ThreadedServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(1000):  # poll uvicorn's own flag, bounded
        if server.started:
            return server, thread
        thread.join(0.01)
    raise AssertionError("uvicorn did not start")


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> Iterator[dict[str, str]]:
    """Two other websites embedding the widget: one allowed, one not."""
    root = tmp_path_factory.mktemp("sites")
    allowed_port, foreign_port = free_port(), free_port()
    chat_port = free_port()
    (root / "embed.html").write_text(
        "<!doctype html><html><body><h1>A training provider</h1>"
        f'<script src="http://127.0.0.1:{chat_port}/widget.js" defer></script></body></html>',
        encoding="utf-8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    servers = []
    for port in (allowed_port, foreign_port):
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
    try:
        yield {"chat_port": str(chat_port), "allowed": f"http://127.0.0.1:{allowed_port}",
               "foreign": f"http://127.0.0.1:{foreign_port}"}
    finally:
        for httpd in servers:
            httpd.shutdown()
            httpd.server_close()


@pytest.fixture(scope="module")
def webchat(stack, sites) -> Iterator[tuple[str, object]]:
    settings = WebchatSettings(port=int(sites["chat_port"]), allowed_origins=frozenset({sites["allowed"]}),
                               notification_interval=0.3)
    bot_settings = BotSettings(rasa_url=stack.rasa_url, rasa_token=stack.settings.rasa_token)
    app = create_app(settings, bot_settings, stack.db)
    server, thread = serve(app, settings.port, lifespan="on", ws_max_size=32 * 1024)
    try:
        yield f"http://127.0.0.1:{settings.port}", app
    finally:
        server.should_exit = True
        thread.join()


@pytest.fixture(scope="module")
def console(stack) -> Iterator[tuple[str, str]]:
    staff = f"anna{uuid.uuid4().hex[:6]}"
    add_staff(stack.db, staff, "staff")
    server, thread = serve(make_app(stack.db), free_port(), lifespan="off")
    try:
        yield f"http://127.0.0.1:{server.config.port}", staff
    finally:
        server.should_exit = True
        thread.join()


@pytest.fixture
def browser(tmp_path):
    if not shutil.which("chromium") and not Path(CHROMIUM).exists():
        pytest.fail("Debian Chromium is missing: run scripts/install-browser.sh")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
            headless=True, viewport={"width": 1400, "height": 900}, locale="en-GB",
        )
        try:
            yield context
        finally:
            context.close()


def open_chat(page, name: str = "Chat with the SCORE assistant"):
    page.get_by_role("button", name=name).click()
    return page.get_by_role("log")


def test_demo_page_conversation_history_and_staff_reply(webchat, console, browser, stack):
    from playwright.sync_api import expect

    base, app = webchat
    page = browser.new_page()
    page.goto(f"{base}/demo")
    log = open_chat(page)
    # The welcome, with the language chips; the panel's texts are English (the browser's locale).
    expect(log).to_contain_text("I'm the SCORE assistant", timeout=WAIT)
    expect(page.get_by_role("button", name="中文")).to_be_visible()
    expect(page.get_by_role("status").first).to_have_text("Online")

    # A question in Chinese: a Chinese answer, and the widget's own texts follow the language.
    box = page.get_by_role("textbox", name="Your message")
    box.fill("SCORE有哪些模块")
    box.press("Enter")
    expect(log).to_contain_text("工作场所合作", timeout=WAIT)
    expect(page.get_by_role("button", name="发送")).to_be_visible()
    box = page.get_by_role("textbox", name="您的消息")
    # A fact the assistant does not have: said so, with a chip to ask staff.
    box.fill("培训要收费吗")
    box.press("Enter")
    chip = page.get_by_role("group", name="建议回复").get_by_role("button", name="转给工作人员")
    expect(chip).to_be_enabled(timeout=WAIT)
    page.screenshot(path=str(DOCS / "webchat-desktop.png"))

    # The chip: its title is the visitor's line, and it hands the conversation to staff.
    answers_before = page.locator(".line.bot").count()  # pierces the shadow root
    chip.click()
    expect(page.locator(".line.user .text").last).to_have_text("转给工作人员")
    expect(page.locator(".line.bot")).not_to_have_count(answers_before, timeout=WAIT)
    expect(page.get_by_role("status").filter(has_text="助手正在输入")).to_be_hidden(timeout=WAIT)
    visitor = page.evaluate("localStorage.getItem('score-webchat-visitor')")
    user = conversations.get_user(stack.db, f"web-{visitor}")
    assert user is not None and user.paused and user.language == "zh"

    # Reload: the same visitor, the conversation from the transcript store.
    lines_before = page.locator(".line").count()
    page.reload()
    log = page.get_by_role("log")  # the panel stays open across the reload
    expect(log).to_contain_text("工作场所合作", timeout=WAIT)
    expect(log).to_contain_text("SCORE有哪些模块")
    expect(page.locator(".line.user .text").last).to_have_text("转给工作人员")
    expect(page.get_by_role("log").locator(".line.bot .who").first).to_have_text("助手")  # labels follow the language
    # Everything but the welcome, which is not written to the transcript (a page view stores nothing).
    assert page.locator(".line").count() == lines_before - 1
    expect(log).not_to_contain_text("I'm the SCORE assistant")
    assert page.evaluate("localStorage.getItem('score-webchat-visitor')") == visitor
    page.set_viewport_size({"width": 390, "height": 844})
    panel = page.get_by_role("dialog", name="SCORE 助手")
    assert panel.bounding_box()["width"] == 390  # the whole width of a phone
    page.screenshot(path=str(DOCS / "webchat-phone.png"))
    page.set_viewport_size({"width": 1400, "height": 900})

    # A network drop: the browser goes offline and the connection is cut. What the visitor types
    # meanwhile is kept; back online, the widget reconnects and sends it. Staff have the
    # conversation, so it waits for them.
    chat = app.state.webchat
    greeted = chat.greeted
    page.context.set_offline(True)
    for socket in [c.socket for c in chat.visitors._open[visitor]]:
        asyncio.run_coroutine_threadsafe(socket.close(code=1012), app.state.loop).result(5)
    expect(page.get_by_role("status").first).to_have_text("连接已断开，正在重新连接……", timeout=WAIT)
    box = page.get_by_role("textbox", name="您的消息")
    box.fill("我们工厂有200人")
    box.press("Enter")
    expect(log).to_contain_text("连接恢复后将发送。")
    page.context.set_offline(False)
    expect(page.get_by_role("status").first).to_have_text("在线", timeout=WAIT)
    assert chat.greeted == greeted + 1  # one reconnect, one history
    expect(log).to_contain_text("您的消息已转交", timeout=WAIT)
    expect(page.locator(".line.user .text", has_text="我们工厂有200人")).to_have_count(1)

    console_url, staff = console
    staff_page = browser.new_page()
    staff_page.goto(f"{console_url}/login")
    staff_page.get_by_label("Username").fill(staff)
    staff_page.get_by_label("Password").fill(PASSWORD)
    staff_page.get_by_role("button", name="Log in").click()
    staff_page.goto(f"{console_url}/conversations/{user.id}")
    expect(staff_page.locator(".turn-in .bubble", has_text="我们工厂有200人")).to_be_visible()
    staff_page.get_by_label("Reply to the user").fill("您好，我是培训中心的安娜。200人的工厂符合条件。")
    staff_page.get_by_role("button", name="Send reply").click()
    expect(staff_page.locator(".turn-staff .bubble")).to_contain_text("我是培训中心的安娜")

    staff_line = page.locator(".line.staff")
    expect(staff_line).to_contain_text("我是培训中心的安娜", timeout=WAIT)
    expect(staff_line).to_contain_text(f"工作人员 · {staff}")
    # Once, and still there after a reload (from the transcript).
    page.reload()
    expect(page.locator(".line.staff")).to_have_count(1, timeout=WAIT)


def test_a_message_sent_as_the_connection_drops_is_answered_once(webchat, browser, stack):
    """The socket is cut right after the visitor's frame leaves the page: once before the server
    has it, once after (the server handles it, its answer goes to a closed socket). Either way
    the widget shows the line as pending, reconnects, sends the frame again, and the visitor gets
    one answer; the transcript has the line once."""
    import json
    import re
    import time

    from playwright.sync_api import expect

    base, app = webchat
    chat = app.state.webchat
    cut: list[str] = []  # how to cut the socket at the next message frame: "before" | "after" the server
    frames: list[str] = []  # ids of the frames cut

    def route(ws) -> None:
        server = ws.connect_to_server()

        def from_page(message) -> None:
            frame = json.loads(message) if isinstance(message, str) else {}
            if frame.get("type") in ("message", "press") and cut and frame.get("id") not in frames:
                frames.append(frame["id"])
                if cut.pop(0) == "after":
                    server.send(message)
                ws.close(code=1012)  # the page's socket, then the server's
                server.close(code=1012)
                return
            server.send(message)

        ws.on_message(from_page)

    page = browser.new_page()
    page.route_web_socket(re.compile(r"/ws$"), route)
    page.goto(f"{base}/demo")
    log = open_chat(page)
    expect(log).to_contain_text("I'm the SCORE assistant", timeout=WAIT)
    visitor = page.evaluate("localStorage.getItem('score-webchat-visitor')")
    box = page.get_by_role("textbox", name="Your message")

    def answered_once(question: str, answer: str) -> None:
        expect(log).to_contain_text(answer, timeout=WAIT)
        expect(page.locator(".line.pending")).to_have_count(0, timeout=WAIT)
        time.sleep(1.5)  # a second answer, had there been one, would be here by now
        expect(page.locator(".line.bot", has_text=answer)).to_have_count(1)
        expect(page.locator(".line.user", has_text=question)).to_have_count(1)
        assert page.evaluate("localStorage.getItem('score-webchat-pending')") == "[]"
        lines = conversations.recent_lines(stack.db, conversations.get_user(stack.db, f"web-{visitor}").id, 50)
        assert [line.text for line in lines if line.direction == "in"].count(question) == 1

    # Cut before the server has it: pending, sent again after the reconnect, answered.
    greeted = chat.greeted
    cut.append("before")
    box.fill("what is the training format")
    box.press("Enter")
    pending = page.locator(".line.user.pending", has_text="what is the training format")
    expect(pending).to_contain_text("Sending…")
    page.screenshot(path=str(DOCS / "webchat-pending.png"))
    answered_once("what is the training format", "Source")
    assert chat.greeted == greeted + 1  # one reconnect
    expect(log.locator(".line.bot", has_text="I'm the SCORE assistant")).to_have_count(1)  # welcomed once

    # Cut after the server has it: handled once; the frame sent again is recognised as a repeat.
    repeated = chat.repeated
    cut.append("after")
    box.fill("what modules are there")
    box.press("Enter")
    answered_once("what modules are there", "Workplace Cooperation")
    assert chat.repeated == repeated + 1
    assert len(frames) == 2

    # After a reload, from the transcript: each line once.
    page.reload()
    expect(page.get_by_role("log")).to_contain_text("Workplace Cooperation", timeout=WAIT)
    expect(page.locator(".line.user", has_text="what is the training format")).to_have_count(1)
    expect(page.locator(".line.pending")).to_have_count(0)


def test_other_sites_allowed_and_refused(webchat, browser, sites):
    from playwright.sync_api import expect

    base, app = webchat
    allowed = browser.new_page()
    allowed.goto(f"{sites['allowed']}/embed.html")
    # By keyboard alone: Tab to the launcher, Enter opens the chat in the message box, Esc closes.
    launcher = allowed.get_by_role("button", name="Chat with the SCORE assistant")
    allowed.keyboard.press("Tab")
    expect(launcher).to_be_focused()
    allowed.keyboard.press("Enter")
    expect(allowed.get_by_role("textbox", name="Your message")).to_be_focused()
    expect(allowed.get_by_role("log")).to_contain_text("I'm the SCORE assistant", timeout=WAIT)
    allowed.keyboard.press("Escape")
    expect(allowed.get_by_role("dialog")).to_be_hidden()
    expect(launcher).to_be_focused()

    refused_before = app.state.webchat.refused
    foreign = browser.new_page()
    foreign.goto(f"{sites['foreign']}/embed.html")
    log = open_chat(foreign)
    expect(foreign.get_by_role("status").first).to_have_text("Connection lost. Reconnecting…", timeout=WAIT)
    assert app.state.webchat.refused > refused_before
    expect(log.locator(".line")).to_have_count(0)
    # Nor may that page call the server over HTTP.
    status = foreign.evaluate(f"fetch('{base}/health').then(r => r.status, () => 'blocked')")
    assert status == "blocked"  # 403 with no CORS headers: the browser gives the page nothing
