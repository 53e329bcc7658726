"""The console in a real browser: Debian Chromium (headless, via Playwright) against uvicorn
on 127.0.0.1 over a seeded SQLite store. Also takes screenshots: into var/screenshots/, or into
docs/ (the ones the README shows) with UPDATE_SCREENSHOTS=1.

Run scripts/install-browser.sh first (the test command does).
"""
from __future__ import annotations

import csv
import io
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import select

from store.db import PROJECT_ROOT, Database
from store.demo import seed
from store.models import Handoff, HandoffNote, Notification, TranscriptLine
from tests.console.helpers import PASSWORD, add_staff, make_app

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DOCS = PROJECT_ROOT / ("docs" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else "var/screenshots")
DOCS.mkdir(parents=True, exist_ok=True)


def free_port() -> int:
    """A free port in the range this project's console servers use (8400-8499)."""
    for port in range(8400, 8500):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 8400-8499")


class ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test's thread is not the main thread
        pass


@pytest.fixture
def console_server(tmp_path) -> Iterator[tuple[str, Database, dict[str, int]]]:
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    db.create_all()
    ids = seed(db)
    add_staff(db, "anna", "admin")
    server = ThreadedServer(uvicorn.Config(make_app(db), host="127.0.0.1", port=free_port(),
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    # Wait for uvicorn to listen (no sleep-based timing: poll its own flag, bounded).
    for _ in range(1000):
        if server.started:
            started.set()
            break
        thread.join(0.01)
    assert started.is_set(), "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{server.config.port}", db, ids
    finally:
        server.should_exit = True
        thread.join()
        db.dispose()


@pytest.fixture
def browser_page(tmp_path):
    if not shutil.which("chromium") and not Path(CHROMIUM).exists():
        pytest.fail("Debian Chromium is missing: run scripts/install-browser.sh")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
            headless=True, viewport={"width": 1400, "height": 900}, accept_downloads=True,
            locale="en-GB",
        )
        page = context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.dialogs = dialogs  # type: ignore[attr-defined]
        try:
            yield page
        finally:
            context.close()


def test_staff_workflow_in_the_browser(console_server, browser_page, tmp_path):
    from playwright.sync_api import expect

    base, db, ids = console_server
    page = browser_page

    # Log in (the console sends us to the login form first).
    page.goto(f"{base}/queue")
    expect(page).to_have_url(f"{base}/login?next=/queue")
    page.get_by_label("Username").fill("anna")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base}/queue")
    expect(page.get_by_role("heading", name="Handoff queue")).to_be_visible()
    expect(page.locator("tbody tr")).to_have_count(3)
    expect(page.locator("tbody")).to_contain_text("Chen Jing")
    page.screenshot(path=str(DOCS / "console-queue.png"))

    # Find the conversation by searching its text.
    page.get_by_role("link", name="Conversations").click()
    page.get_by_label("Search text").fill("training fees")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    page.get_by_role("link", name="Chen Jing").click()
    expect(page).to_have_url(f"{base}/conversations/{ids['handoff_user']}")

    # The message with markup is shown as text, and nothing ran.
    bubble = page.locator(".turn-in .bubble", has_text="training fees")
    expect(bubble).to_have_text("How much are the training fees for module 2 "
                                "<script>alert(1)</script>?")
    assert page.dialogs == []  # type: ignore[attr-defined]

    # A note for colleagues, and a reply to the user.
    page.get_by_label("Note").fill("Asked for the module 2 fee; price list sent by email.")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator(".flash-ok")).to_have_text("Note added.")
    expect(page.locator(".note")).to_contain_text("price list sent by email")
    page.get_by_label("Reply to the user").fill(
        "Hello Chen Jing, module 2 (quality management) costs are shared by the programme. "
        "I have emailed you the price list.")
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator(".turn-staff .bubble")).to_contain_text("I have emailed you")
    page.goto(page.url.split("#")[0])  # from the top of the page, for the screenshot
    page.screenshot(path=str(DOCS / "console-transcript.png"), full_page=True)

    # Resolve: the assistant takes over again.
    page.get_by_role("button", name="Resolve and hand back to assistant").click()
    expect(page.locator(".flash-ok")).to_contain_text("Resolved")
    expect(page.locator(".badge-resolved").first).to_be_visible()
    with db.session() as s:
        handoff = s.get(Handoff, ids["handoff"])
        assert handoff.status == "resolved" and handoff.claimed_by == "anna"
        kinds = set(s.scalars(select(Notification.kind).where(
            Notification.user_id == ids["handoff_user"])))
        assert kinds == {"staff_reply", "handoff_resumed"}
        assert s.scalar(select(HandoffNote.author)) is not None
        assert s.scalar(select(TranscriptLine.staff_name).where(
            TranscriptLine.direction == "staff")) == "anna"

    # Export the transcript, redacted.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV (redacted)").click()
    download = download_info.value
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    assert download.suggested_filename == "transcripts-redacted.csv"
    body = target.read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert any(r["direction"] == "staff" for r in rows)
    assert "Chen Jing" not in body and "139 1234 5678" not in body and "[PHONE]" in body

    # The dashboard.
    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator("svg.chart")).to_have_count(6)
    expect(page.locator('svg[aria-label="By channel"]')).to_contain_text("telegram")
    expect(page.get_by_role("table", name="Figures by channel")).to_contain_text("wechat")
    expect(page.locator('svg[aria-label="Booking funnel"]')).to_contain_text("Booked")
    page.screenshot(path=str(DOCS / "console-dashboard.png"), full_page=True)
