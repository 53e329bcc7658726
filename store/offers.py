"""Offers: a classroom session or consultation slot as shown to a factory, and its wording.

An `Offer` is plain data (no database row), so actions, the gateway's notifications and the
console can pass it around and format it in the reader's language.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from i18n import normalise, t
from store.kinds import OfferKind
from store.notifications import ButtonPayload, MessagePayload
from store.places import place_name

CLASSROOM = OfferKind.CLASSROOM
CONSULTATION = OfferKind.CONSULTATION


@dataclass(frozen=True)
class Offer:
    """A classroom session or consultation slot as offered to a factory."""

    kind: str
    id: int
    code: str
    module: int
    place: str  # city (classroom) or region (consultation), as in the schedule files
    detail: str  # venue or expert
    starts_at: dt.datetime
    ends_at: dt.datetime
    timezone: str
    seats_left: int
    detail_zh: str | None = None  # the venue's Chinese name, when the schedule gives one


# --- showing dates ---------------------------------------------------------------------------


def local(when: dt.datetime, timezone: str) -> dt.datetime:
    return when.astimezone(ZoneInfo(timezone))


def format_date(when: dt.datetime, timezone: str, lang: str | None) -> str:
    """'12 Jan 2027 (Tue)' / '2027年1月12日（周二）', in the session's local time."""
    day = local(when, timezone)
    months = t("booking_month_names", lang).split(",")
    weekdays = t("booking_weekday_names", lang).split(",")
    return t("booking_date_format", lang, day=day.day, month=months[day.month - 1],
             month_number=day.month, year=day.year, weekday=weekdays[day.weekday()])


def format_time(when: dt.datetime, timezone: str) -> str:
    return local(when, timezone).strftime("%H:%M")


def module_title(module: int, lang: str | None) -> str:
    return t(f"booking_module_{module}", lang)


# --- showing offers --------------------------------------------------------------------------


def offer_line(offer: Offer, lang: str | None) -> str:
    """One line for a date button: '12 Jan 2027 (Tue), Dongguan, 3 seats left', or
    '14 Dec 2026 (Mon) 09:30, Guangdong, with Chen Jing' (a visit names its expert, so two
    experts free at the same hour are two different buttons)."""
    date = format_date(offer.starts_at, offer.timezone, lang)
    place = place_name(offer.place, lang)
    if offer.kind == CONSULTATION:
        return t("booking_slot_line", lang, date=date, expert=offer.detail,
                 time=format_time(offer.starts_at, offer.timezone), place=place)
    key = "booking_session_line_one" if offer.seats_left == 1 else "booking_session_line"
    if offer.seats_left == 0:
        key = "booking_session_line_full"
    return t(key, lang, date=date, place=place, seats=offer.seats_left)


def offer_values(offer: Offer, lang: str | None) -> dict[str, Any]:
    """Placeholders describing an offer, localised: for summaries and notifications."""
    return {
        "module": module_title(offer.module, lang),
        "date": format_date(offer.starts_at, offer.timezone, lang),
        "time": format_time(offer.starts_at, offer.timezone),
        "end_date": format_date(offer.ends_at, offer.timezone, lang),
        "end_time": format_time(offer.ends_at, offer.timezone),
        "place": place_name(offer.place, lang),
        "detail": offer.detail_zh if offer.detail_zh and normalise(lang) == "zh" else offer.detail,
    }


def notification_payload(text_key: str, lang: str | None, offer: Offer, *, reference: str,
                         extra: dict[str, Any] | None = None) -> MessagePayload:
    """A notification payload (store.notifications.MessagePayload) about a booked offer."""
    lang = normalise(lang)
    values = {**offer_values(offer, lang), "reference": reference, **(extra or {})}
    return MessagePayload(
        text_key=text_key,
        language=lang,
        values=values,
        buttons=[ButtonPayload(title=t("booking_button_my_bookings", lang), payload="/my_bookings")],
        booking_reference=reference,
    )
