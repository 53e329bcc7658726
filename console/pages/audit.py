"""The audit log, for admins: who viewed or exported what, and when."""
from __future__ import annotations

from sqlalchemy import func, select
from starlette.responses import Response

from console.web import Ctx, int_param
from store.models import AuditEntry

PAGE_SIZE = 100


def log(ctx: Ctx) -> Response:
    who = ctx.query.get("staff", "").strip()[:64]
    action = ctx.query.get("action", "").strip()[:64]
    page = int_param(ctx.query.get("page"), 1) or 1
    stmt = select(AuditEntry)
    if who:
        stmt = stmt.where(AuditEntry.staff_username == who)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    with ctx.db.session() as s:
        total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = list(
            s.scalars(
                stmt.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
                .offset((page - 1) * PAGE_SIZE)
                .limit(PAGE_SIZE)
            )
        )
        actions = list(s.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action)))
    return ctx.render(
        "audit.html",
        {"rows": rows, "total": total, "page": page,
         "pages": max(1, -(-total // PAGE_SIZE)), "who": who, "action": action,
         "actions": actions},
    )
