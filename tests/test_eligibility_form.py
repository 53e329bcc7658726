"""The eligibility form's actions, run as the action server runs them, on rasa_sdk Trackers.

Covers: one message filling four answers (en, zh), re-asks then staff, corrections, FAQs and
stop left to the rules, and the outcome stored as an Enquiry on SQLite and PostgreSQL.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

import actions.common
import actions.eligibility as eligibility
from actions.eligibility import (
    ActionAskEmployees,
    ActionEligibilityOutcome,
    ActionEligibilityStopped,
    ActionSaveEnquiryContact,
    ValidateEligibilityForm,
    ValidateEnquiryContactForm,
)
from store.db import Database
from store.enquiries import add_contact, latest_enquiry
from store.models import Enquiry, User

DOMAIN: dict[str, Any] = yaml.safe_load(
    (Path(__file__).resolve().parent.parent / "domain.yml").read_text(encoding="utf-8")
)


def make_tracker(
    text: str,
    intent: str,
    *,
    slots: dict[str, Any] | None = None,
    requested: str | None = None,
    lang: str = "en",
    sender: str = "tg-42",
    form: str | None = "eligibility_form",
) -> Tracker:
    values: dict[str, Any] = {name: None for name in DOMAIN["slots"]}
    values.update(slots or {})
    values["requested_slot"] = requested
    return Tracker(
        sender_id=sender,
        slots=values,
        latest_message={
            "text": text,
            "intent": {"name": intent, "confidence": 0.95},
            "entities": [],
            "metadata": {"language": lang},
        },
        events=[],
        paused=False,
        followup_action=None,
        active_loop={"name": form} if form else {},
        latest_action_name="action_listen",
    )


def set_slots(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


async def validate(tracker: Tracker) -> tuple[dict[str, Any], CollectingDispatcher]:
    dispatcher = CollectingDispatcher()
    events = await ValidateEligibilityForm().run(dispatcher, tracker, DOMAIN)
    return set_slots(events), dispatcher


# --- filling the form ------------------------------------------------------------------------


async def test_one_english_message_fills_four_answers() -> None:
    slots, dispatcher = await validate(make_tracker(
        "We are a garment factory in Dongguan with about 180 workers, supplying European brands"
        " — are we eligible?", "check_eligibility",
    ))
    assert slots["employees"] == "180"
    assert (slots["employees_low"], slots["employees_high"]) == (180, 180)
    assert (slots["sector"], slots["sector_kind"]) == ("manufacturing", "garments")
    assert (slots["factory_city"], slots["factory_province"], slots["factory_country"]) == (
        "dongguan", "guangdong", "china")
    assert slots["supplies_brands"] is True
    assert "can_commit" not in slots  # the one thing left to ask
    noted = dispatcher.messages[0]["text"]
    assert noted.startswith("Noted:") and "Dongguan" in noted and "180" in noted


async def test_one_chinese_message_fills_four_answers() -> None:
    slots, dispatcher = await validate(make_tracker(
        "我们是东莞的一家服装厂，有150名员工，给欧洲品牌供货，我们符合条件吗？", "check_eligibility", lang="zh",
    ))
    assert slots["employees"] == "150"
    assert slots["sector"] == "manufacturing" and slots["factory_city"] == "dongguan"
    assert slots["supplies_brands"] is True
    assert "can_commit" not in slots
    assert "东莞" in dispatcher.messages[0]["text"] and "已记下" in dispatcher.messages[0]["text"]


async def test_a_bare_question_starts_with_the_intro_and_fills_nothing() -> None:
    slots, dispatcher = await validate(make_tracker("are we eligible?", "check_eligibility"))
    assert not any(slots.get(name) for name in eligibility.FORM_SLOTS)
    assert "five short questions" in dispatcher.messages[0]["text"]


async def test_a_new_check_forgets_an_interrupted_one() -> None:
    stale = {"employees": "900", "employees_low": 900, "employees_high": 900, "sector": "services"}
    tracker = make_tracker("check eligibility", "check_eligibility", slots=stale)
    # At activation Rasa hands the filled slots over as pre-filled candidates (trailing events).
    tracker.events = [{"event": "slot", "name": "employees", "value": "900"},
                      {"event": "slot", "name": "sector", "value": "services"}]
    slots, _ = await validate(tracker)
    assert slots["employees"] is None and slots["sector"] is None
    assert slots["employees_low"] is None


@pytest.mark.parametrize(
    ("text", "lang", "low", "high"),
    [("about 200", "en", 200, 200), ("200-300", "en", 200, 300), ("两百", "zh", 200, 200),
     ("约一千二百人", "zh", 1200, 1200), ("1.2k", "en", 1200, 1200), ("two hundred", "en", 200, 200)],
)
async def test_the_employee_answer(text: str, lang: str, low: int, high: int) -> None:
    slots, _ = await validate(make_tracker(text, "inform_factory", requested="employees", lang=lang))
    assert (slots["employees_low"], slots["employees_high"]) == (low, high)
    assert slots["eligibility_retries"] == 0


async def test_a_non_number_is_reasked_twice_then_staff_are_offered() -> None:
    slots, dispatcher = await validate(make_tracker("lots", "inform_factory", requested="employees"))
    assert slots == {"eligibility_retries": 1}
    assert dispatcher.messages == []  # the form re-asks through action_ask_employees

    ask = CollectingDispatcher()
    await ActionAskEmployees().run(
        ask, make_tracker("lots", "inform_factory", slots=slots, requested="employees"), DOMAIN
    )
    assert "200-300" in ask.messages[0]["text"]  # the re-ask shows an example

    slots, _ = await validate(make_tracker("many", "inform_factory", slots=slots, requested="employees"))
    assert slots == {"eligibility_retries": 2}

    slots, dispatcher = await validate(make_tracker("no idea", "inform_factory", slots=slots, requested="employees"))
    assert slots["employees"] == "unknown" and slots["eligibility_retries"] == 0
    assert dispatcher.messages[-1]["buttons"] == [{"title": "Talk to staff", "payload": "/request_human"}]


async def test_a_correction_updates_the_employee_count() -> None:
    known = {"employees": "200", "employees_low": 200, "employees_high": 200}
    slots, dispatcher = await validate(
        make_tracker("sorry, 300 not 200", "inform_factory", slots=known, requested="sector")
    )
    assert (slots["employees"], slots["employees_low"], slots["employees_high"]) == ("300", 300, 300)
    assert "sector" not in slots  # the correction is not taken for the sector
    assert dispatcher.messages[0]["text"] == "Updated: 300 employees."


@pytest.mark.parametrize(
    ("text", "intent"),
    [("what modules are there?", "faq_modules"), ("SCORE有哪些模块", "faq_modules"), ("stop", "stop_form"),
     ("算了", "deny"), ("talk to a person", "request_human")],
)
async def test_faqs_stop_and_people_are_left_to_the_rules(text: str, intent: str) -> None:
    # No slot event: Rasa rejects the form and the rules answer, then the form asks again.
    slots, dispatcher = await validate(make_tracker(text, intent, requested="employees"))
    assert slots == {} and dispatcher.messages == []


async def test_a_statement_taken_for_an_faq_still_answers() -> None:
    slots, _ = await validate(make_tracker("我们厂有120个工人", "faq_size", requested="employees", lang="zh"))
    assert slots["employees"] == "120"


@pytest.mark.parametrize(
    ("text", "intent", "slot", "value"),
    [
        ("yes", "affirm", "can_commit", True),
        ("没问题", "affirm", "can_commit", True),
        ("no, we can't", "deny", "can_commit", False),
        ("not sure", "inform_factory", "can_commit", "unknown"),
        ("不确定", "inform_factory", "can_commit", "unknown"),
        ("no, domestic only", "deny", "supplies_brands", False),
        ("是的，出口欧美", "affirm", "supplies_brands", True),
        ("Chongqing", "inform_factory", "location", "Chongqing, China"),
        ("Springfield", "inform_factory", "location", "Springfield"),  # unknown place: staff confirm
        ("hotel", "inform_factory", "sector", "services"),
        ("pottery", "inform_factory", "sector", "other"),
        ("yes", "affirm", "location", None),  # not a place: asked again
        ("yes", "affirm", "sector", None),
    ],
)
async def test_answers_to_each_question(text: str, intent: str, slot: str, value: Any) -> None:
    slots, _ = await validate(make_tracker(text, intent, requested=slot))
    assert slots.get(slot) == value
    if value is None:
        assert slots["eligibility_retries"] == 1


# --- outcome and store -----------------------------------------------------------------------

COMPLETE = {
    "employees": "180", "employees_low": 180, "employees_high": 180,
    "sector": "manufacturing", "sector_kind": "garments",
    "location": "Dongguan, Guangdong, China", "factory_country": "china",
    "factory_province": "guangdong", "factory_city": "dongguan",
    "supplies_brands": True, "can_commit": True,
}


@pytest.fixture
def store(any_db: Database, monkeypatch: pytest.MonkeyPatch) -> Database:
    monkeypatch.setattr(actions.common, "database", lambda: any_db)
    return any_db


async def outcome(
    slots: dict[str, Any], *, lang: str = "en", sender: str = "tg-42"
) -> tuple[dict[str, Any], CollectingDispatcher]:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("yes", "affirm", slots=slots, lang=lang, sender=sender, form=None)
    events = await ActionEligibilityOutcome().run(dispatcher, tracker, DOMAIN)
    return set_slots(events), dispatcher


async def test_eligible_outcome_is_stored_and_offers_module_1(store: Database) -> None:
    slots, dispatcher = await outcome(COMPLETE)
    first = dispatcher.messages[0]
    assert first["text"].startswith("Good news")
    assert "50–500" in first["text"] and "ILO-CN2" in first["text"]
    assert first["buttons"] == [{"title": "Book Module 1", "payload": '/book_classroom{"module":"1"}'}]
    assert "May we keep your factory name" in dispatcher.messages[-1]["text"]
    assert all(slots[name] is None for name in eligibility.FORM_SLOTS)  # ready for a new check

    with store.session() as session:
        enquiry = session.scalars(select(Enquiry)).one()
        user = session.get(User, enquiry.user_id)
        assert slots["enquiry_id"] == enquiry.id
        assert (user.sender_id, user.channel, user.external_id) == ("tg-42", "telegram", "42")
        assert enquiry.outcome == "eligible" and "50–500" in enquiry.reason
        assert (enquiry.employees_low, enquiry.employees_high) == (180, 180)
        assert (enquiry.sector, enquiry.sector_kind) == ("manufacturing", "garments")
        assert (enquiry.country, enquiry.province, enquiry.city) == ("china", "guangdong", "dongguan")
        assert enquiry.supplies_brands is True and enquiry.can_commit is True
        assert enquiry.answers["employees"] == "180" and "size_in_band" in enquiry.answers["reasons"]
        assert (enquiry.language, enquiry.channel) == ("en", "telegram")
        assert enquiry.created_at.tzinfo is not None
        # Nothing personal before consent.
        assert enquiry.consent is False and enquiry.factory_name is None and enquiry.contact is None


async def test_consent_adds_factory_name_and_contact(store: Database) -> None:
    slots, _ = await outcome(COMPLETE, lang="zh", sender="local-alice")
    contact = {
        "enquiry_id": slots["enquiry_id"],
        "enquiry_factory_name": "旭日服装厂",
        "enquiry_contact": "李女士 13800000000",
    }
    dispatcher = CollectingDispatcher()
    events = await ActionSaveEnquiryContact().run(
        dispatcher,
        make_tracker("13800000000", "inform_factory", slots=contact, lang="zh", sender="local-alice", form=None),
        DOMAIN,
    )
    assert "谢谢" in dispatcher.messages[0]["text"]
    assert set_slots(events) == {"enquiry_factory_name": None, "enquiry_contact": None}
    enquiry = latest_enquiry(store, "local-alice")
    assert enquiry is not None
    assert (enquiry.consent, enquiry.factory_name, enquiry.contact) == (True, "旭日服装厂", "李女士 13800000000")
    assert (enquiry.language, enquiry.channel) == ("zh", "local")
    # Another conversation cannot write onto this enquiry.
    assert add_contact(store, enquiry.id, "tg-999", "X", "1") is False


@pytest.mark.parametrize(
    ("changes", "outcome_name", "payload"),
    [
        ({"employees": "4000", "employees_low": 4000, "employees_high": 4000}, "not_eligible", None),
        ({"employees": "520", "employees_low": 520, "employees_high": 520}, "borderline", "/request_human"),
        ({"factory_country": None, "location": "Springfield"}, "borderline", "/request_human"),
        ({"employees": "unknown", "employees_low": None, "employees_high": None}, "borderline", "/request_human"),
    ],
)
async def test_other_outcomes(store: Database, changes: dict[str, Any], outcome_name: str, payload: str | None) -> None:
    _, dispatcher = await outcome({**COMPLETE, **changes}, sender="rest-user")
    first = dispatcher.messages[0]
    assert [b["payload"] for b in first["buttons"]] == ([payload] if payload else [])
    enquiry = latest_enquiry(store, "rest-user")
    assert enquiry is not None and enquiry.outcome == outcome_name and enquiry.channel == "rest"
    if outcome_name == "not_eligible":
        assert "50–500" in first["text"] and "SMEs" in first["text"]


async def test_each_completed_check_is_a_new_enquiry(store: Database) -> None:
    await outcome(COMPLETE, sender="tg-7")
    await outcome({**COMPLETE, "can_commit": False}, sender="tg-7")
    with store.session() as session:
        outcomes = session.scalars(select(Enquiry.outcome).order_by(Enquiry.id)).all()
        assert outcomes == ["eligible", "not_eligible"]
        assert len(session.scalars(select(User).where(User.sender_id == "tg-7")).all()) == 1


async def test_a_store_outage_still_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(actions.common, "database", lambda: Database("sqlite:////nonexistent/dir/x.db"))
    slots, dispatcher = await outcome(COMPLETE)
    assert dispatcher.messages[0]["text"].startswith("Good news")
    assert "enquiry_id" not in slots and len(dispatcher.messages) == 1  # no consent question


async def test_stopping_forgets_the_answers() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionEligibilityStopped().run(
        dispatcher, make_tracker("算了", "stop_form", slots=COMPLETE, lang="zh", form=None), DOMAIN
    )
    assert all(value is None for value in set_slots(events).values())
    assert "已停止" in dispatcher.messages[0]["text"]


# --- contact form ----------------------------------------------------------------------------


async def test_contact_form_takes_the_text_and_wants_a_phone_or_email() -> None:
    dispatcher = CollectingDispatcher()
    action = ValidateEnquiryContactForm()
    events = await action.run(dispatcher, make_tracker(
        "Sunrise Garments", "inform_factory", requested="enquiry_factory_name", form="enquiry_contact_form"), DOMAIN)
    assert set_slots(events)["enquiry_factory_name"] == "Sunrise Garments"

    events = await action.run(dispatcher, make_tracker(
        "Ms Li", "inform_factory", requested="enquiry_contact", form="enquiry_contact_form"), DOMAIN)
    assert set_slots(events)["enquiry_contact"] is None
    assert "phone number or an email" in dispatcher.messages[-1]["text"]

    events = await action.run(CollectingDispatcher(), make_tracker(
        "Ms Li, li@example.com", "inform_factory", requested="enquiry_contact", form="enquiry_contact_form"), DOMAIN)
    assert set_slots(events)["enquiry_contact"] == "Ms Li, li@example.com"

    events = await action.run(CollectingDispatcher(), make_tracker(
        "/stop_form", "stop_form", requested="enquiry_contact", form="enquiry_contact_form"), DOMAIN)
    assert set_slots(events) == {}
