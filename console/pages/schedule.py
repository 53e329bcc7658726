"""Enquiries (completed eligibility checks) and bookings with each session's schedule."""
from __future__ import annotations

from starlette.responses import Response

from console import schedule
from console.conversations import LANGUAGES, MODULES, OUTCOMES
from console.web import Ctx, int_param


def enquiries(ctx: Ctx) -> Response:
    outcome = ctx.query.get("outcome", "")
    language = ctx.query.get("language", "")
    outcome = outcome if outcome in OUTCOMES else ""
    language = language if language in LANGUAGES else ""
    page = int_param(ctx.query.get("page"), 1) or 1
    with ctx.db.session() as s:
        rows, total = schedule.enquiries(s, outcome, language, page)
    return ctx.render(
        "enquiries.html",
        {
            "rows": rows,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // schedule.PAGE_SIZE)),
            "outcome": outcome,
            "language": language,
            "outcomes": OUTCOMES,
            "languages": LANGUAGES,
        },
    )


def bookings(ctx: Ctx) -> Response:
    module = int_param(ctx.query.get("module"))
    with ctx.db.session() as s:
        sessions = schedule.sessions(s, module)
        consultations = schedule.consultation_bookings(s)
    return ctx.render(
        "bookings.html",
        {"sessions": sessions, "consultations": consultations, "module": module,
         "modules": MODULES},
    )
