"""Claiming due notifications: each row goes to one gateway; stale claims are re-claimed."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select, text

from store import notifications
from store.models import Notification
from tests.test_booking_support import add_users

NOW = dt.datetime(2027, 1, 10, 8, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


def _add(db, n, due=NOW - MIN, user_id=None):
    with db.session() as s:
        for i in range(n):
            notifications.add(s, user_id=user_id, kind="reminder", dedupe_key=f"k{due.isoformat()}:{i}",
                              due_at=due, payload={"text_key": "booking_stopped", "values": {}})


def test_only_due_rows_are_claimed_once(any_db):
    _add(any_db, 3)
    _add(any_db, 2, due=NOW + MIN)
    first = notifications.claim_due(any_db, "gw-1", now=NOW, limit=10)
    assert len(first) == 3
    assert notifications.claim_due(any_db, "gw-2", now=NOW, limit=10) == []


def test_dedupe_key_adds_once(any_db):
    with any_db.session() as s:
        payload: notifications.MessagePayload = {"text_key": "booking_stopped"}
        assert notifications.add(s, user_id=None, kind="reminder", dedupe_key="same", payload=payload)
        assert not notifications.add(s, user_id=None, kind="reminder", dedupe_key="same", payload=payload)
    with any_db.session() as s:
        assert len(s.scalars(select(Notification)).all()) == 1


def test_mark_sent_and_reclaim_after_timeout(any_db):
    _add(any_db, 2)
    claimed = notifications.claim_due(any_db, "gw-1", now=NOW)
    assert notifications.mark_sent(any_db, claimed[0].id, "gw-1", now=NOW)
    assert not notifications.mark_sent(any_db, claimed[1].id, "gw-other", now=NOW)
    # gw-1 crashed before sending the second: another gateway takes it after the timeout
    assert notifications.claim_due(any_db, "gw-2", now=NOW + 2 * MIN) == []
    later = NOW + notifications.DEFAULT_RECLAIM_AFTER + MIN
    again = notifications.claim_due(any_db, "gw-2", now=later)
    assert [c.id for c in again] == [claimed[1].id]
    assert not notifications.mark_sent(any_db, claimed[1].id, "gw-1", now=later)  # lost it
    assert notifications.mark_sent(any_db, claimed[1].id, "gw-2", now=later)
    assert notifications.claim_due(any_db, "gw-3", now=later + dt.timedelta(hours=1)) == []


def test_release_lets_anyone_retry(any_db):
    _add(any_db, 1)
    (row,) = notifications.claim_due(any_db, "gw-1", now=NOW)
    assert notifications.release(any_db, row.id, "gw-1")
    assert [c.id for c in notifications.claim_due(any_db, "gw-2", now=NOW)] == [row.id]


def test_two_concurrent_claimers_never_share_a_row(any_db):
    (user,) = add_users(any_db, 1)
    _add(any_db, 120, user_id=user)
    claims: dict[str, list[int]] = {"gw-a": [], "gw-b": [], "gw-c": []}
    barrier = threading.Barrier(len(claims))
    errors = []

    def claimer(worker):
        barrier.wait()
        try:
            while True:
                got = notifications.claim_due(any_db, worker, now=NOW, limit=7)
                if not got:
                    return
                claims[worker].extend(c.id for c in got)
                for c in got:
                    notifications.mark_sent(any_db, c.id, worker, now=NOW)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(w,)) for w in claims]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    everything = [i for ids in claims.values() for i in ids]
    assert len(everything) == len(set(everything)) == 120
    with any_db.session() as s:
        rows = s.scalars(select(Notification)).all()
        assert all(r.sent_at is not None for r in rows)
        assert all(r.id in claims[r.claimed_by] for r in rows)


def test_postgres_claim_skips_rows_locked_by_another_gateway(postgres_db):
    _add(postgres_db, 4)
    with postgres_db.engine.connect() as other:
        other.begin()
        locked = other.execute(text(
            "SELECT id FROM notifications ORDER BY id LIMIT 2 FOR UPDATE")).scalars().all()
        # does not wait for the other transaction, and does not take its rows
        claimed = notifications.claim_due(postgres_db, "gw-2", now=NOW)
        assert {c.id for c in claimed}.isdisjoint(locked) and len(claimed) == 2
        other.rollback()


def test_render_payload():
    payload = {"text_key": "booking_cancelled", "language": "zh", "values": {"reference": "SC-7K3F9Q"}}
    assert notifications.render(payload) == "预约 SC-7K3F9Q 已取消，相关提醒也已取消。"
    payload["language"] = None
    assert notifications.render(payload, "en").startswith("Booking SC-7K3F9Q is cancelled")


def test_a_payload_that_does_not_fit_its_kind_is_refused(sqlite_db):
    """One writer, one payload type per kind: a row the gateway could not send is never written."""
    bad = [
        ("x", {"text_key": "booking_stopped"}),                # no such kind
        ("reminder", {"values": {}}),                          # no text_key
        ("staff_reply", {"staff_name": "anna"}),               # no text
        ("handoff_opened", {"handoff_id": 1, "text": "hi"}),   # a key the kind does not have
    ]
    for kind, payload in bad:
        with pytest.raises(ValueError):
            with sqlite_db.session() as s:
                notifications.add(s, user_id=None, kind=kind, dedupe_key=f"bad-{kind}", payload=payload)
    with sqlite_db.session() as s:
        assert s.scalars(select(Notification)).all() == []
