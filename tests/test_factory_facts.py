"""Facts about the factory stated outside the eligibility check (actions/factory_facts.py):
kept, answered with an offer of the check, and used by the check when it starts."""
from __future__ import annotations

from rasa_sdk.executor import CollectingDispatcher

import i18n
from actions.factory_facts import ActionFactoryFactsDeclined, ActionNoteFactoryFacts
from tests.test_eligibility_form import DOMAIN, make_tracker, set_slots, validate


async def note(text: str, lang: str = "en", slots: dict | None = None):
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(text, "inform_factory", lang=lang, slots=slots, form=None)
    events = await ActionNoteFactoryFacts().run(dispatcher, tracker, DOMAIN)
    return set_slots(events), dispatcher.messages


async def test_a_headcount_out_of_the_blue_is_kept_and_the_check_offered() -> None:
    slots, messages = await note("we have about 120 people")
    assert (slots["employees"], slots["employees_low"], slots["employees_high"]) == ("120", 120, 120)
    assert slots["noted_facts"] == ["employees", "employees_high", "employees_low"]
    assert len(messages) == 1 and "120 employees" in messages[0]["text"]
    assert [b["payload"] for b in messages[0]["buttons"]] == ["/check_eligibility", "/deny"]


async def test_a_city_alone_in_chinese_and_a_second_fact_adds_to_the_first() -> None:
    slots, messages = await note("东莞", lang="zh")
    assert slots["factory_city"] == "dongguan" and "东莞" in messages[0]["text"]
    assert messages[0]["text"].startswith("已记下")
    more, messages = await note("我们做鞋的，三百人", lang="zh", slots={**slots})
    assert more["employees"] == "300" and more["sector"] == "manufacturing"
    assert set(more["noted_facts"]) >= {"factory_city", "employees", "sector"}
    assert "东莞" in messages[0]["text"] and "300" in messages[0]["text"]


async def test_a_restated_headcount_replaces_the_noted_one() -> None:
    slots, _ = await note("we have 200 workers", slots={"employees": "120", "employees_low": 120,
                                                      "employees_high": 120, "noted_facts": ["employees"]})
    assert slots["employees"] == "200"


async def test_nothing_readable_is_not_guessed() -> None:
    slots, messages = await note("we are fine thanks")
    assert slots == {}
    assert messages[0]["text"] == i18n.t("facts_not_read", "en") and messages[0]["buttons"]


async def test_the_check_keeps_noted_facts_and_clears_stale_ones() -> None:
    noted = {"employees": "120", "employees_low": 120, "employees_high": 120,
             "noted_facts": ["employees", "employees_high", "employees_low"],
             "sector": "services", "sector_kind": "hotels"}  # left by an interrupted check
    tracker = make_tracker("/affirm", "affirm", slots=noted)
    slots, dispatcher = await validate(tracker)
    assert "employees" not in slots or slots["employees"] == "120"
    assert slots["sector"] is None and slots["noted_facts"] is None
    assert "120" in dispatcher.messages[0]["text"]


async def test_not_now_keeps_the_facts_and_offers_topics() -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("/deny", "deny", lang="zh", form=None)
    events = await ActionFactoryFactsDeclined().run(dispatcher, tracker, DOMAIN)
    assert events == [] and dispatcher.messages[0]["buttons"]
    assert dispatcher.messages[0]["text"] == i18n.t("facts_check_declined", "zh")
