"""NLU labels: staff say which intent a user message meant (the console's NLU inbox); the
labelled messages become Rasa training data."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import NluLabel, TranscriptLine, utcnow


def label(session: Session, line_id: int, intent: str, staff: str) -> NluLabel:
    """Label a user message (again: the newest label wins). ValueError for anything else."""
    line = session.get(TranscriptLine, line_id)
    if line is None or line.direction != "in":
        raise ValueError("No such user message.")
    existing = session.scalar(select(NluLabel).where(NluLabel.transcript_line_id == line_id))
    if existing is None:
        existing = NluLabel(transcript_line_id=line_id, intent=intent, labelled_by=staff)
        session.add(existing)
    else:
        existing.intent, existing.labelled_by, existing.created_at = intent, staff, utcnow()
    return existing
