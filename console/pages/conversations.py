"""Search and filter conversations; read one transcript with its handoffs, notes and reply box."""
from __future__ import annotations

from starlette.responses import PlainTextResponse, Response

from console import conversations
from console.conversations import Filters
from console.web import Ctx, int_param
from store.kinds import HandoffStatus


def search(ctx: Ctx) -> Response:
    filters = Filters.parse(ctx.query)
    page = int_param(ctx.query.get("page"), 1) or 1
    with ctx.db.session() as s:
        rows, total = conversations.search(s, filters, ctx.settings.tz, page)
    return ctx.render(
        "conversations.html",
        {
            "rows": rows,
            "total": total,
            "filters": filters,
            "page": page,
            "pages": max(1, -(-total // conversations.PAGE_SIZE)),
            "languages": conversations.LANGUAGES,
            "outcomes": conversations.OUTCOMES,
            "modules": conversations.MODULES,
        },
    )


def transcript(ctx: Ctx) -> Response:
    user_id = int(ctx.request.path_params["user_id"])
    ctx.audit_target = f"user:{user_id}"
    with ctx.db.session() as s:
        conversation = conversations.load(s, user_id)
    if conversation is None:
        return PlainTextResponse("No such conversation.", status_code=404)
    open_handoff = next(
        (h for h in conversation.handoffs if h.handoff.status != HandoffStatus.RESOLVED), None
    )
    return ctx.render(
        "transcript.html", {"c": conversation, "open_handoff": open_handoff}
    )
