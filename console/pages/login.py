"""Log in and log out. The only pages reachable without a session are the login form and
its POST, and the POST still needs the CSRF token the form carries."""
from __future__ import annotations

import datetime as dt
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from console.settings import Settings
from console.web import Ctx, csrf_failure, read_form, render
from store import console_sessions, staff as staff_accounts
from store.db import Database
from store.staff import write_audit


def safe_next(target: str | None) -> str:
    """Only a path on this console: never another site ("//evil", "https://...")."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


async def login_form(request: Request) -> Response:
    if request.session.get("sid"):
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return render(
        request, "login.html", {"error": None, "next": request.query_params.get("next", ""),
                                "username": ""}, staff=None
    )


def _attempt(db: Database, settings: Settings, username: str, password: str):
    with db.session() as s:
        result = staff_accounts.authenticate(
            s,
            username,
            password,
            max_failures=settings.max_failed_logins,
            lockout=dt.timedelta(minutes=settings.lockout_minutes),
        )
        user = result.user
        if user is None:
            return None, result
        token = console_sessions.start(s, user.id, dt.timedelta(hours=settings.session_hours))
        return (token, user.username), result


async def login(request: Request) -> Response:
    form = await read_form(request)
    if form is None:
        return csrf_failure()
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    username = str(form.get("username", ""))[:64]
    password = str(form.get("password", ""))[:1024]
    next_url = str(form.get("next", ""))
    found, result = await run_in_threadpool(_attempt, db, settings, username, password)
    if found is None:
        action = "login_locked" if result.locked else "login_failed"
        await run_in_threadpool(write_audit, db, username or "?", action, None)
        context = {"error": result.error, "next": next_url, "username": username}
        return render(request, "login.html", context, staff=None, status_code=401)
    token, name = found
    # A fresh session (and CSRF token) at login: nothing from before carries over.
    request.session.clear()
    request.session.update({"sid": token, "csrf": secrets.token_urlsafe(32)})
    await run_in_threadpool(write_audit, db, name, "login", None)
    return RedirectResponse(safe_next(next_url), status_code=303)


def logout(ctx: Ctx) -> Response:
    token = ctx.request.session.get("sid", "")
    with ctx.db.session() as s:
        console_sessions.end(s, token)
    ctx.request.session.clear()
    return ctx.redirect("/login")
