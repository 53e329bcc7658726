"""What a reply is, read from its text the way a user reads it: a knowledge topic's answer,
a refusal, the booking form's first question, ... Every text the assistant can say is data
(data/knowledge.yml, i18n/messages/*.yml, domain.yml responses), so each reply is recognised
by the text it starts with, in one language.

Used by bench/heldout_eval.py to score held-out messages at the answer level
(bench/heldout/README.md says what each `expect` accepts).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

import i18n
from bench.heldout_sets import LANGS

ROOT = Path(__file__).resolve().parent.parent

# Replies that refuse: the question is not about SCORE, was not understood, or has no place
# in a new conversation. Each offers the topics (or, after misses in a row, a person).
REFUSALS = ("i18n:out_of_scope_rephrase", "i18n:fallback_rephrase", "i18n:fallback_out_of_context",
            "i18n:fallback_offer_human")
# The first reply that answers each non-FAQ intent a held-out message may expect, for a new
# user (no bookings, office hours or not). A booking request with a module or place already
# stated skips to a later question of the same form, or, for a new user, gets the rule that
# module stated breaks (Module 1's classroom session first; a module's classroom session before
# its consultation), with the button that books what comes first.
ANSWERS: dict[str, tuple[str, ...]] = {
    "start_booking": ("i18n:booking_ask_kind",),
    "book_classroom": ("i18n:booking_ask_module", "i18n:booking_ask_city", "i18n:booking_ask_session",
                       "i18n:booking_all_full", "i18n:booking_no_offers", "i18n:booking_refused_module1_first"),
    "book_consultation": ("i18n:booking_ask_module", "i18n:booking_ask_region", "i18n:booking_ask_slot",
                          "i18n:booking_all_full", "i18n:booking_no_offers",
                          "i18n:booking_consultation_needs_classroom"),
    "my_bookings": ("i18n:booking_none", "i18n:booking_list_header"),
    "cancel_booking": ("i18n:booking_none", "i18n:booking_cancel_which", "i18n:booking_not_found"),
    "reschedule_booking": ("i18n:booking_none", "i18n:booking_reschedule_which", "i18n:booking_not_found"),
    "request_human": ("i18n:handoff_started",),
    "greet": ("utter_greet",),
    "goodbye": ("utter_goodbye",),
    "thank": ("utter_you_are_welcome",),
}
# For a new user these three intents get the same answer ("You have no upcoming bookings"): the
# answer cannot tell them apart, so the intent Rasa returned with it must be the expected one too.
SAME_ANSWER_FOR_NEW_USERS = frozenset({"my_bookings", "cancel_booking", "reschedule_booking"})
# Fewer literal characters than this and a template would match almost anything.
MIN_LITERAL = 4


@dataclass(frozen=True)
class Template:
    label: str  # faq_<topic> | i18n:<key> | utter_<name>
    lang: str
    pattern: re.Pattern[str]
    literal: int  # characters of fixed text: the most specific match wins


def _template(label: str, lang: str, text: str) -> Template | None:
    text = text.strip()
    parts = re.split(r"\{[a-z_]+\}", text)
    literal = sum(len(p) for p in parts)
    if literal < MIN_LITERAL:
        return None
    pattern = "(?s:.*?)".join(re.escape(p) for p in parts)
    return Template(label, lang, re.compile(pattern), literal)


@lru_cache(maxsize=1)
def templates() -> tuple[Template, ...]:
    found: list[Template | None] = []
    knowledge = yaml.safe_load((ROOT / "data" / "knowledge.yml").read_text(encoding="utf-8"))
    for topic, entry in knowledge["topics"].items():
        found += [_template(f"faq_{topic}", lang, entry[lang]) for lang in LANGS]
    for key in i18n.keys():
        found += [_template(f"i18n:{key}", lang, i18n.t(key, lang)) for lang in LANGS]
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    for name, variants in (domain.get("responses") or {}).items():
        for variant in variants:
            conditions = variant.get("condition") or []
            langs = [c["value"] for c in conditions if c.get("name") == "language"] or ["en"]
            found += [_template(name, lang, variant.get("text") or "") for lang in langs]
    return tuple(t for t in found if t is not None)


@dataclass(frozen=True)
class Seen:
    """What a reply is: the label of the text it starts with, and that text's language."""
    label: str | None
    lang: str | None
    text: str

    def short(self, width: int = 70) -> str:
        what = f"{self.label}" + (f" ({self.lang})" if self.lang else "") if self.label else "?"
        flat = " ".join(self.text.split())
        return f"{what}: {flat[:width]}{'…' if len(flat) > width else ''}"


def classify(text: str) -> Seen:
    """The most specific known text the reply starts with (any language)."""
    best: Template | None = None
    for template in templates():
        if template.pattern.match(text.strip()) and (best is None or template.literal > best.literal):
            best = template
    return Seen(best.label if best else None, best.lang if best else None, text)


def is_refusal(seen: Seen) -> bool:
    return seen.label in REFUSALS


def answers(seen: Seen, expect: str, lang: str) -> bool:
    """Is this reply, in `lang`, what a message expecting `expect` should get first?"""
    if seen.lang != lang:
        return False  # the right answer in the other language is not the right answer
    if expect.startswith("faq_"):
        return seen.label == expect
    return seen.label in ANSWERS.get(expect, ())


def outcome_of(text: str) -> str | None:
    """eligible | borderline | not_eligible when the reply gives the check's outcome."""
    for outcome in ("eligible", "borderline", "not_eligible"):
        for lang in LANGS:
            if text.strip().startswith(i18n.t(f"elig_outcome_{outcome}", lang)):
                return outcome
    return None
