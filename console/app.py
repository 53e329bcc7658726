"""The console's Starlette application: routes, middleware and where they get the store."""
from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from console.pages import audit, conversations, dashboard, exports, login, nlu, queue, schedule
from console.settings import Settings
from console.web import HERE, LoginGate, SecurityHeaders, page
from store.db import Database, get_database

SESSION_COOKIE = "score_console"


def routes() -> list[Route | Mount]:
    return [
        Route("/login", login.login_form, methods=["GET"]),
        Route("/login", login.login, methods=["POST"]),
        Route("/logout", page(login.logout, audit="logout"), methods=["POST"]),
        Route("/", page(queue.home, audit="view_home")),
        Route("/queue", page(queue.queue, audit="view_queue")),
        Route("/handoffs/{handoff_id:int}/claim", page(queue.claim, audit="claim"),
              methods=["POST"]),
        Route("/handoffs/{handoff_id:int}/resolve", page(queue.resolve, audit="resolve"),
              methods=["POST"]),
        Route("/handoffs/{handoff_id:int}/notes", page(queue.add_note, audit="add_note"),
              methods=["POST"]),
        Route("/handoffs/{handoff_id:int}/tags", page(queue.set_tags, audit="set_tags"),
              methods=["POST"]),
        Route("/conversations", page(conversations.search, audit="view_conversations")),
        Route("/conversations/{user_id:int}",
              page(conversations.transcript, audit="view_transcript")),
        Route("/conversations/{user_id:int}/reply", page(queue.reply, audit="reply"),
              methods=["POST"]),
        Route("/export/transcripts.{fmt}", page(exports.redacted, audit="export_transcripts")),
        Route("/admin/export/transcripts.{fmt}",
              page(exports.full, audit="export_transcripts_full", admin=True)),
        Route("/enquiries", page(schedule.enquiries, audit="view_enquiries")),
        Route("/bookings", page(schedule.bookings, audit="view_bookings")),
        Route("/dashboard", page(dashboard.show, audit="view_dashboard")),
        Route("/nlu", page(nlu.inbox, audit="view_nlu_inbox")),
        Route("/nlu/lines/{line_id:int}/label", page(nlu.label, audit="label_nlu"),
              methods=["POST"]),
        Route("/nlu/export.yml", page(nlu.export, audit="export_nlu")),
        Route("/admin/audit", page(audit.log, audit="view_audit_log", admin=True)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


def create_app(db: Database | None = None, settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    app = Starlette(
        routes=routes(),
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=settings.secret_key,
                session_cookie=SESSION_COOKIE,
                max_age=int(settings.session_hours * 3600),
                same_site="lax",
                https_only=settings.secure_cookies,
            ),
            Middleware(LoginGate),
        ],
    )
    app.state.db = db or get_database()
    app.state.settings = settings
    return app
