"""The handoff queue and the actions on one handoff."""
from __future__ import annotations

from starlette.responses import Response

from console import handoffs
from console.web import Ctx
from store.kinds import HandoffStatus
from store.models import Handoff


def home(ctx: Ctx) -> Response:
    return ctx.redirect("/queue")


def queue(ctx: Ctx) -> Response:
    status = ctx.query.get("status", HandoffStatus.WAITING)
    if status not in handoffs.STATUSES:
        status = HandoffStatus.WAITING
    with ctx.db.session() as s:
        rows = handoffs.queue(s, status)
        counts = handoffs.counts(s)
    return ctx.render("queue.html", {"rows": rows, "status": status, "counts": counts})


def _back(ctx: Ctx, user_id: int | None) -> Response:
    target = ctx.form.get("back", "")
    if target.startswith("/") and not target.startswith("//"):
        return ctx.redirect(target)
    return ctx.redirect(f"/conversations/{user_id}" if user_id else "/queue")


def _handoff_action(ctx: Ctx, action: str) -> Response:
    handoff_id = int(ctx.request.path_params["handoff_id"])
    ctx.audit_target = f"handoff:{handoff_id}"
    user_id = None
    handoff: Handoff | None
    try:
        with ctx.db.session() as s:
            if action == "claim":
                handoff = handoffs.claim(s, handoff_id, ctx.staff.username)
                message = "Claimed: you have this conversation."
            elif action == "resolve":
                handoff = handoffs.resolve(s, handoff_id, ctx.staff.username)
                message = "Resolved: the assistant is back and the user was told."
            elif action == "note":
                handoffs.add_note(s, handoff_id, ctx.staff.username, ctx.form.get("text", ""))
                handoff = s.get(Handoff, handoff_id)
                message = "Note added."
            else:
                handoff = handoffs.set_tags(s, handoff_id, ctx.form.get("tags", ""))
                message = "Tags saved."
            user_id = handoff.user_id if handoff else None
        ctx.flash(message, "ok")
    except handoffs.HandoffError as error:
        ctx.flash(str(error), "error")
        with ctx.db.session() as s:
            found = s.get(Handoff, handoff_id)
            user_id = found.user_id if found else None
    return _back(ctx, user_id)


def claim(ctx: Ctx) -> Response:
    return _handoff_action(ctx, "claim")


def resolve(ctx: Ctx) -> Response:
    return _handoff_action(ctx, "resolve")


def add_note(ctx: Ctx) -> Response:
    return _handoff_action(ctx, "note")


def set_tags(ctx: Ctx) -> Response:
    return _handoff_action(ctx, "tags")


def reply(ctx: Ctx) -> Response:
    user_id = int(ctx.request.path_params["user_id"])
    ctx.audit_target = f"user:{user_id}"
    try:
        with ctx.db.session() as s:
            handoffs.reply(s, user_id, ctx.staff.username, ctx.form.get("text", ""))
        ctx.flash("Reply queued: the gateway sends it to the user.", "ok")
    except handoffs.HandoffError as error:
        ctx.flash(str(error), "error")
    return ctx.redirect(f"/conversations/{user_id}#reply")

