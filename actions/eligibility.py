"""Eligibility check: a short form that tells a factory whether SCORE fits, why, and what next.

Flow: `eligibility_form` (employees, sector, location, supplies_brands, can_commit) →
`action_eligibility_outcome` (judges with data/eligibility_rules.yml, stores an Enquiry, asks
for consent) → on "yes" `enquiry_contact_form` (factory name, contact) →
`action_save_enquiry_contact`.

Slots are read from the user's own words by `read_turn` (pure, unit-tested): one message such
as "a garment factory in Dongguan with about 180 workers, supplying European brands" fills
four slots, so the form only asks the rest.
"""
from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import asdict
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import DomainDict, language_of
from actions.eligibility_rules import Decision, Facts, Rules, evaluate, find_sector, rules
from actions.numbers import Count, find_correction, find_headcount, parse_count
from store.places import Place, Places, places
from i18n import t

logger = logging.getLogger(__name__)

# Validated at import: a bad rules or places file stops the action server with a message that
# names the problem, instead of failing in the middle of a conversation.
RULES: Rules = rules()
PLACES: Places = places()

FORM = "eligibility_form"
FORM_SLOTS = ("employees", "sector", "location", "supplies_brands", "can_commit")
HELPER_SLOTS = (
    "employees_low", "employees_high", "sector_kind",
    "factory_country", "factory_province", "factory_city", "eligibility_retries",
)
CONTACT_SLOTS = ("enquiry_factory_name", "enquiry_contact")
UNKNOWN = "unknown"  # an answer given up on after the re-asks; judged as "staff will confirm"
MAX_REASKS = 2
YES_NO_SLOTS = ("supplies_brands", "can_commit")

# Intents that are never an answer: the form rejects and the rules handle them.
_NEVER_ANSWER = {"stop_form", "request_human", "goodbye", "greet", "thank"}


# --- reading the user's words (pure) -------------------------------------------------------

_QUESTION = re.compile(
    r"[?？]|吗|呢|什么|怎么|哪|多少|是否|能否|可否|^(?:how|what|which|who|why|when|where|can|could|is|are|do|does)\b",
    re.IGNORECASE,
)
_STOP = re.compile(r"^\s*(?:/stop_form|stop|cancel|quit|exit|算了|取消|不查了|退出|停止)\s*[.!。！]*\s*$", re.IGNORECASE)
_BRANDS_NO = re.compile(
    r"domestic only|only domestic|local market|home market|no export|not export|don'?t export|do not export"
    r"|don'?t supply|do not supply|no (?:international|foreign) (?:brands?|buyers?|customers?)"
    r"|只做内销|内销|国内市场|不出口|没有出口|不做外贸|没有外贸|不给.*品牌|没有国际|没有外国",
    re.IGNORECASE,
)
_BRANDS_YES = re.compile(
    r"\b(?:supply|supplying|supplies|supplier|export|exporting|exports|exporter|oem|make for|produce for|sell to|selling to)\b"
    r".{0,40}\b(?:brands?|buyers?|customers?|clients?|retailers?|europe|european|eu|us|usa|american|japan|japanese"
    r"|international|global|overseas|foreign|abroad)\b"
    r"|\b(?:international|global|foreign|overseas|european|american|japanese|big|major|famous) (?:brands?|buyers?|retailers?)"
    r"|\bexport(?:s|ing|er|ers)?\b|品牌|外贸|出口|国际买家|海外客户|外国客户|欧美|外单|代工|国际客户|海外订单",
    re.IGNORECASE,
)
_UNSURE = re.compile(r"not sure|don'?t know|maybe|perhaps|depends|unsure|不确定|不知道|可能|看情况|再说|不一定|说不准", re.IGNORECASE)
# "没问题" (no problem) and "不错" (not bad) hold a negation character but mean yes.
_YES_DESPITE_NEGATION = re.compile(r"没问题|没错|不错|不成问题|no problem|why not", re.IGNORECASE)
_NO = re.compile(
    r"\b(?:no|nope|nah|not|never|don'?t|do not|can'?t|cannot|won'?t|negative)\b|不|没|否|无法",
    re.IGNORECASE,
)
_YES = re.compile(
    r"\b(?:yes|yeah|yep|yup|sure|of course|ok|okay|definitely|correct|absolutely|we do|we can|y)\b"
    r"|是|有|对|可以|能|行|会|好|没问题|当然|确定",
    re.IGNORECASE,
)


def is_question(text: str) -> bool:
    return bool(_QUESTION.search(text.strip()))


def yes_no(text: str, intent: str, *, allow_unsure: bool = False) -> bool | str | None:
    """True/False (or "unsure") for a reply to a yes/no question; None when it is neither."""
    if allow_unsure and _UNSURE.search(text):
        return "unsure"
    if _YES_DESPITE_NEGATION.search(text):
        return True
    if intent == "deny" or _NO.search(text):
        return False
    if intent == "affirm" or _YES.search(text):
        return True
    return None


def count_of(slots: dict[str, Any]) -> Count | None:
    low, high = slots.get("employees_low"), slots.get("employees_high")
    return Count(int(low), int(high)) if low is not None and high is not None else None


def read_turn(text: str, intent: str, requested: str | None, slots: dict[str, Any]) -> dict[str, Any]:
    """Slot updates in one user message, given the slot being asked and what is known.

    Keys are slot names plus two notes for the action: "_corrected" (a Count) when a known
    employee count was corrected, "_gave_up" (a slot name) when its re-asks ran out.
    An empty result means "not an answer": the form then rejects and the rules answer
    (an FAQ, stop, a person).
    """
    text = text or ""
    if intent in _NEVER_ANSWER or _STOP.match(text):
        return {}
    answering = requested in FORM_SLOTS
    # An FAQ ("what modules are there?") is answered by the knowledge rules, but a statement
    # the classifier took for an FAQ ("我们厂有120个工人" looks like faq_size) still answers.
    if intent.startswith("faq_") and (is_question(text) or not answering):
        return {}
    updates: dict[str, Any] = {}

    # Number of employees: any number when asked; a number tied to people in other messages;
    # a changed figure only through a correction ("sorry, 300 not 200").
    current = count_of(slots)
    if requested == "employees":
        count = parse_count(text)
    elif slots.get("employees") in (None, UNKNOWN):
        count = find_headcount(text)
    else:
        count = find_correction(text, current)
        if count is not None:
            updates["_corrected"] = count
    if count is not None:
        updates.update(employees=count.label(), employees_low=count.low, employees_high=count.high)

    # Location: the most specific known place; a bare country only when asked.
    if requested == "location" or slots.get("location") is None:
        place = PLACES.find(text, answer=requested == "location")
        if place is not None:
            updates.update(_place_slots(place))

    # Sector and kind: "garments" → manufacturing, "hotel" → services.
    if requested == "sector" or slots.get("sector") is None:
        found = find_sector(text, RULES)
        if found is not None:
            updates.update(sector=found[0], sector_kind=found[1])

    # Supplies international brands: stated in passing, or a yes/no when asked.
    if requested == "supplies_brands" or slots.get("supplies_brands") is None:
        if _BRANDS_NO.search(text):
            updates["supplies_brands"] = False
        elif _BRANDS_YES.search(text):
            updates["supplies_brands"] = True
        elif requested == "supplies_brands":
            answer = yes_no(text, intent)
            if answer is not None:
                updates["supplies_brands"] = answer

    if requested == "can_commit":
        answer = yes_no(text, intent, allow_unsure=True)
        if answer is not None:
            updates["can_commit"] = UNKNOWN if answer == "unsure" else answer

    # Free answers nobody can list in advance: an unknown sector or place is kept in the
    # user's words, and staff confirm (borderline), rather than asked again.
    free_answer = not updates and not intent.startswith("faq_") and intent not in ("affirm", "deny")
    if free_answer and requested == "sector":
        updates.update(sector="other", sector_kind=text.strip()[:100])
    if free_answer and requested == "location":
        updates.update(location=text.strip()[:64], factory_country=None, factory_province=None, factory_city=None)

    if answering and requested not in updates:
        if updates:
            return updates  # something else was said (a correction): ask the same again
        if intent.startswith("faq_") or intent == "out_of_scope":
            return {}
        retries = int(slots.get("eligibility_retries") or 0) + 1
        if retries > MAX_REASKS:
            updates.update({requested: UNKNOWN, "eligibility_retries": 0, "_gave_up": requested})
        else:
            updates["eligibility_retries"] = retries
    elif answering:
        updates["eligibility_retries"] = 0
    return updates


def _place_slots(place: Place) -> dict[str, Any]:
    return {
        "location": place.label("en", PLACES),
        "factory_country": place.country,
        "factory_province": place.province,
        "factory_city": place.city,
    }


def facts_of(slots: dict[str, Any]) -> Facts:
    def flag(value: Any) -> bool | None:
        return value if isinstance(value, bool) else None

    sector = slots.get("sector")
    return Facts(
        employees_low=_int_or_none(slots.get("employees_low")),
        employees_high=_int_or_none(slots.get("employees_high")),
        sector=None if sector in (None, UNKNOWN) else sector,
        sector_kind=slots.get("sector_kind"),
        country=slots.get("factory_country"),
        supplies_brands=flag(slots.get("supplies_brands")),
        can_commit=flag(slots.get("can_commit")),
    )


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


# --- texts ---------------------------------------------------------------------------------


def sector_name(sector: str | None, kind: str | None, lang: str) -> str:
    if kind in RULES.kinds:
        return getattr(RULES.kinds[kind], lang)
    if sector in ("manufacturing", "services"):
        return t(f"elig_sector_{sector}", lang)
    return kind or sector or "?"


def summary(slots: dict[str, Any], lang: str) -> str:
    """What the check understood so far, in the user's language ("about 180 employees, ...")."""
    parts: list[str] = []
    if slots.get("employees") not in (None, UNKNOWN):
        parts.append(t("elig_fact_employees", lang, count=slots["employees"]))
    if slots.get("sector") not in (None, UNKNOWN):
        parts.append(sector_name(slots.get("sector"), slots.get("sector_kind"), lang))
    if slots.get("location") not in (None, UNKNOWN):
        place = Place(slots.get("factory_country"), slots.get("factory_province"), slots.get("factory_city"), slots.get("location"))
        parts.append(place.label(lang, PLACES))
    if slots.get("supplies_brands") is True:
        parts.append(t("elig_fact_brands_yes", lang))
    elif slots.get("supplies_brands") is False:
        parts.append(t("elig_fact_brands_no", lang))
    return ("；" if lang == "zh" else "; ").join(parts)


def reason_lines(decision: Decision, lang: str) -> list[str]:
    lines = []
    for reason in decision.reasons:
        params = dict(reason.params)
        if "sector" in params and reason.code == "sector_ok":
            params["sector"] = t(f"elig_sector_{params['sector']}", lang)
        if "country" in params:
            params["country"] = PLACES.name("countries", params["country"], lang)
        lines.append("• " + t(f"elig_reason_{reason.code}", lang, **params))
    return lines


def outcome_text(decision: Decision, lang: str) -> str:
    band = decision.band
    region = t("elig_region_default", lang) if band.region == "default" else PLACES.name("countries", band.region, lang)
    return "\n".join(
        [
            t(f"elig_outcome_{decision.outcome}", lang),
            "",
            t("elig_why", lang),
            *reason_lines(decision, lang),
            "",
            t("elig_band_line", lang, min=band.min, max=band.max, region=region,
              sources=RULES.source_names(band.sources, lang)),
        ]
    )


def _slots(tracker: Tracker) -> dict[str, Any]:
    return dict(tracker.slots)


def _intent(tracker: Tracker) -> str:
    return str((tracker.latest_message.get("intent") or {}).get("name") or "")


def _turn(tracker: Tracker) -> dict[str, Any]:
    return read_turn(
        tracker.latest_message.get("text") or "",
        _intent(tracker),
        tracker.get_slot("requested_slot"),
        _slots(tracker),
    )


def _pick(tracker: Tracker, *names: str) -> dict[str, Any]:
    turn = getattr(tracker, "_eligibility_turn", None)
    if turn is None:
        turn = _turn(tracker)
    return {name: turn[name] for name in names if name in turn}


# --- the form ------------------------------------------------------------------------------


class ValidateEligibilityForm(FormValidationAction):
    """Fills the form's slots from the user's words and says what it understood."""

    def name(self) -> str:
        return "validate_eligibility_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        lang = language_of(tracker)
        before = _slots(tracker)
        activating = before.get("requested_slot") is None
        resets: list[EventType] = []
        if activating:
            # A new check starts from this message only: answers left by an interrupted
            # earlier check (carried over between sessions) must not fill this one. Facts the
            # user stated before the check (actions/factory_facts.py) are kept.
            noted = before.get("noted_facts") if isinstance(before.get("noted_facts"), list) else []
            stale = [k for k in (*FORM_SLOTS, *HELPER_SLOTS) if before.get(k) is not None and k not in noted]
            tracker.slots.update({k: None for k in stale})
        turn = _turn(tracker)
        if activating:
            resets = [SlotSet(k, None) for k in stale if k not in turn]
            if noted:
                resets.append(SlotSet("noted_facts", None))  # used by this check
        # The SDK calls each extract_<slot> with a tracker it updates as it goes; all of them
        # must read the message against the slots as they were before this turn.
        setattr(tracker, "_eligibility_turn", turn)
        events = await super().run(dispatcher, tracker, domain)
        if activating:
            # Rasa passes the stale values in as pre-filled candidates; the SDK would set
            # them again after the resets.
            dropped = {k for k in stale if k not in turn}
            events = [e for e in events if not (e.get("event") == "slot" and e.get("name") in dropped)]
        # The SDK drops slots outside required_slots; keep the helper slots extract_ set.
        named = {e.get("name") for e in events}
        extra = [SlotSet(k, v) for k, v in turn.items() if k in HELPER_SLOTS and k not in named]

        if activating:
            known = summary({**before, **turn}, lang)
            dispatcher.utter_message(text=t("elig_noted", lang, facts=known) if known else t("elig_intro", lang))
        elif "_corrected" in turn:
            dispatcher.utter_message(text=t("elig_corrected", lang, count=turn["_corrected"].label()))
        if turn.get("_gave_up") == "employees":
            dispatcher.utter_message(
                text=t("elig_employees_give_up", lang),
                buttons=[{"title": t("elig_button_staff", lang), "payload": "/request_human"}],
            )
        return resets + extra + events

    async def extract_employees(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        return _pick(tracker, "employees", "employees_low", "employees_high")

    async def extract_sector(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        return _pick(tracker, "sector", "sector_kind")

    async def extract_location(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        return _pick(tracker, "location", "factory_country", "factory_province", "factory_city")

    async def extract_supplies_brands(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        return _pick(tracker, "supplies_brands")

    async def extract_can_commit(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        # The retry counter rides with the last extractor so it is set once per turn.
        return _pick(tracker, "can_commit", "eligibility_retries")

    # Values arrive already normalised by read_turn; these keep the SDK from warning.
    def validate_employees(self, value: Any, *_: Any) -> dict[str, Any]:
        return {"employees": value}

    def validate_sector(self, value: Any, *_: Any) -> dict[str, Any]:
        return {"sector": value}

    def validate_location(self, value: Any, *_: Any) -> dict[str, Any]:
        return {"location": value}

    def validate_supplies_brands(self, value: Any, *_: Any) -> dict[str, Any]:
        return {"supplies_brands": value}

    def validate_can_commit(self, value: Any, *_: Any) -> dict[str, Any]:
        return {"can_commit": value}


def _yes_no_buttons(lang: str) -> list[dict[str, str]]:
    return [
        {"title": t("elig_button_yes", lang), "payload": "/affirm"},
        {"title": t("elig_button_no", lang), "payload": "/deny"},
    ]


class _AskAction(Action):
    """Asks for one slot; after a reply that was not an answer, asks again with an example."""

    slot = ""

    def name(self) -> str:
        return f"action_ask_{self.slot}"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        lang = language_of(tracker)
        again = self.slot in FORM_SLOTS and int(tracker.get_slot("eligibility_retries") or 0) > 0
        key = f"elig_{'reask' if again else 'ask'}_{self.slot}"
        buttons = _yes_no_buttons(lang) if self.slot in YES_NO_SLOTS else []
        dispatcher.utter_message(text=t(key, lang), buttons=buttons)
        return []


class ActionAskEmployees(_AskAction):
    slot = "employees"


class ActionAskSector(_AskAction):
    slot = "sector"


class ActionAskLocation(_AskAction):
    slot = "location"


class ActionAskSuppliesBrands(_AskAction):
    slot = "supplies_brands"


class ActionAskCanCommit(_AskAction):
    slot = "can_commit"


# --- outcome, consent, contact -------------------------------------------------------------


def _database():  # imported late: the store is only needed once a check completes
    from store import get_database

    return get_database()


def _reset(names: tuple[str, ...]) -> list[EventType]:
    return [SlotSet(name, None) for name in names]


class ActionEligibilityOutcome(Action):
    """Says the outcome and why, offers the next step, stores the enquiry, asks for consent."""

    def name(self) -> str:
        return "action_eligibility_outcome"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        from store.enquiries import EnquiryRecord, save_enquiry

        lang = language_of(tracker)
        slots = _slots(tracker)
        facts = facts_of(slots)
        decision = evaluate(facts, RULES)
        text = outcome_text(decision, lang)
        if decision.outcome == "eligible":
            buttons = [{"title": t("elig_button_book", lang), "payload": '/book_classroom{"module":"1"}'}]
            dispatcher.utter_message(text=f"{text}\n\n{t('elig_next_eligible', lang)}", buttons=buttons)
        elif decision.outcome == "borderline":
            buttons = [{"title": t("elig_button_staff", lang), "payload": "/request_human"}]
            dispatcher.utter_message(text=f"{text}\n\n{t('elig_next_borderline', lang)}", buttons=buttons)
        else:
            dispatcher.utter_message(text=f"{text}\n\n{t('elig_next_not_eligible', lang)}")

        answers = {name: slots.get(name) for name in (*FORM_SLOTS, *HELPER_SLOTS[:-1])}
        answers.update(reasons=decision.codes, band=asdict(decision.band))
        record = EnquiryRecord(
            sender_id=tracker.sender_id,
            outcome=decision.outcome,
            reason="\n".join(reason_lines(decision, lang)),
            language=lang,
            answers=answers,
            employees_low=facts.employees_low,
            employees_high=facts.employees_high,
            sector=facts.sector,
            sector_kind=sector_name(facts.sector, facts.sector_kind, "en") if facts.sector_kind else None,
            country=facts.country,
            province=slots.get("factory_province"),
            city=slots.get("factory_city"),
            supplies_brands=facts.supplies_brands,
            can_commit=facts.can_commit,
        )
        events: list[EventType] = _reset(FORM_SLOTS + HELPER_SLOTS)
        try:
            enquiry_id = await asyncio.to_thread(save_enquiry, _database(), record)
        except Exception:  # the answer was given; a store outage must not break the chat
            logger.exception("could not store the enquiry of %s", tracker.sender_id)
            return events
        dispatcher.utter_message(text=t("elig_consent_question", lang), buttons=_yes_no_buttons(lang))
        return [*events, SlotSet("enquiry_id", enquiry_id)]


class ActionEligibilityStopped(Action):
    """The user stopped a check ("stop", "算了", the gateway's /cancel): forget its answers."""

    def name(self) -> str:
        return "action_eligibility_stopped"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(text=t("elig_stopped", language_of(tracker)))
        return _reset(FORM_SLOTS + HELPER_SLOTS + CONTACT_SLOTS) + [SlotSet("requested_slot", None)]


class ActionEnquiryNoConsent(Action):
    def name(self) -> str:
        return "action_enquiry_no_consent"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(text=t("elig_no_consent", language_of(tracker)))
        return []


_CONTACT_LIKE = re.compile(r"\d{5,}|@|\d[\d\s\-()+]{6,}")


class ValidateEnquiryContactForm(FormValidationAction):
    """Takes the factory name and contact as typed, unless the message is something else."""

    def name(self) -> str:
        return "validate_enquiry_contact_form"

    def _text(self, tracker: Tracker, slot: str) -> str | None:
        if tracker.get_slot("requested_slot") != slot:
            return None
        intent, text = _intent(tracker), (tracker.latest_message.get("text") or "").strip()
        if intent in _NEVER_ANSWER or _STOP.match(text) or not text or text.startswith("/"):
            return None
        if intent.startswith("faq_") and is_question(text):
            return None
        return text[:200]

    async def extract_enquiry_factory_name(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        text = self._text(tracker, "enquiry_factory_name")
        return {"enquiry_factory_name": text} if text else {}

    async def extract_enquiry_contact(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        text = self._text(tracker, "enquiry_contact")
        return {"enquiry_contact": text} if text else {}

    def validate_enquiry_factory_name(self, value: Any, *_: Any) -> dict[str, Any]:
        return {"enquiry_factory_name": value}

    def validate_enquiry_contact(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value and _CONTACT_LIKE.search(str(value)):
            return {"enquiry_contact": value}
        dispatcher.utter_message(text=t("elig_reask_enquiry_contact", language_of(tracker)))
        return {"enquiry_contact": None}


class ActionAskEnquiryFactoryName(_AskAction):
    slot = "enquiry_factory_name"


class ActionAskEnquiryContact(_AskAction):
    slot = "enquiry_contact"


class ActionSaveEnquiryContact(Action):
    """Records consent, factory name and contact on the enquiry the user just made."""

    def name(self) -> str:
        return "action_save_enquiry_contact"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        from store.enquiries import add_contact

        lang = language_of(tracker)
        enquiry_id = tracker.get_slot("enquiry_id")
        name, contact = tracker.get_slot("enquiry_factory_name"), tracker.get_slot("enquiry_contact")
        saved = False
        if enquiry_id is not None and name and contact:
            try:
                saved = await asyncio.to_thread(
                    add_contact, _database(), int(enquiry_id), tracker.sender_id, name, contact
                )
            except Exception:
                logger.exception("could not store the contact of %s", tracker.sender_id)
        dispatcher.utter_message(text=t("elig_contact_saved" if saved else "elig_contact_not_saved", lang))
        return _reset(CONTACT_SLOTS)
