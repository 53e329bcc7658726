"""Handoff work in the console: queue, claim, resolve, reply, notes, tags and the transcript."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from store.models import (
    AuditEntry,
    Handoff,
    HandoffNote,
    Notification,
    TranscriptLine,
    User,
    utcnow,
)
from tests.console.helpers import client_for, csrf_of


@pytest.fixture
def conv(any_db):
    """A paused conversation with a waiting handoff; returns (db, user id, handoff id)."""
    now = utcnow()
    with any_db.session() as s:
        user = User(channel="telegram", external_id="4242", sender_id="tg-4242", chat_id=4242,
                    display_name="Huang Mei", language="zh", paused=True)
        s.add(user)
        s.flush()
        for minutes, direction, text, lang in [
            (30, "in", "培训费用是多少？", "zh"),
            (29, "out", "抱歉，我没有理解。", "zh"),
            (28, "in", "I need a person please", "en"),
        ]:
            s.add(TranscriptLine(user_id=user.id, direction=direction, language=lang, text=text,
                                 created_at=now - dt.timedelta(minutes=minutes)))
        handoff = Handoff(user_id=user.id, reason="asked", language="zh",
                          created_at=now - dt.timedelta(minutes=27))
        s.add(handoff)
        s.flush()
        return any_db, user.id, handoff.id


def _post(client, url, **data):
    return client.post(url, data={"csrf_token": csrf_of(client, "/queue"), **data})


def test_queue_lists_handoffs_by_status_with_age(conv):
    db, user_id, handoff_id = conv
    client = client_for(db, "anna")
    waiting = client.get("/queue").text
    assert "Huang Mei" in waiting and "I need a person please" in waiting
    assert re.search(r"<strong>2[7-9] min</strong>", waiting)  # its age
    assert "Huang Mei" not in client.get("/queue?status=claimed").text
    _post(client, f"/handoffs/{handoff_id}/claim")
    assert "Huang Mei" in client.get("/queue?status=claimed").text
    assert "Huang Mei" not in client.get("/queue?status=waiting").text


def test_claim_is_first_come_first_served(conv):
    db, user_id, handoff_id = conv
    anna, li = client_for(db, "anna"), client_for(db, "li")
    assert _post(anna, f"/handoffs/{handoff_id}/claim").status_code == 303
    _post(li, f"/handoffs/{handoff_id}/claim")
    assert "Already claimed by anna" in li.get(f"/conversations/{user_id}").text
    with db.session() as s:
        handoff = s.get(Handoff, handoff_id)
        assert handoff.status == "claimed" and handoff.claimed_by == "anna"
        assert handoff.claimed_at is not None


def test_resolve_resumes_the_bot_and_notifies_the_user_once(conv):
    db, user_id, handoff_id = conv
    client = client_for(db, "anna")
    _post(client, f"/handoffs/{handoff_id}/claim")
    _post(client, f"/handoffs/{handoff_id}/resolve")
    _post(client, f"/handoffs/{handoff_id}/resolve")  # a double click changes nothing
    with db.session() as s:
        handoff = s.get(Handoff, handoff_id)
        assert handoff.status == "resolved" and handoff.resolved_at is not None
        assert s.get(User, user_id).paused is False
        notes = s.scalars(select(Notification).where(Notification.kind == "handoff_resumed")).all()
        assert len(notes) == 1
        assert notes[0].user_id == user_id
        assert notes[0].dedupe_key == f"resume-{handoff_id}"
        assert notes[0].payload == {"text_key": "handoff_resumed"}
    assert "already resolved" in client.get(f"/conversations/{user_id}").text


def test_reply_goes_to_transcript_and_gateway_and_claims(conv):
    db, user_id, handoff_id = conv
    client = client_for(db, "anna")
    _post(client, f"/conversations/{user_id}/reply", text="  培训费用请见附件 <b>ok</b>  ")
    _post(client, f"/conversations/{user_id}/reply", text="Second answer")
    _post(client, f"/conversations/{user_id}/reply", text="   ")  # empty: refused
    with db.session() as s:
        lines = s.scalars(select(TranscriptLine).where(TranscriptLine.direction == "staff")
                          .order_by(TranscriptLine.id)).all()
        assert [(line.text, line.staff_name, line.language, line.chat_id) for line in lines] == [
            ("培训费用请见附件 <b>ok</b>", "anna", "zh", 4242),
            ("Second answer", "anna", "zh", 4242),
        ]
        sent = s.scalars(select(Notification).where(Notification.kind == "staff_reply")
                         .order_by(Notification.id)).all()
        assert [n.payload["text"] for n in sent] == ["培训费用请见附件 <b>ok</b>", "Second answer"]
        assert all(n.user_id == user_id and n.payload["staff_name"] == "anna" for n in sent)
        assert [n.payload["transcript_line_id"] for n in sent] == [line.id for line in lines]
        assert len({n.dedupe_key for n in sent}) == 2
        handoff = s.get(Handoff, handoff_id)
        assert handoff.status == "claimed" and handoff.claimed_by == "anna"
    page = client.get(f"/conversations/{user_id}").text
    assert "Staff · anna" in page and "培训费用请见附件 &lt;b&gt;ok&lt;/b&gt;" in page


def test_notes_and_tags(conv):
    db, user_id, handoff_id = conv
    client = client_for(db, "anna")
    _post(client, f"/handoffs/{handoff_id}/notes", text="Called back, wants module 2")
    _post(client, f"/handoffs/{handoff_id}/tags", tags="Fees, module-2, fees, <x>")
    with db.session() as s:
        assert s.get(Handoff, handoff_id).tags == "fees,module-2,x"
        note = s.scalar(select(HandoffNote))
        assert (note.author, note.text) == ("anna", "Called back, wants module 2")
    page = client.get(f"/conversations/{user_id}").text
    assert "Called back, wants module 2" in page and "fees, module-2, x" in page
    assert 'class="tag">module-2<' in client.get("/queue").text


def test_transcript_shows_every_turn_with_time_and_language(conv):
    db, user_id, _ = conv
    client = client_for(db, "anna")
    _post(client, f"/conversations/{user_id}/reply", text="Hello from staff")
    page = client.get(f"/conversations/{user_id}").text
    order = [page.index(t) for t in ("培训费用是多少？", "抱歉，我没有理解。",
                                       "I need a person please", "Hello from staff")]
    assert order == sorted(order)
    assert page.count('class="turn turn-in"') == 2 and page.count('class="turn turn-out"') == 1
    assert 'class="turn turn-staff"' in page
    assert '<span class="badge badge-lang">zh</span>' in page
    assert '<span class="badge badge-lang">en</span>' in page
    assert client.get("/conversations/99999").status_code == 404


def test_views_and_actions_are_audited(conv):
    db, user_id, handoff_id = conv
    client = client_for(db, "anna")
    client.get(f"/conversations/{user_id}")
    _post(client, f"/handoffs/{handoff_id}/claim")
    with db.session() as s:
        rows = s.execute(select(AuditEntry.staff_username, AuditEntry.action, AuditEntry.target)
                         .order_by(AuditEntry.id)).all()
    assert ("anna", "view_transcript", f"user:{user_id}") in rows
    assert ("anna", "claim", f"handoff:{handoff_id}") in rows
