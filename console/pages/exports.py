"""Transcript exports: redacted for all staff; the full export is for admins only."""
from __future__ import annotations

from starlette.responses import PlainTextResponse, Response

from console import exports
from console.conversations import Filters
from console.web import Ctx, int_param

MEDIA = {"csv": "text/csv; charset=utf-8", "json": "application/json; charset=utf-8"}


def _export(ctx: Ctx, *, full: bool) -> Response:
    fmt = ctx.request.path_params["fmt"]
    if fmt not in MEDIA:
        return PlainTextResponse("Export as csv or json.", status_code=404)
    filters = Filters.parse(ctx.query)
    user_id = int_param(ctx.query.get("user"))
    with ctx.db.session() as s:
        lines = exports.collect(s, filters, ctx.settings.tz, full=full, user_id=user_id)
    body = exports.to_csv(lines) if fmt == "csv" else exports.to_json(lines, redacted=not full)
    kind = "full" if full else "redacted"
    query = ctx.request.url.query
    ctx.audit_target = f"{kind} {fmt} lines={len(lines)}" + (f" {query}" if query else "")
    filename = f"transcripts-{kind}.{fmt}"
    return Response(
        body,
        media_type=MEDIA[fmt],
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


def redacted(ctx: Ctx) -> Response:
    return _export(ctx, full=False)


def full(ctx: Ctx) -> Response:
    return _export(ctx, full=True)
