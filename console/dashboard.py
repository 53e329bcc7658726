"""The figures behind the dashboard, counted over the last N days in the console's time zone."""
from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.kinds import BookingStatus, Channel, HandoffStatus
from store.models import Booking, Enquiry, Handoff, TranscriptLine, User, utcnow

FAILED_INTENTS = ("nlu_fallback", "out_of_scope")
CLAIM_BUCKETS = (
    ("< 5 min", 5 * 60),
    ("5–15 min", 15 * 60),
    ("15–60 min", 60 * 60),
    ("1–4 h", 4 * 3600),
    ("> 4 h", None),
)


@dataclass(frozen=True)
class ChannelFigures:
    """One channel's figures over the period (users.channel: telegram, wechat, web, ...)."""

    channel: str
    conversations: int  # people who wrote
    messages_in: int
    enquiries: int
    handoffs: int
    bookings: int  # confirmed


@dataclass
class Dashboard:
    days: list[dt.date]
    conversations_per_day: list[int]
    enquiries_per_day: list[int]
    handoffs_per_day: list[int]
    funnel: list[tuple[str, int]]
    claim_seconds: list[float]
    claim_buckets: list[tuple[str, int]]
    handoffs_waiting: int
    topics: list[tuple[str, int]]
    failed_count: int
    messages_in: int
    failed_recent: list[TranscriptLine] = field(default_factory=list)
    by_channel: list[ChannelFigures] = field(default_factory=list)

    @property
    def median_claim(self) -> float | None:
        return statistics.median(self.claim_seconds) if self.claim_seconds else None

    @property
    def p90_claim(self) -> float | None:
        if not self.claim_seconds:
            return None
        ordered = sorted(self.claim_seconds)
        return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]

    @property
    def failed_rate(self) -> float:
        return self.failed_count / self.messages_in if self.messages_in else 0.0

    def funnel_notes(self) -> list[str]:
        first = self.funnel[0][1] if self.funnel else 0
        return [f"{(n / first * 100):.0f}%" if first else "–" for _, n in self.funnel]


def build(session: Session, tz: ZoneInfo, days: int = 30, now: dt.datetime | None = None) -> Dashboard:
    now = now or utcnow()
    today = now.astimezone(tz).date()
    day_list = [today - dt.timedelta(days=days - 1 - i) for i in range(days)]
    start = dt.datetime.combine(day_list[0], dt.time(), tzinfo=tz).astimezone(dt.UTC)
    index = {day: i for i, day in enumerate(day_list)}

    def slot(when: dt.datetime) -> int | None:
        return index.get(when.astimezone(tz).date())

    # Conversations per day: distinct users who wrote that day.
    writers: dict[int, set[int]] = defaultdict(set)
    asked: set[int] = set()
    messages_in = 0
    for user_id, created in session.execute(
        select(TranscriptLine.user_id, TranscriptLine.created_at).where(
            TranscriptLine.direction == "in", TranscriptLine.created_at >= start
        )
    ):
        messages_in += 1
        asked.add(user_id)
        i = slot(created)
        if i is not None:
            writers[i].add(user_id)
    conversations = [len(writers[i]) for i in range(days)]

    enquiries = [0] * days
    checked: set[int] = set()
    for enquirer, created in session.execute(
        select(Enquiry.user_id, Enquiry.created_at).where(Enquiry.created_at >= start)
    ):
        i = slot(created)
        if i is not None:
            enquiries[i] += 1
        if enquirer is not None:
            checked.add(enquirer)

    booked = set(
        session.scalars(
            select(Booking.user_id).where(
                Booking.status == BookingStatus.CONFIRMED,
                Booking.created_at >= start,
                Booking.user_id.is_not(None),
            )
        )
    )
    # A funnel: each step counts only the users who also passed the step before.
    step2 = asked & checked
    funnel = [
        ("Asked a question", len(asked)),
        ("Did an eligibility check", len(step2)),
        ("Booked", len(step2 & booked)),
    ]

    handoffs = [0] * days
    claim_seconds: list[float] = []
    for created, claimed in session.execute(
        select(Handoff.created_at, Handoff.claimed_at).where(Handoff.created_at >= start)
    ):
        i = slot(created)
        if i is not None:
            handoffs[i] += 1
        if claimed is not None:
            claim_seconds.append(max(0.0, (claimed - created).total_seconds()))
    buckets = []
    lower = 0
    for label, upper in CLAIM_BUCKETS:
        buckets.append(
            (label, sum(1 for s in claim_seconds if s >= lower and (upper is None or s < upper)))
        )
        lower = upper or 0
    waiting = session.scalar(
        select(func.count()).select_from(Handoff).where(Handoff.status == HandoffStatus.WAITING)
    ) or 0

    topics = [
        (intent or "", n)
        for intent, n in session.execute(
            select(TranscriptLine.intent, func.count())
            .where(
                TranscriptLine.direction == "in",
                TranscriptLine.created_at >= start,
                TranscriptLine.intent.like("faq\\_%", escape="\\"),
            )
            .group_by(TranscriptLine.intent)
            .order_by(func.count().desc(), TranscriptLine.intent)
            .limit(10)
        )
    ]
    failed_filter = (
        TranscriptLine.direction == "in",
        TranscriptLine.created_at >= start,
        TranscriptLine.intent.in_(FAILED_INTENTS),
    )
    failed_count = session.scalar(select(func.count()).where(*failed_filter)) or 0
    failed_recent = list(
        session.scalars(
            select(TranscriptLine)
            .where(*failed_filter)
            .order_by(TranscriptLine.created_at.desc(), TranscriptLine.id.desc())
            .limit(12)
        )
    )
    return Dashboard(
        by_channel=channel_figures(session, start),
        days=day_list,
        conversations_per_day=conversations,
        enquiries_per_day=enquiries,
        handoffs_per_day=handoffs,
        funnel=funnel,
        claim_seconds=claim_seconds,
        claim_buckets=buckets,
        handoffs_waiting=waiting,
        topics=topics,
        failed_count=failed_count,
        messages_in=messages_in,
        failed_recent=failed_recent,
    )


def channel_figures(session: Session, start: dt.datetime) -> list[ChannelFigures]:
    """Per channel since `start`: every channel the project has, then any other found in the
    store; a channel with nothing in the period shows zeros (it is on, nobody wrote)."""
    def count_by_channel(query) -> dict[str, int]:
        return {channel: n for channel, n in session.execute(query)}

    people = count_by_channel(
        select(User.channel, func.count(func.distinct(TranscriptLine.user_id)))
        .join(User, User.id == TranscriptLine.user_id)
        .where(TranscriptLine.direction == "in", TranscriptLine.created_at >= start)
        .group_by(User.channel)
    )
    messages = count_by_channel(
        select(User.channel, func.count())
        .select_from(TranscriptLine).join(User, User.id == TranscriptLine.user_id)
        .where(TranscriptLine.direction == "in", TranscriptLine.created_at >= start)
        .group_by(User.channel)
    )
    enquiries = count_by_channel(
        select(User.channel, func.count()).select_from(Enquiry).join(User, User.id == Enquiry.user_id)
        .where(Enquiry.created_at >= start).group_by(User.channel)
    )
    handoffs = count_by_channel(
        select(User.channel, func.count()).select_from(Handoff).join(User, User.id == Handoff.user_id)
        .where(Handoff.created_at >= start).group_by(User.channel)
    )
    bookings = count_by_channel(
        select(User.channel, func.count()).select_from(Booking).join(User, User.id == Booking.user_id)
        .where(Booking.status == BookingStatus.CONFIRMED, Booking.created_at >= start)
        .group_by(User.channel)
    )
    # The channels people write on first; REST clients (scripts, benchmarks) only when they wrote.
    shown = [Channel.TELEGRAM, Channel.WECHAT, Channel.WEB, Channel.LOCAL]
    found = set(people) | set(handoffs) | set(enquiries) | set(bookings)
    channels = [str(c) for c in shown] + sorted(found - {str(c) for c in shown})
    return [
        ChannelFigures(channel, people.get(channel, 0), messages.get(channel, 0), enquiries.get(channel, 0),
                       handoffs.get(channel, 0), bookings.get(channel, 0))
        for channel in channels
    ]
