"""The pieces every page uses: templates, the login gate, CSRF, roles, audit and flash messages.

Every console route is built with `page()`, which is where the rules live: a session is needed
(checked again here, behind the gate middleware), POSTs need the session's CSRF token, admin
pages need the admin role, and each call is written to the audit log.
"""
from __future__ import annotations

import datetime as dt
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console.settings import Settings
from store.db import Database
from store.models import utcnow
from store.staff import write_audit

HERE = Path(__file__).resolve().parent
# Reachable without a session: the login form and the stylesheet it uses.
PUBLIC_PATHS = ("/login", "/static/")


@dataclass
class Staff:
    """The logged-in staff member, read from the store on every request (roles can change)."""

    id: int
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass
class Ctx:
    """What a page handler gets: it runs in a worker thread, so it may use the store freely."""

    request: Request
    db: Database
    settings: Settings
    staff: Staff
    form: Mapping[str, str] = field(default_factory=dict)
    audit_target: str | None = None  # a handler may name what it touched more precisely

    @property
    def query(self) -> Mapping[str, str]:
        return self.request.query_params

    def flash(self, text: str, level: str = "info") -> None:
        self.request.session.setdefault("flash", []).append([level, text])

    def redirect(self, url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303)

    def render(self, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
        return render(self.request, name, context, staff=self.staff, status_code=status_code)


# --- templates ----------------------------------------------------------------------------


@jinja2.pass_context
def _localtime(
    context: Any, value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M"
) -> str:
    """A stored UTC time in the console's time zone (CONSOLE_TIMEZONE)."""
    if value is None:
        return ""
    settings: Settings = context["request"].app.state.settings
    return value.astimezone(settings.tz).strftime(fmt)


def age(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """A short age such as '4 min', '3 h 10 min' or '2 d 5 h'."""
    if value is None:
        return ""
    seconds = max(0, int(((now or utcnow()) - value).total_seconds()))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 1:
        return "just now"
    if hours < 1:
        return f"{minutes} min"
    if days < 1:
        rest = minutes - hours * 60
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    rest = hours - days * 24
    return f"{days} d {rest} h" if rest else f"{days} d"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return age(utcnow() - dt.timedelta(seconds=seconds)).replace("just now", "< 1 min")


def _query_with(request: Request, **changes: Any) -> str:
    """This page's query string with some parameters changed (for filters and paging)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = str(value)
    return "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in params.items()) if params else "?"


def _make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # user messages are shown as text, always
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["localtime"] = _localtime
    env.filters["age"] = age
    env.filters["duration"] = duration
    env.globals["query_with"] = _query_with
    return Jinja2Templates(env=env)


templates = _make_templates()


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    staff: Staff | None,
    status_code: int = 200,
) -> Response:
    flashes = request.session.pop("flash", [])
    base = {
        "staff": staff,
        "csrf_token": csrf_token(request),
        "flashes": flashes,
        "path": request.url.path,
        "tzname": request.app.state.settings.timezone,
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)


# --- CSRF ----------------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """The session's CSRF token (one per session, created on first use; anonymous too)."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_field(request: Request) -> Markup:
    return Markup('<input type="hidden" name="csrf_token" value="%s">') % csrf_token(request)


def csrf_ok(request: Request, form: FormData) -> bool:
    expected = request.session.get("csrf")
    given = form.get("csrf_token") or request.headers.get("x-csrf-token") or ""
    if not (isinstance(expected, str) and expected and isinstance(given, str)):
        return False
    return hmac.compare_digest(expected, given)


async def read_form(request: Request) -> FormData | None:
    """The POSTed form when its CSRF token matches the session's, else None."""
    form = await request.form(max_files=0, max_fields=200)
    return form if csrf_ok(request, form) else None


def csrf_failure() -> Response:
    return PlainTextResponse(
        "The form expired or did not come from this console (CSRF check failed). "
        "Go back, reload the page and try again.",
        status_code=403,
    )


# --- the login gate -------------------------------------------------------------------------


def is_public(path: str) -> bool:
    return path == "/login" or any(path.startswith(p) for p in PUBLIC_PATHS if p.endswith("/"))


def login_redirect(request_path: str, query: str = "") -> RedirectResponse:
    target = request_path + (f"?{query}" if query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


class LoginGate:
    """ASGI middleware: no session, no console (except the login page and the stylesheet).

    It sits behind the session middleware. Page handlers check the session again through
    `page()`; this gate also covers any route that forgot to.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        if not scope.get("session", {}).get("sid"):
            if scope["method"] in ("GET", "HEAD"):
                query = scope.get("query_string", b"").decode("latin-1")
                response: Response = login_redirect(scope["path"], query)
            else:
                response = PlainTextResponse("Log in first.", status_code=401)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """Headers that keep the pages from being framed, sniffed, cached or scripted."""

    CSP = (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", self.CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                ]
                if not is_static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --- page handlers --------------------------------------------------------------------------

Handler = Callable[[Ctx], Response]


def _load_staff(db: Database, token: Any) -> Staff | None:
    from store import console_sessions as sessions

    with db.session() as s:
        row = sessions.staff_for(s, str(token))
        if row is None:
            return None
        # A lockout does not end sessions already open: otherwise anyone could log staff out
        # by typing wrong passwords for their name.
        return Staff(id=row.id, username=row.username, role=row.role)


def page(handler: Handler, *, audit: str, admin: bool = False) -> Callable[[Request], Any]:
    """Wrap a page handler with the console's rules (session, CSRF, role, audit)."""

    async def endpoint(request: Request) -> Response:
        db: Database = request.app.state.db
        token = request.session.get("sid")
        staff = await run_in_threadpool(_load_staff, db, token) if token else None
        if staff is None:
            request.session.clear()
            if request.method in ("GET", "HEAD"):
                return login_redirect(request.url.path, request.url.query)
            return PlainTextResponse("Log in first.", status_code=401)
        form: Mapping[str, str] = {}
        if request.method == "POST":
            data = await read_form(request)
            if data is None:
                return csrf_failure()
            form = {k: v for k, v in data.items() if isinstance(v, str)}
        if admin and not staff.is_admin:
            await run_in_threadpool(
                write_audit, db, staff.username, "denied", f"{audit} {request.url.path}"
            )
            return PlainTextResponse("Admins only.", status_code=403)
        ctx = Ctx(request=request, db=db, settings=request.app.state.settings, staff=staff, form=form)
        response = await run_in_threadpool(handler, ctx)
        target = ctx.audit_target or (
            request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
        await run_in_threadpool(write_audit, db, staff.username, audit, target)
        return response

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


def int_param(value: str | None, default: int | None = None) -> int | None:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default
