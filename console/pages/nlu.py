"""The NLU inbox: label misunderstood messages; export the labels as Rasa NLU YAML."""
from __future__ import annotations

from starlette.responses import Response

from console import nlu_inbox
from console.exports import known_personal_data
from console.web import Ctx, int_param
from store import nlu_labels

SHOW = ("open", "labelled", "all")


def inbox(ctx: Ctx) -> Response:
    show = ctx.query.get("show", "open")
    show = show if show in SHOW else "open"
    page = int_param(ctx.query.get("page"), 1) or 1
    with ctx.db.session() as s:
        rows, total = nlu_inbox.inbox(s, show, page)
    return ctx.render(
        "nlu.html",
        {
            "rows": rows,
            "total": total,
            "show": show,
            "page": page,
            "pages": max(1, -(-total // nlu_inbox.PAGE_SIZE)),
            "intents": nlu_inbox.domain_intents(ctx.settings.domain_file),
            "new_prefix": nlu_inbox.NEW_PREFIX,
        },
    )


def label(ctx: Ctx) -> Response:
    line_id = int(ctx.request.path_params["line_id"])
    choice = ctx.form.get("intent", "")
    intents = nlu_inbox.domain_intents(ctx.settings.domain_file)
    if choice == "__new__":
        name = nlu_inbox.new_topic_name(ctx.form.get("new_topic", ""))
        value = nlu_inbox.new_intent_value(name) if name else ""
        if name in intents:
            value = name  # "new" topic that already exists: use the existing intent
    else:
        value = choice if choice in intents else ""
    back = ctx.form.get("back", "/nlu")
    back = back if back.startswith("/nlu") else "/nlu"
    if not value:
        ctx.flash("Pick an intent, or name the new topic.", "error")
        return ctx.redirect(back)
    ctx.audit_target = f"line:{line_id} {value}"
    try:
        with ctx.db.session() as s:
            nlu_labels.label(s, line_id, value, ctx.staff.username)
        ctx.flash(f"Labelled as {value}.", "ok")
    except ValueError as error:
        ctx.flash(str(error), "error")
    return ctx.redirect(back)


def export(ctx: Ctx) -> Response:
    with ctx.db.session() as s:
        body = nlu_inbox.export_yaml(s, known_personal_data(s))
    return Response(
        body,
        media_type="application/x-yaml; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="nlu_console_labels.yml"'},
    )
