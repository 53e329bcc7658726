"""The dashboard: figures of the last 7, 30 or 90 days as server-rendered SVG charts."""
from __future__ import annotations

from starlette.responses import Response

from console import charts, dashboard
from console.web import Ctx, int_param

RANGES = (7, 30, 90)


def show(ctx: Ctx) -> Response:
    days = int_param(ctx.query.get("days"), 30)
    days = days if days in RANGES else 30
    with ctx.db.session() as s:
        d = dashboard.build(s, ctx.settings.tz, days)
    labels = [day.strftime("%d %b") for day in d.days]
    figures = {
        "activity": charts.lines(
            labels,
            [charts.Series("Conversations", d.conversations_per_day),
             charts.Series("Enquiries", d.enquiries_per_day)],
            title="Conversations and enquiries per day",
        ),
        "funnel": charts.hbars(d.funnel, title="Booking funnel", note=d.funnel_notes()),
        "handoffs": charts.columns(
            labels, [charts.Series("Handoffs", d.handoffs_per_day)], title="Handoffs per day"
        ),
        "claim": charts.hbars(d.claim_buckets, title="Time to claim", label_width=120),
        "topics": charts.hbars(d.topics, title="Top topics"),
    }
    return ctx.render(
        "dashboard.html", {"d": d, "figures": figures, "days": days, "ranges": RANGES}
    )
