"""Search and filters, exports with redaction, enquiries and schedule, the dashboard, the NLU
inbox and its YAML export, the audit of every view, and the create-user command."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import func, select

from console import __main__ as cli
from console.charts import nice_ticks
from console.redact import redactor_for
from store.demo import seed
from store.models import AuditEntry, NluLabel, StaffUser, TranscriptLine, User
from tests.console.helpers import client_for, csrf_of
from tests.test_console_security import concrete, console_routes


@pytest.fixture
def demo(any_db):
    return any_db, seed(any_db)


def names_in(page: str) -> set[str]:
    return set(re.findall(r'<a href="/conversations/\d+">([^<]+?)\s*(?:<span|</a>)', page))


def test_search_finds_text_in_transcripts(demo):
    db, ids = demo
    client = client_for(db, "anna")
    page = client.get("/conversations?q=TRAINING FEES").text
    assert names_in(page) == {"Chen Jing"}
    assert "How much are the training fees" in page  # the matching line is shown
    chinese = names_in(client.get("/conversations?q=培训费用").text)
    assert chinese and chinese <= {"Wang Lei", "李娜", "张伟", "刘洋"}
    assert names_in(client.get("/conversations?q=100%25").text) == set()  # % is literal
    assert "No conversation matches" in client.get("/conversations?q=zzzz-nothing").text


def test_filters_narrow_the_list(demo):
    db, ids = demo
    client = client_for(db, "anna")
    everyone = names_in(client.get("/conversations").text)
    assert len(everyone) == 9
    zh = names_in(client.get("/conversations?language=zh").text)
    assert zh == {"Wang Lei", "李娜", "张伟", "刘洋"}
    assert names_in(client.get("/conversations?status=waiting").text) == {"Chen Jing", "Sarah Chen", "张伟"}
    assert "Chen Jing" not in names_in(client.get("/conversations?status=resolved").text)
    assert names_in(client.get("/conversations?status=none").text) == {"Wang Lei"}
    eligible = names_in(client.get("/conversations?outcome=eligible").text)
    assert eligible == {"Wang Lei", "李娜", "张伟", "Priya Nair"}
    assert names_in(client.get("/conversations?module=1").text) == {"Wang Lei", "张伟"}
    assert names_in(client.get("/conversations?module=1&language=en").text) == set()
    # Days are the console's (Asia/Shanghai) days.
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    midnight = dt.datetime.combine(today, dt.time(), tzinfo=ZoneInfo("Asia/Shanghai"))
    with db.session() as s:
        expected = set(s.scalars(select(User.display_name).join(TranscriptLine).where(
            TranscriptLine.created_at >= midnight)))
    recent = names_in(client.get(f"/conversations?from={today.isoformat()}").text)
    assert "Chen Jing" in recent and recent == expected
    assert names_in(client.get("/conversations?to=2000-01-01").text) == set()


def test_redacted_export_hides_personal_data(demo):
    db, ids = demo
    client = client_for(db, "li", "staff")
    with db.session() as s:
        user = s.get(User, ids["handoff_user"])
        s.add(TranscriptLine(user_id=user.id, direction="in", language="en",
                             text="Mail chen.jing@example.com or ask Chen Jing (@chenjing_ops), "
                                  "my id 5550009999, office 0512-5768 1234"))
    body = client.get(f"/export/transcripts.csv?user={ids['handoff_user']}").text
    rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows and {r["conversation"] for r in rows} == {"conversation-1"}
    text = body
    for secret in ("Chen Jing", "chenjing_ops", "5550009999", "chen.jing@example.com",
                   "139 1234 5678", "0512-5768 1234", "tg-5550009999"):
        assert secret not in text, secret
    last = rows[-1]["text"]
    assert last == ("Mail [EMAIL] or ask [NAME] ([USERNAME]), my id [TELEGRAM_ID], "
                    "office [PHONE]")
    assert "320 workers" in text  # ordinary numbers stay
    data = json.loads(client.get("/export/transcripts.json?q=fees").text)
    assert data["redacted"] is True
    assert all(c["user_name"] is None for c in data["conversations"])
    assert "Chen Jing" not in json.dumps(data, ensure_ascii=False)


def test_full_export_is_for_admins_and_audited(demo):
    db, ids = demo
    admin = client_for(db, "boss", "admin")
    response = admin.get(f"/admin/export/transcripts.json?user={ids['handoff_user']}")
    assert response.headers["content-disposition"] == \
        'attachment; filename="transcripts-full.json"'
    data = json.loads(response.text)
    assert data["redacted"] is False
    conv = data["conversations"][0]
    assert (conv["channel"], conv["user_name"], conv["username"], conv["external_id"]) == \
        ("telegram", "Chen Jing", "chenjing_ops", "5550009999")
    assert any("+86 139 1234 5678" in line["text"] for line in conv["lines"])
    csv_body = admin.get("/admin/export/transcripts.csv").text
    assert "Chen Jing" in csv_body
    with db.session() as s:
        targets = s.scalars(select(AuditEntry.target).where(
            AuditEntry.action == "export_transcripts_full")).all()
    assert len(targets) == 2 and targets[0].startswith("full json lines=6")


def test_csv_cells_cannot_become_formulas(sqlite_db):
    with sqlite_db.session() as s:
        user = User(channel="telegram", external_id="1", sender_id="tg-1")
        s.add(user)
        s.flush()
        s.add(TranscriptLine(user_id=user.id, direction="in", text="=HYPERLINK(\"x\")"))
    body = client_for(sqlite_db, "anna").get("/export/transcripts.csv").text
    assert "'=HYPERLINK" in body


def test_redactor_patterns():
    redact = redactor_for(["Wang Lei", "李娜"], ["wanglei88"], ["123456789"])
    assert redact("I am Wang Lei, @wanglei88, +86 138 0013 8000, a@b.cn, 李娜说") == \
        "I am [NAME], [USERNAME], [PHONE], [EMAIL], [NAME]说"
    assert redact("Wang said 50 workers on 2026-11-24, 2+2 days") == \
        "[NAME] said 50 workers on 2026-11-24, 2+2 days"
    assert redact("id 123456789 or tg-42") == "id [TELEGRAM_ID] or [TELEGRAM_ID]"


def test_enquiries_and_bookings_schedule(demo):
    db, ids = demo
    client = client_for(db, "anna")
    page = client.get("/enquiries").text
    assert page.count('class="badge badge-outcome-') == 5
    assert "Wang Precision Co." in page and "+86 138 0000 1000" in page
    borderline = client.get("/enquiries?outcome=borderline").text
    assert borderline.count("badge-outcome-") == 1 and "Services company" in borderline
    schedule = client.get("/bookings").text
    # M1-DON-02 is full (6 of 6) with two factories waiting.
    row = schedule[schedule.index("M1-DON-02"):]
    row = row[:row.index("</tr>")]
    assert "6/6" in row and '<td class="num">2</td>' in row
    assert all(f"SC-DEMO0{n}" in schedule for n in (0, 2, 4, 5))
    assert "M2-NIN-03" not in client.get("/bookings?module=1").text


def test_dashboard_figures(demo):
    db, ids = demo
    client = client_for(db, "anna")
    page = client.get("/dashboard").text
    assert page.count("<svg") == 6  # five figures and the channels
    # Funnel: 9 people wrote, 5 did a check, 4 of them booked.
    funnel = page[page.index('aria-label="Booking funnel"'):]
    funnel = funnel[:funnel.index("</svg>")]
    assert "Asked a question: 9" in funnel and "Did an eligibility check: 5" in funnel
    assert "Booked: 4" in funnel and "44%" in funnel
    topics = page[page.index('aria-label="Top topics"'):]
    assert "faq_modules" in topics[:topics.index("</svg>")]
    assert "How much are the training fees" in page  # a misunderstood question
    assert "Handoffs per day" in page and "Time to claim" in page
    assert client.get("/dashboard?days=7").status_code == 200


def test_nice_ticks():
    assert nice_ticks(0) == [0, 1]
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(95)[-1] >= 95


def test_nlu_inbox_label_and_export(demo):
    db, ids = demo
    client = client_for(db, "anna")
    page = client.get("/nlu").text
    assert "How much are the training fees" in page  # nlu_fallback
    assert "Hi, our garment factory in Kunshan" in page  # just before a handoff
    assert "What modules does SCORE have?" not in page  # understood, never handed off
    options = re.findall(r'<option value="([a-z_]+)"', page)
    assert "faq_modules" in options and "request_human" in options
    assert "nlu_fallback" not in options
    with db.session() as s:
        fees = s.scalar(select(TranscriptLine.id).where(TranscriptLine.text.like("How much%")))
        hi = s.scalar(select(TranscriptLine.id).where(TranscriptLine.text.like("Hi, our%")))
        call = s.scalar(select(TranscriptLine.id).where(TranscriptLine.text.like("I want to%")))
    token = csrf_of(client, "/nlu")
    client.post(f"/nlu/lines/{fees}/label",
                data={"csrf_token": token, "intent": "__new__", "new_topic": "Training Fees"})
    client.post(f"/nlu/lines/{hi}/label", data={"csrf_token": token, "intent": "greet"})
    client.post(f"/nlu/lines/{call}/label", data={"csrf_token": token, "intent": "request_human"})
    client.post(f"/nlu/lines/{call}/label", data={"csrf_token": token, "intent": "made_up"})
    with db.session() as s:
        labels = dict(s.execute(select(NluLabel.transcript_line_id, NluLabel.intent)).all())
    assert labels == {fees: "new:training_fees", hi: "greet", call: "request_human"}
    assert "How much are the training fees" not in client.get("/nlu").text  # labelled: gone
    assert "How much are the training fees" in client.get("/nlu?show=labelled").text
    response = client.get("/nlu/export.yml")
    assert response.headers["content-disposition"].endswith('"nlu_console_labels.yml"')
    document = yaml.safe_load(response.text)
    assert document["version"] == "3.1"
    blocks = {b["intent"]: b["examples"] for b in document["nlu"]}
    assert set(blocks) == {"greet", "request_human", "training_fees"}
    assert blocks["training_fees"] == \
        "- How much are the training fees for module 2 <script>alert(1)</script>?\n"
    assert blocks["request_human"] == "- I want to talk to a person, call me at [PHONE]\n"
    assert "training_fees" in response.text.splitlines()[2]  # new topics are listed


def test_every_view_is_audited(demo):
    db, ids = demo
    client = client_for(db, "boss", "admin")
    gets = [p for p, m in console_routes(client.app) if m == "GET" and p != "/login"]
    for path in gets:
        url = concrete(path).replace("/conversations/1", f"/conversations/{ids['user0']}")
        with db.session() as s:
            before = s.scalar(select(func.count()).select_from(AuditEntry))
        response = client.get(url)
        assert response.status_code in (200, 303), url
        with db.session() as s:
            last = s.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1))
            after = s.scalar(select(func.count()).select_from(AuditEntry))
        assert after == before + 1 and last.staff_username == "boss", url
    audit_page = client.get("/admin/audit?action=view_dashboard").text
    assert "view_dashboard" in audit_page and "view_queue</code>" not in audit_page


def test_create_user_command(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert cli.main(["create-user", "first.admin", "--role", "admin", "--password-stdin"]) == 0
    assert "created admin 'first.admin'" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert cli.main(["create-user", "first.admin", "--password-stdin"]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli.main(["create-user", "other", "--password-stdin"]) == 2
    from store.db import get_database

    with get_database().session() as s:
        users = s.execute(select(StaffUser.username, StaffUser.role)).all()
        stored = s.scalar(select(StaffUser.password_hash))
    assert users == [("first.admin", "admin")] and stored.startswith("$argon2id$")


def test_channels_in_dashboard_queue_and_export(demo):
    """Users of WeChat and the web chat beside the demo's Telegram users: the dashboard counts
    each channel, the queue and the transcript export say which channel a conversation is on."""
    from store import conversations, handoff as handoffs

    db, ids = demo
    for channel, external, texts in (("wechat", "oWx-dash-1", ["SCORE是什么？", "费用多少？"]),
                                     ("wechat", "oWx-dash-2", ["你好"]),
                                     ("web", "3f0c2a9e-5b1d-4c7e-9a8b-0123456789ab", ["what is SCORE"])):
        for text in texts:
            user, _ = conversations.start_turn(db, channel, external, text, lambda current, chosen: "zh")
    handoffs.start_handoff(db, "wx-oWx-dash-1", "asked", "zh")
    client = client_for(db, "anna")

    page = client.get("/dashboard").text
    table = page[page.index('aria-label="Figures by channel"'):]
    table = table[:table.index("</table>")]
    rows = {cells[0]: cells[1:] for cells in (
        re.findall(r'<td[^>]*>(?:<span[^>]*>)?([^<]*)', row) for row in table.split("<tr>")[2:])}
    # people, messages, checks, handoffs, bookings
    assert rows["wechat"] == ["2", "3", "0", "1", "0"]
    assert rows["web"] == ["1", "1", "0", "0", "0"]
    assert rows["telegram"][0] == "9" and rows["telegram"][4] != "0"  # the demo's users, who booked
    chart = page[page.index('aria-label="By channel"'):]
    assert "wechat · Handoffs: 1" in chart[:chart.index("</svg>")]

    queue = client.get("/queue?status=waiting").text
    row = queue[queue.index("wx-oWx-dash-1"):]
    assert 'badge-channel">wechat<' in row[:row.index("</tr>")]
    assert queue.count('badge-channel">telegram<') == 3  # the demo's waiting handoffs

    export = json.loads(client.get("/export/transcripts.json").text)
    assert sorted({c["channel"] for c in export["conversations"]}) == ["telegram", "web", "wechat"]
    assert all(c["external_id"] is None for c in export["conversations"])  # redacted
    csv_rows = list(csv.DictReader(io.StringIO(client.get("/export/transcripts.csv").text.lstrip("\ufeff"))))
    assert {r["channel"] for r in csv_rows} == {"telegram", "web", "wechat"}
    assert "oWx-dash" not in client.get("/export/transcripts.csv").text
