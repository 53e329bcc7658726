"""The dashboard: figures of the last 7, 30 or 90 days as server-rendered SVG charts."""
from __future__ import annotations

from starlette.responses import Response

from console import charts, dashboard
from console.web import Ctx, int_param

RANGES = (7, 30, 90)
# viewBox widths close to the panels' size on a laptop screen, so text stays about 11-12 px.
WIDE, HALF = 1180, 560


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
            title="Conversations and enquiries per day", width=WIDE, height=260,
        ),
        "funnel": charts.hbars(d.funnel, title="Booking funnel", note=d.funnel_notes(),
                              width=HALF, label_width=170),
        "handoffs": charts.columns(
            labels, [charts.Series("Handoffs", d.handoffs_per_day)], title="Handoffs per day",
            width=HALF, height=220,
        ),
        "claim": charts.hbars(d.claim_buckets, title="Time to claim", width=HALF,
                              label_width=100),
        "topics": charts.hbars(d.topics, title="Top topics", width=HALF, label_width=170),
        "channels": charts.columns(
            [row.channel for row in d.by_channel],
            [charts.Series("People who wrote", [row.conversations for row in d.by_channel]),
             charts.Series("Eligibility checks", [row.enquiries for row in d.by_channel]),
             charts.Series("Handoffs", [row.handoffs for row in d.by_channel]),
             charts.Series("Bookings", [row.bookings for row in d.by_channel])],
            title="By channel", width=HALF, height=240,
        ),
    }
    return ctx.render(
        "dashboard.html", {"d": d, "figures": figures, "days": days, "ranges": RANGES}
    )
