"""Building a console over a test store, creating staff and logging in with TestClient."""
from __future__ import annotations

import re

from starlette.applications import Starlette
from starlette.testclient import TestClient

from console.app import create_app
from console.settings import Settings
from store.db import Database
from store.staff import create_user

PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_app(db: Database, **settings: object) -> Starlette:
    options: dict[str, object] = {"secret_key": "test-secret-" + "x" * 40, "secure_cookies": False}
    options.update(settings)
    return create_app(db, Settings(**options))  # type: ignore[arg-type]


def add_staff(db: Database, username: str, role: str = "staff", password: str = PASSWORD) -> None:
    with db.session() as s:
        create_user(s, username, password, role)


def csrf_of(client: TestClient, path: str = "/login") -> str:
    match = CSRF_RE.search(client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD):
    token = csrf_of(client)
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )


def client_for(db: Database, username: str | None = None, role: str = "staff",
               **settings: object) -> TestClient:
    """A TestClient on a fresh console; logged in as `username` (created) when given."""
    client = TestClient(make_app(db, **settings), follow_redirects=False)
    if username:
        add_staff(db, username, role)
        response = login(client, username)
        assert response.status_code == 303, response.text
    return client
