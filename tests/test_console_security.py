"""Console security: login gate on every route, roles, CSRF on every POST, escaping,
lockout, argon2 hashes and cookie flags. Runs on SQLite and PostgreSQL (any_db)."""
from __future__ import annotations

import base64
import datetime as dt
import logging
import re

import pytest
from sqlalchemy import select
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from console.app import SESSION_COOKIE, create_app
from console.settings import Settings
from store import staff as passwords
from store.models import AuditEntry, ConsoleSession, Handoff, StaffUser, TranscriptLine, User, utcnow
from tests.console.helpers import PASSWORD, add_staff, client_for, csrf_of, login, make_app

PUBLIC = {("/login", "GET"), ("/login", "POST")}
PARAM_RE = re.compile(r"\{(\w+)(?::(\w+))?\}")


def concrete(path: str) -> str:
    """A request path for a route pattern: ints become 1, other parameters 'csv'."""
    return PARAM_RE.sub(lambda m: "1" if m.group(2) == "int" else "csv", path)


def console_routes(app) -> list[tuple[str, str]]:
    """(path, method) of every route but the static files; HEAD goes with GET."""
    found = []
    for route in app.routes:
        if isinstance(route, Mount):
            assert route.path == "/static", f"unexpected mount {route.path}: test it here"
            continue
        assert isinstance(route, Route)
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                found.append((route.path, method))
    return found


@pytest.fixture
def seeded(any_db):
    """One conversation with a handoff, so that parameterised routes hit real rows."""
    with any_db.session() as s:
        user = User(channel="telegram", external_id="777", sender_id="tg-777", chat_id=777,
                    display_name="Zhou <b>Min</b>", language="en", paused=True)
        s.add(user)
        s.flush()
        s.add(TranscriptLine(user_id=user.id, direction="in", language="en",
                             text="fees? <script>alert('x')</script>", intent="nlu_fallback",
                             confidence=0.2))
        s.add(Handoff(user_id=user.id, reason="asked", language="en"))
    return any_db


def test_every_route_except_login_needs_a_session(seeded):
    app = make_app(seeded)
    routes = console_routes(app)
    assert len(routes) >= 20
    public = {r for r in routes if r in PUBLIC}
    assert public == PUBLIC, "a new public route must be added to PUBLIC deliberately"
    client = TestClient(app, follow_redirects=False)
    for path, method in routes:
        if (path, method) in PUBLIC:
            continue
        url = concrete(path)
        response = client.request(method, url)
        if method == "GET":
            assert response.status_code == 303, (method, url, response.status_code)
            assert response.headers["location"].startswith("/login?next="), url
        else:
            assert response.status_code == 401, (method, url, response.status_code)
        assert "alert" not in response.text


def test_a_forged_or_foreign_session_cookie_is_refused(seeded):
    add_staff(seeded, "anna", "admin")
    other = TestClient(make_app(seeded, secret_key="another-secret-" + "y" * 40),
                       follow_redirects=False)
    assert login(other, "anna").status_code == 303
    cookie = other.cookies.get(SESSION_COOKIE)
    assert cookie
    client = TestClient(make_app(seeded), follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, cookie)
    assert client.get("/queue").status_code == 303


def test_a_deleted_staff_user_is_logged_out(seeded):
    client = client_for(seeded, "temp")
    assert client.get("/queue").status_code == 200
    with seeded.session() as s:
        s.delete(s.scalar(select(StaffUser).where(StaffUser.username == "temp")))
    assert client.get("/queue").status_code == 303


def test_staff_cannot_reach_admin_export_or_audit_log(seeded):
    client = client_for(seeded, "li", "staff")
    admin_routes = [(p, m) for p, m in console_routes(client.app) if p.startswith("/admin")]
    assert {p for p, _ in admin_routes} >= {"/admin/audit", "/admin/export/transcripts.{fmt}"}
    for path, method in admin_routes:
        for fmt in ("csv", "json"):
            url = concrete(path).replace("csv", fmt)
            response = client.request(method, url)
            assert response.status_code == 403, url
            assert "fees" not in response.text
    # The redacted export stays open to staff.
    assert client.get("/export/transcripts.csv").status_code == 200
    with seeded.session() as s:
        denied = s.scalars(select(AuditEntry).where(AuditEntry.action == "denied")).all()
    assert denied and all(e.staff_username == "li" for e in denied)
    admin = client_for(seeded, "boss", "admin")
    assert admin.get("/admin/audit").status_code == 200
    assert admin.get("/admin/export/transcripts.csv").status_code == 200


def test_user_content_is_escaped_everywhere(seeded):
    client = client_for(seeded, "anna", "admin")
    with seeded.session() as s:
        user_id = s.scalar(select(User.id))
    raw = "<script>alert('x')</script>"
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
    pages = [f"/conversations/{user_id}", "/conversations?q=fees", "/queue", "/nlu",
             "/dashboard"]
    for page in pages:
        body = client.get(page).text
        assert raw not in body, page
        assert escaped in body, page
    transcript = client.get(f"/conversations/{user_id}").text
    assert "<b>Min</b>" not in transcript and "Zhou &lt;b&gt;Min&lt;/b&gt;" in transcript
    # And no page may run script at all.
    assert "default-src 'none'" in client.get("/queue").headers["content-security-policy"]


def _post_routes(client):
    return [(p, m) for p, m in console_routes(client.app) if m == "POST"]


def test_csrf_token_is_required_on_every_post(seeded):
    client = client_for(seeded, "anna", "admin")
    token = csrf_of(client, "/queue")
    posts = _post_routes(client)
    assert {p for p, _ in posts} >= {"/login", "/logout", "/handoffs/{handoff_id:int}/resolve"}
    with seeded.session() as s:
        handoff_id = s.scalar(select(Handoff.id))
        user_id = s.scalar(select(User.id))
        line_id = s.scalar(select(TranscriptLine.id))
    ids = {"handoff_id": handoff_id, "user_id": user_id, "line_id": line_id}

    def url(path: str) -> str:
        return PARAM_RE.sub(lambda m: str(ids.get(m.group(1), 1)), path)

    form = {"text": "hello", "tags": "x", "intent": "greet", "username": "anna",
            "password": PASSWORD}
    for path, _ in posts:
        for bad in ({}, {"csrf_token": ""}, {"csrf_token": "wrong" + token}):
            response = client.post(url(path), data={**form, **bad})
            assert response.status_code == 403, (path, bad)
    # Nothing happened.
    with seeded.session() as s:
        handoff = s.get(Handoff, handoff_id)
        assert handoff.status == "waiting" and handoff.tags == ""
        assert s.scalar(select(TranscriptLine).where(TranscriptLine.direction == "staff")) is None
    # With the token every POST gets through the check (logout last: it ends the session).
    for path, _ in sorted(posts, key=lambda r: r[0] == "/logout"):
        response = client.post(url(path), data={**form, "csrf_token": token})
        assert response.status_code != 403, (path, response.text)
        if path == "/login":
            token = csrf_of(client, "/queue")


def test_csrf_token_of_one_session_is_useless_in_another(seeded):
    first = client_for(seeded, "anna", "admin")
    second = client_for(seeded, "li", "staff")
    token = csrf_of(first, "/queue")
    with seeded.session() as s:
        handoff_id = s.scalar(select(Handoff.id))
    response = second.post(f"/handoffs/{handoff_id}/claim", data={"csrf_token": token})
    assert response.status_code == 403


def test_lockout_after_repeated_failures(seeded):
    add_staff(seeded, "anna")
    client = TestClient(make_app(seeded), follow_redirects=False)
    for _ in range(4):
        response = login(client, "anna", "wrong password!")
        assert response.status_code == 401
        assert "Wrong username or password" in response.text
    response = login(client, "anna", "wrong password!")
    assert "Too many failed attempts" in response.text
    # Locked: the right password is refused too.
    response = login(client, "anna")
    assert response.status_code == 401 and "Too many failed attempts" in response.text
    with seeded.session() as s:
        staff = s.scalar(select(StaffUser).where(StaffUser.username == "anna"))
        assert staff.locked_until is not None
        assert staff.locked_until - utcnow() > dt.timedelta(minutes=14)
        # The lock ends by time; move it to the past instead of waiting.
        staff.locked_until = utcnow() - dt.timedelta(seconds=1)
    assert login(client, "anna").status_code == 303
    with seeded.session() as s:
        staff = s.scalar(select(StaffUser).where(StaffUser.username == "anna"))
        assert staff.failed_logins == 0 and staff.locked_until is None
        actions = s.scalars(select(AuditEntry.action)).all()
    assert actions.count("login_failed") == 4 and "login_locked" in actions


def test_unknown_username_fails_like_a_wrong_password(seeded):
    client = TestClient(make_app(seeded), follow_redirects=False)
    response = login(client, "nobody")
    assert response.status_code == 401 and "Wrong username or password" in response.text


def test_passwords_are_argon2id_hashes(sqlite_db):
    add_staff(sqlite_db, "anna")
    with sqlite_db.session() as s:
        stored = s.scalar(select(StaffUser.password_hash))
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert passwords.verify_password(stored, PASSWORD)
    assert not passwords.verify_password(stored, PASSWORD + "x")
    assert not passwords.verify_password("not a hash", PASSWORD)
    with sqlite_db.session() as s, pytest.raises(ValueError):
        passwords.create_user(s, "short", "2short", "staff")
    with sqlite_db.session() as s, pytest.raises(ValueError):
        passwords.create_user(s, "x", PASSWORD, "root")


def test_session_cookie_flags(sqlite_db):
    add_staff(sqlite_db, "anna")
    client = TestClient(make_app(sqlite_db, secure_cookies=True), base_url="https://testserver",
                        follow_redirects=False)
    response = login(client, "anna")
    cookie = response.headers["set-cookie"].lower()
    assert f"{SESSION_COOKIE}=" in cookie
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie
    assert "max-age=28800" in cookie
    local = TestClient(make_app(sqlite_db, secure_cookies=False), follow_redirects=False)
    assert "secure" not in login(local, "anna").headers["set-cookie"].lower()


def test_settings_from_environment(monkeypatch, caplog):
    monkeypatch.delenv("CONSOLE_SECRET_KEY", raising=False)
    monkeypatch.delenv("CONSOLE_SECURE_COOKIES", raising=False)
    with caplog.at_level(logging.WARNING, logger="console"):
        first = Settings.from_env()
    assert first.secure_cookies is True
    assert len(first.secret_key) >= 40 and first.secret_key != Settings.from_env().secret_key
    assert "CONSOLE_SECRET_KEY is not set" in caplog.text
    monkeypatch.setenv("CONSOLE_SECRET_KEY", "from-the-environment-" + "z" * 30)
    monkeypatch.setenv("CONSOLE_SECURE_COOKIES", "0")
    settings = Settings.from_env()
    assert settings.secret_key.startswith("from-the-environment-")
    assert settings.secure_cookies is False


def test_logout_ends_the_session_even_for_a_copied_cookie(any_db):
    client = client_for(any_db, "anna")
    copied = client.cookies.get(SESSION_COOKIE)
    token = csrf_of(client, "/queue")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/queue").status_code == 303
    replay = TestClient(client.app, follow_redirects=False)
    replay.cookies.set(SESSION_COOKIE, copied)
    assert replay.get("/queue").status_code == 303
    with any_db.session() as s:
        assert s.scalar(select(ConsoleSession)) is None


def test_sessions_expire(sqlite_db):
    client = client_for(sqlite_db, "anna")
    assert client.get("/queue").status_code == 200
    with sqlite_db.session() as s:
        row = s.scalar(select(ConsoleSession))
        assert dt.timedelta(hours=7.9) < row.expires_at - utcnow() <= dt.timedelta(hours=8)
        row.expires_at = utcnow() - dt.timedelta(seconds=1)
    assert client.get("/queue").status_code == 303


def test_the_cookie_holds_no_staff_data(sqlite_db):
    client = client_for(sqlite_db, "anna", "admin")
    payload = client.cookies.get(SESSION_COOKIE).split(".")[0]
    decoded = base64.b64decode(payload + "==").decode()
    assert "anna" not in decoded and "admin" not in decoded
    with sqlite_db.session() as s:
        stored = s.scalar(select(ConsoleSession.id))
    assert stored not in decoded  # the store keeps only the token's hash


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_login_never_redirects_off_site(sqlite_db, target):
    add_staff(sqlite_db, "anna")
    client = TestClient(make_app(sqlite_db), follow_redirects=False)
    token = csrf_of(client)
    response = client.post("/login", data={"username": "anna", "password": PASSWORD,
                                           "csrf_token": token, "next": target})
    assert response.headers["location"] == "/"


def test_pages_are_not_cached_or_framed(sqlite_db):
    client = client_for(sqlite_db, "anna")
    headers = client.get("/queue").headers
    assert headers["cache-control"] == "no-store"
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_create_app_reads_the_environment(monkeypatch, sqlite_db):
    monkeypatch.setenv("CONSOLE_SECRET_KEY", "k" * 48)
    app = create_app(sqlite_db)
    assert app.state.settings.secret_key == "k" * 48
