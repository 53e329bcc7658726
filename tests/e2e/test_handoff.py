"""Handoff end to end: trigger → staff group alerted → claim → staff reply reaches the user →
resume → the bot answers again. Only configured staff accounts can claim, reply or resume."""
from __future__ import annotations

import itertools

from sqlalchemy import select

import i18n
from store import handoff as handoffs
from store.db import Database
from store.kinds import NotificationKind
from store.models import Handoff, Notification, TranscriptLine, User
from tests.e2e.conftest import STAFF_CHAT_ID, STAFF_USER_ID
from tests.e2e.gateways import running_gateway
from tests.fakes.bot_api import FakeBotApi

OUTSIDER = 123_456


async def test_handoff_round_trip(gateway):
    api, user = gateway.api, gateway.new_user()
    api.push_text(user, "what modules are there")
    await api.wait_for(lambda: any("Source" in t for t in api.texts(user)), 30)

    api.push_text(user, "/human")
    await api.wait_for(lambda: any(i18n.t("handoff_started", "en") in t for t in api.texts(user)), 30)
    await api.wait_for(lambda: any("Handoff #" in t for t in api.texts(STAFF_CHAT_ID)), 10)
    alert = api.last_with_buttons(STAFF_CHAT_ID)
    assert "what modules are there" in alert["text"]  # staff see the last messages
    assert "Reason: asked" in alert["text"] and "/conversations/" in alert["text"]

    # An outsider can't claim; staff can.
    api.press(OUTSIDER, alert, "Claim")
    await api.wait_for(lambda: any(c.get("show_alert") for c in api.sent(method="answerCallbackQuery")))
    with gateway.db.session() as session:
        handoff = session.scalars(select(Handoff).join(User).where(User.sender_id == f"tg-{user}")).one()
        assert handoff.status == "waiting"
    api.press(STAFF_USER_ID, alert, "Claim")
    await api.wait_for(lambda: any("Claimed by" in c.get("text", "") for c in api.sent(method="editMessageText")))

    # While paused, the user's messages go to staff, not to Rasa.
    before = len(api.texts(user))
    api.push_text(user, "how much does it cost?")
    await api.wait_for(lambda: any("how much does it cost?" in t for t in api.texts(STAFF_CHAT_ID)))
    assert len(api.texts(user)) == before

    # An outsider's reply is refused and not relayed; a staff reply reaches the user.
    api.push(
        {
            "message": api.message(
                OUTSIDER, "I'm not staff", chat_id=STAFF_CHAT_ID, chat_type="supergroup", reply_to=alert
            )
        }
    )
    await api.wait_for(lambda: any(i18n.t("staff_not_allowed", "en") == t for t in api.texts(STAFF_CHAT_ID)))
    api.push({"message": api.message(STAFF_USER_ID, "Hello! Fees depend on the module; I'll email you a quote.",
                                     chat_id=STAFF_CHAT_ID, chat_type="supergroup", reply_to=alert, first_name="Wang")})
    await api.wait_for(lambda: any("I'll email you a quote" in t for t in api.texts(user)))
    assert not any("I'm not staff" in t for t in api.texts(user))

    # Resume hands back to the bot, which tells the user and answers again.
    api.push(
        {
            "message": api.message(
                STAFF_USER_ID, "/resume", chat_id=STAFF_CHAT_ID, chat_type="supergroup", reply_to=alert
            )
        }
    )
    await api.wait_for(lambda: any(i18n.t("handoff_resumed", "en") == t for t in api.texts(user)))
    count = len(api.texts(user))
    api.push_text(user, "what is the training format?")
    await api.wait_for(lambda: any("Source" in t for t in api.texts(user)[count:]), 30)

    with gateway.db.session() as session:
        row = session.scalars(select(User).where(User.sender_id == f"tg-{user}")).one()
        assert row.paused is False
        handoff = session.scalars(select(Handoff).where(Handoff.user_id == row.id)).one()
        assert handoff.status == "resolved" and handoff.claimed_by is not None
        directions = session.scalars(select(TranscriptLine.direction).where(TranscriptLine.user_id == row.id)
                                     .order_by(TranscriptLine.id)).all()
        assert "staff" in directions
        texts = session.scalars(select(TranscriptLine.text).where(TranscriptLine.user_id == row.id)).all()
        assert "how much does it cost?" in texts  # the paused message is in the transcript


async def test_chinese_request_for_a_person(gateway):
    api, user = gateway.api, gateway.new_user()
    api.push_text(user, "我要转人工客服", language_code="zh-hans")
    await api.wait_for(lambda: any(i18n.t("handoff_started", "zh") in t for t in api.texts(user)), 30)
    await api.wait_for(lambda: any("Language: zh" in t for t in api.texts(STAFF_CHAT_ID)), 10)


async def test_a_staff_reply_is_routed_by_a_gateway_that_did_not_relay_the_message(stack):
    """Two gateway replicas behind one bot: gateway A relays the paused user's message to the
    staff group; the staff member's reply to it arrives at gateway B, which never saw that
    message. B finds the handoff in the store (staff_relay_messages) and the user gets the
    reply; before, the reply target lived in A's memory and B dropped the reply."""
    ids = itertools.count(10_000)  # one Bot API: message ids are unique across both fakes
    api_a, api_b = FakeBotApi(message_ids=ids), FakeBotApi(message_ids=ids)
    await api_a.start()
    await api_b.start()
    try:
        async with running_gateway(stack, stack.db, api=api_a) as a, running_gateway(stack, stack.db, api=api_b):
            user = a.new_user()
            both = lambda chat: api_a.texts(chat) + api_b.texts(chat)  # noqa: E731
            api_a.push_text(user, "/human")
            await api_a.wait_for(lambda: any(i18n.t("handoff_started", "en") in t for t in both(user)), 30)
            # Either gateway's notifier may post the alert; wait for it so the relay comes after.
            await api_a.wait_for(lambda: any("Handoff #" in t for t in both(STAFF_CHAT_ID)), 10)

            api_a.push_text(user, "can someone call me back?")
            await api_a.wait_for(lambda: any("can someone call me back?" in t for t in api_a.texts(STAFF_CHAT_ID)))
            relayed = next(c.result for c in api_a.calls if c.method == "sendMessage"
                           and "can someone call me back?" in c.params.get("text", ""))
            assert not any("can someone call me back?" in t for t in api_b.texts(STAFF_CHAT_ID))

            api_b.push({"message": api_b.message(STAFF_USER_ID, "Yes, this afternoon.", chat_id=STAFF_CHAT_ID,
                                                 chat_type="supergroup", reply_to=relayed, first_name="Wang")})
            await api_b.wait_for(lambda: i18n.t("staff_relayed", "en") in api_b.texts(STAFF_CHAT_ID))
            await api_b.wait_for(lambda: any("Yes, this afternoon." in t for t in both(user)))
            with stack.db.session() as session:
                row = session.scalars(select(User).where(User.sender_id == f"tg-{user}")).one()
                staff_lines = session.scalars(select(TranscriptLine.text).where(
                    TranscriptLine.user_id == row.id, TranscriptLine.direction == "staff")).all()
                assert staff_lines == ["Yes, this afternoon."]
    finally:
        await api_a.stop()
        await api_b.stop()


async def test_a_handoff_resolved_before_its_alert_went_out_is_not_alerted(stack, tmp_path):
    """Handoffs opened while no gateway with the staff group ran (a WeChat user, a gateway
    down): when one starts, the open ones are alerted and one already handed back from the
    console is not (its Claim button would mislead staff)."""
    db = Database(f"sqlite:///{tmp_path / 'assistant.db'}")
    db.create_all()
    try:
        kept = handoffs.start_handoff(db, "wx-oOpen", "asked", "zh")
        closed = handoffs.start_handoff(db, "wx-oClosed", "asked", "en")
        handoffs.claim_as(db, closed.id, "anna")
        handoffs.resolve_as(db, closed.id, "anna")
        async with running_gateway(stack, db) as gateway:
            api = gateway.api
            await api.wait_for(lambda: any(f"Handoff #{kept.id}" in t for t in api.texts(STAFF_CHAT_ID)), 20)
            await api.wait_for(lambda: all_alerts_done(db), 20)  # the resolved one's alert row too
            assert not any(f"Handoff #{closed.id}" in t for t in api.texts(STAFF_CHAT_ID))
    finally:
        db.dispose()


def all_alerts_done(db: Database) -> bool:
    with db.session() as session:
        return not session.scalars(select(Notification.id).where(
            Notification.kind == NotificationKind.HANDOFF_OPENED, Notification.sent_at.is_(None))).all()
