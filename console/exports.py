"""Transcript exports (CSV and JSON): redacted for everyone, in full only for admins."""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from console.conversations import Filters, matching_user_ids
from console.redact import Redactor
from store.models import Booking, Enquiry, TranscriptLine, User

MAX_CONVERSATIONS = 5000
CSV_FIELDS = (
    "conversation", "channel", "user_name", "username", "external_id", "time_utc", "direction",
    "language", "intent", "confidence", "staff_name", "text",
)


@dataclass(frozen=True)
class ExportLine:
    conversation: str
    channel: str  # users.channel: telegram, wechat, web, local, rest
    user_name: str
    username: str
    external_id: str  # the channel's own id: Telegram user id, WeChat openid, web visitor id
    time_utc: str
    direction: str
    language: str
    intent: str
    confidence: float | None
    staff_name: str
    text: str


def known_personal_data(session: Session) -> Redactor:
    """A redactor for every personal value the store knows, of all users: names are typed
    across conversations too (a manager mentioning a colleague who also wrote in)."""
    redactor = Redactor()
    for user in session.scalars(select(User)):
        redactor.add_name(user.display_name)
        redactor.add_username(user.username)
        redactor.add_id(user.external_id)
        redactor.add_id(user.chat_id)
        redactor.add_contact(user.contact_phone)
    for contact_name, contact in session.execute(select(Enquiry.contact_name, Enquiry.contact)):
        redactor.add_name(contact_name)
        redactor.add_contact(contact)
    for attendees, contact in session.execute(select(Booking.attendees, Booking.contact)):
        for person in attendees or []:
            if isinstance(person, dict):
                redactor.add_name(str(person.get("name") or ""))
        redactor.add_contact(contact)
    return redactor


def collect(
    session: Session,
    filters: Filters,
    tz: ZoneInfo,
    *,
    full: bool,
    user_id: int | None = None,
) -> list[ExportLine]:
    ids = [user_id] if user_id is not None else matching_user_ids(
        session, filters, tz, MAX_CONVERSATIONS
    )
    users = list(session.scalars(select(User).where(User.id.in_(ids)).order_by(User.id)))
    redact = None if full else known_personal_data(session)
    out: list[ExportLine] = []
    for n, user in enumerate(users, start=1):
        lines = session.scalars(
            select(TranscriptLine)
            .where(TranscriptLine.user_id == user.id)
            .order_by(TranscriptLine.created_at, TranscriptLine.id)
        )
        for line in lines:
            if redact is None:
                conv, name = user.sender_id, user.display_name or ""
                username, external_id, text = user.username or "", user.external_id, line.text
            else:
                # A stable pseudonym per export keeps lines of one conversation together.
                conv, name, username, external_id = f"conversation-{n}", "", "", ""
                text = redact(line.text)
            out.append(
                ExportLine(
                    conversation=conv,
                    channel=user.channel,
                    user_name=name,
                    username=username,
                    external_id=external_id,
                    time_utc=line.created_at.isoformat(timespec="seconds"),
                    direction=line.direction,
                    language=line.language or "",
                    intent=line.intent or "",
                    confidence=line.confidence,
                    staff_name=line.staff_name or "",
                    text=text,
                )
            )
    return out


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # Spreadsheets run cells that start with these as formulas (CSV injection).
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def to_csv(lines: Iterable[ExportLine]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_FIELDS)
    for line in lines:
        writer.writerow([_cell(getattr(line, name)) for name in CSV_FIELDS])
    # A BOM so Excel opens the Chinese text as UTF-8.
    return "\ufeff" + buffer.getvalue()


def to_json(lines: Iterable[ExportLine], *, redacted: bool) -> str:
    conversations: dict[str, dict[str, Any]] = {}
    for line in lines:
        conv = conversations.setdefault(
            line.conversation,
            {
                "conversation": line.conversation,
                "channel": line.channel,
                "user_name": line.user_name or None,
                "username": line.username or None,
                "external_id": line.external_id or None,
                "lines": [],
            },
        )
        conv["lines"].append(
            {
                "time_utc": line.time_utc,
                "direction": line.direction,
                "language": line.language or None,
                "intent": line.intent or None,
                "confidence": line.confidence,
                "staff_name": line.staff_name or None,
                "text": line.text,
            }
        )
    document = {"redacted": redacted, "conversations": list(conversations.values())}
    return json.dumps(document, ensure_ascii=False, indent=2)
