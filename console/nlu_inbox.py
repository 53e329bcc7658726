"""The NLU inbox: user messages the assistant did not understand (or that ended in a
handoff), labelled by staff with the intended intent and exported as Rasa NLU training data."""
from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import yaml
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from console.redact import Redactor
from store.models import Handoff, NluLabel, TranscriptLine, User

NEW_PREFIX = "new:"
FALLBACK = "nlu_fallback"
# Messages this long before a handoff (or during it) belong to the handed-off conversation.
HANDOFF_LEAD = dt.timedelta(minutes=30)
PAGE_SIZE = 50
_NAME_RE = re.compile(r"[^a-z0-9_]+")


def domain_intents(domain_file: Path) -> list[str]:
    """The intents listed in domain.yml (names, in file order), without nlu_fallback."""
    try:
        document = yaml.safe_load(domain_file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []
    names = []
    for entry in document.get("intents") or []:
        name = entry if isinstance(entry, str) else next(iter(entry), None)
        if isinstance(name, str) and name != FALLBACK and name not in names:
            names.append(name)
    return names


def new_topic_name(raw: str) -> str:
    """A usable intent name from what staff typed ("Training fees" -> training_fees)."""
    return _NAME_RE.sub("_", raw.strip().lower()).strip("_")[:80]


@dataclass(frozen=True)
class InboxRow:
    line: TranscriptLine
    user: User
    label: NluLabel | None


def _candidate_ids(session: Session, show: str) -> list[int]:
    """Ids of inbox lines, newest first.

    The handoff window (30 minutes before a handoff until it is resolved) is checked in
    Python: date arithmetic in SQL differs between SQLite and PostgreSQL. The SQL part
    already narrows to fallback lines and lines of users who were handed off.
    """
    windows: dict[int, list[tuple[dt.datetime, dt.datetime | None]]] = defaultdict(list)
    for user_id, created, resolved in session.execute(
        select(Handoff.user_id, Handoff.created_at, Handoff.resolved_at).where(
            Handoff.user_id.is_not(None)
        )
    ):
        assert user_id is not None  # the query's condition
        windows[user_id].append((created - HANDOFF_LEAD, resolved))
    stmt = (
        select(TranscriptLine.id, TranscriptLine.user_id, TranscriptLine.created_at,
               TranscriptLine.intent)
        .outerjoin(NluLabel, NluLabel.transcript_line_id == TranscriptLine.id)
        .where(
            TranscriptLine.direction == "in",
            or_(
                TranscriptLine.intent == FALLBACK,
                TranscriptLine.user_id.in_(select(Handoff.user_id).distinct()),
            ),
        )
        .order_by(TranscriptLine.created_at.desc(), TranscriptLine.id.desc())
    )
    if show == "open":
        stmt = stmt.where(NluLabel.id.is_(None))
    elif show == "labelled":
        stmt = stmt.where(NluLabel.id.is_not(None))
    ids = []
    for line_id, user_id, created, intent in session.execute(stmt):
        if intent == FALLBACK or any(
            start <= created and (end is None or created <= end)
            for start, end in windows.get(user_id, ())
        ):
            ids.append(line_id)
    return ids


def inbox(session: Session, show: str = "open", page: int = 1) -> tuple[list[InboxRow], int]:
    """Candidate lines, newest first. show: open (unlabelled) | labelled | all."""
    ids = _candidate_ids(session, show)
    start = (max(page, 1) - 1) * PAGE_SIZE
    wanted = ids[start:start + PAGE_SIZE]
    rows = session.execute(
        select(TranscriptLine, User, NluLabel)
        .join(User, User.id == TranscriptLine.user_id)
        .outerjoin(NluLabel, NluLabel.transcript_line_id == TranscriptLine.id)
        .where(TranscriptLine.id.in_(wanted))
        .order_by(TranscriptLine.created_at.desc(), TranscriptLine.id.desc())
    ).all()
    return [InboxRow(line, user, label) for line, user, label in rows], len(ids)


def export_yaml(session: Session, redact: Redactor | None = None) -> str:
    """The labelled examples as Rasa NLU training data (version 3.1), one block per intent."""
    examples: dict[str, list[str]] = defaultdict(list)
    rows = session.execute(
        select(NluLabel.intent, TranscriptLine.text)
        .join(TranscriptLine, TranscriptLine.id == NluLabel.transcript_line_id)
        .order_by(NluLabel.intent, TranscriptLine.created_at)
    )
    new_topics = []
    for intent, text in rows:
        name = intent
        if intent.startswith(NEW_PREFIX):
            name = intent[len(NEW_PREFIX):]
            if name not in new_topics:
                new_topics.append(name)
        # One example per line: newlines would end the YAML list item.
        example = " ".join((redact(text) if redact else text).split())
        if example and example not in examples[name]:
            examples[name].append(example)
    out = [
        "# NLU examples labelled in the staff console, for the next training.",
        "# Personal data (names, phone numbers, emails, ids) is replaced by placeholders.",
    ]
    if new_topics:
        out.append("# New topics, to add to domain.yml (intents) and to a story or rule: "
                   + ", ".join(new_topics))
    out += ['version: "3.1"', "nlu:"]
    for name in sorted(examples):
        out.append(f"- intent: {name}")
        out.append("  examples: |")
        out += [f"    - {example}" for example in examples[name]]
    if not examples:
        out[-1] = "nlu: []"
    return "\n".join(out) + "\n"


def new_intent_value(name: str) -> str:
    return NEW_PREFIX + name

