"""store.users: one find-or-create for every caller, and one reading of sender ids."""
from __future__ import annotations

import pytest

from store import booking, handoff, users
from store.models import User


@pytest.mark.parametrize(
    ("sender_id", "channel", "external"),
    [
        ("tg-12345", "telegram", "12345"),
        ("local-ana", "local", "ana"),
        ("abc", "rest", "abc"),
        # A REST client's own id keeps every character: no prefix is guessed away.
        ("rest-7", "rest", "rest-7"),
        ("crm-42", "rest", "crm-42"),
        ("tg-", "rest", "tg-"),
    ],
)
def test_parse_sender(sender_id, channel, external):
    assert users.parse_sender(sender_id) == (channel, external)
    assert users.channel_of(sender_id) == channel
    assert users.sender_id_for(channel, external) == sender_id


def test_rest_senders_that_differ_only_in_a_prefix_are_different_users(any_db):
    # The copy in store/conversations.py stripped "crm-"/"app-" and both became ("rest", "42"):
    # the second crashed on the unique (channel, external_id) constraint.
    first = users.ensure_user(any_db, "crm-42")
    second = handoff.start_handoff(any_db, "app-42", "asked_for_human", "en").user_id
    assert first != second
    with any_db.session() as s:
        rows = {u.sender_id: (u.channel, u.external_id) for u in s.query(User)}
    assert rows == {"crm-42": ("rest", "crm-42"), "app-42": ("rest", "app-42")}


def test_long_rest_ids_fit_the_column_and_stay_distinct(sqlite_db):
    a, b = "x" * 90 + "-a", "x" * 90 + "-b"
    assert users.ensure_user(sqlite_db, a) != users.ensure_user(sqlite_db, b)
    assert all(len(users.parse_sender(s)[1]) <= users.EXTERNAL_ID_LENGTH for s in (a, b))


def test_every_writer_finds_the_same_user(sqlite_db):
    """Bookings, handoffs, enquiries and the gateway all reach one row per sender."""
    sender = "tg-777"
    gateway = users.upsert_user(sqlite_db, "telegram", "777", chat_id=777, display_name="Ana")
    assert booking.ensure_user(sqlite_db, sender) == gateway.id
    assert handoff.start_handoff(sqlite_db, sender, "asked_for_human", "en").user_id == gateway.id
    with sqlite_db.session() as s:
        assert booking.user_for_sender(s, sender).id == gateway.id
    view = users.get_user_by_id(sqlite_db, gateway.id)
    assert (view.sender_id, view.chat_id, view.paused) == (sender, 777, True)


def test_contact_phone_is_kept_shortened(sqlite_db):
    view = users.upsert_user(sqlite_db, "telegram", "5", chat_id=5)
    users.set_contact_phone(sqlite_db, view.id, "+86 " + "1" * 80)
    with sqlite_db.session() as s:
        assert s.get(User, view.id).contact_phone == ("+86 " + "1" * 80)[:64]
