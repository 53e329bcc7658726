"""Hands the conversation to staff: the bot pauses for this user until staff resume it."""
from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import DomainDict, Events, attempt, entity_of, intent_of, language_of, store_call
from i18n import t
from store.handoff import start_handoff

# What made the bot hand over, by the intent that led here.
REASONS = {"request_human": "asked", "nlu_fallback": "misunderstood", "out_of_scope": "misunderstood"}


def next_office_opening(now: dt.datetime) -> dt.datetime | None:
    """When staff are next in the office, or None if they are in now (OFFICE_* settings)."""
    zone = ZoneInfo(os.environ.get("OFFICE_TIMEZONE", "Asia/Shanghai"))
    start_s, end_s = os.environ.get("OFFICE_HOURS", "09:00-18:00").split("-")
    first_day, last_day = (int(x) for x in os.environ.get("OFFICE_DAYS", "1-5").split("-"))
    start, end = dt.time.fromisoformat(start_s), dt.time.fromisoformat(end_s)
    local = now.astimezone(zone)
    if first_day <= local.isoweekday() <= last_day and start <= local.time() < end:
        return None
    day = local.date() if local.time() < start else local.date() + dt.timedelta(days=1)
    while not first_day <= day.isoweekday() <= last_day:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, start, tzinfo=zone)


class ActionHandoff(Action):
    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        lang = language_of(tracker)
        # Buttons that offer a person say why, e.g. /request_human{"reason":"unknown_fact"}.
        reason = entity_of(tracker, "reason") or REASONS.get(intent_of(tracker), "asked")
        handoff = await attempt(dispatcher, tracker, "handoff", store_call(
            start_handoff, tracker.sender_id, reason, lang, detail=tracker.latest_message.get("text")
        ))
        if handoff is None:
            return []
        if not handoff.created_now:
            dispatcher.utter_message(text=t("handoff_already", lang))
            return []
        text = t("handoff_started", lang)
        opening = next_office_opening(dt.datetime.now(dt.UTC))
        if opening is not None:
            when = opening.strftime("%Y-%m-%d %H:%M") if lang == "zh" else opening.strftime("%a %d %b %H:%M")
            text += "\n" + t("handoff_after_hours", lang, when=when)
        dispatcher.utter_message(text=text)
        return []
