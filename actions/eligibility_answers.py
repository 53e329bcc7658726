"""The eligibility check's answers: read from the user's words, and said back (pure).

`read_turn` reads one message against the slot being asked and what is known: a message such
as "a garment factory in Dongguan with about 180 workers, supplying European brands" fills
four slots, so the form only asks the rest. `summary` and `outcome_text` say in the user's
language what was understood and what the rules decided. No tracker, no store: unit-tested
directly, and used by the eligibility form and by actions/factory_facts.py.
"""
from __future__ import annotations

import re
from typing import Any

from actions.eligibility_rules import Decision, Facts, Rules, find_sector, rules
from actions.numbers import Count, find_correction, find_headcount, parse_count
from i18n import t
from store.places import Place, Places, places

# Validated at import: a bad rules or places file stops the action server with a message that
# names the problem, instead of failing in the middle of a conversation.
RULES: Rules = rules()
PLACES: Places = places()

FORM_SLOTS = ("employees", "sector", "location", "supplies_brands", "can_commit")
HELPER_SLOTS = (
    "employees_low", "employees_high", "sector_kind",
    "factory_country", "factory_province", "factory_city", "eligibility_retries",
)
UNKNOWN = "unknown"  # an answer given up on after the re-asks; judged as "staff will confirm"
MAX_REASKS = 2

# Intents that are never an answer: the form rejects and the rules handle them.
NEVER_ANSWER = {"stop_form", "request_human", "goodbye", "greet", "thank"}


# --- reading the user's words (pure) -------------------------------------------------------

_QUESTION = re.compile(
    r"[?？]|吗|呢|什么|怎么|哪|多少|是否|能否|可否|^(?:how|what|which|who|why|when|where|can|could|is|are|do|does)\b",
    re.IGNORECASE,
)
STOP = re.compile(r"^\s*(?:/stop_form|stop|cancel|quit|exit|算了|取消|不查了|退出|停止)\s*[.!。！]*\s*$", re.IGNORECASE)
_BRANDS_NO = re.compile(
    r"domestic only|only domestic|local market|home market|no export|not export|don'?t export|do not export"
    r"|don'?t supply|do not supply|no (?:international|foreign) (?:brands?|buyers?|customers?)"
    r"|只做内销|内销|国内市场|不出口|没有出口|不做外贸|没有外贸|不给.*品牌|没有国际|没有外国",
    re.IGNORECASE,
)
_BRANDS_YES = re.compile(
    r"\b(?:supply|supplying|supplies|supplier|export|exporting|exports|exporter|oem"
    r"|make for|produce for|sell to|selling to)\b"
    r".{0,40}\b(?:brands?|buyers?|customers?|clients?|retailers?|europe|european|eu|us|usa|american|japan|japanese"
    r"|international|global|overseas|foreign|abroad)\b"
    r"|\b(?:international|global|foreign|overseas|european|american|japanese|big|major|famous)"
    r" (?:brands?|buyers?|retailers?)"
    r"|\bexport(?:s|ing|er|ers)?\b|品牌|外贸|出口|国际买家|海外客户|外国客户|欧美|外单|代工|国际客户|海外订单",
    re.IGNORECASE,
)
_UNSURE = re.compile(
    r"not sure|don'?t know|maybe|perhaps|depends|unsure|不确定|不知道|可能|看情况|再说|不一定|说不准", re.IGNORECASE
)
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
    if intent in NEVER_ANSWER or STOP.match(text):
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

    if answering and requested is not None and requested not in updates:
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
        place = Place(
            slots.get("factory_country"),
            slots.get("factory_province"),
            slots.get("factory_city"),
            slots.get("location"),
        )
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

