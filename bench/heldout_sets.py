"""The held-out message sets (bench/heldout/*.yml, format in bench/heldout/README.md): loading
and checking. Used by bench/nlu_eval.py and by the test that keeps them apart from nlu/."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
HELDOUT_DIR = ROOT / "bench" / "heldout"
LANGS = ("en", "zh")
# Intents whose answer does not depend on the conversation so far: what a first message may expect.
ANSWER_INTENTS = frozenset({
    "start_booking", "book_classroom", "book_consultation", "my_bookings", "cancel_booking",
    "reschedule_booking", "request_human", "greet", "goodbye", "thank",
})
OUT_OF_SCOPE = "out_of_scope"
SECTORS = frozenset({"manufacturing", "services", "other"})
VERDICTS = frozenset({"eligible", "borderline", "not_eligible"})
UNKNOWN_PLACE = "unknown"


@dataclass(frozen=True)
class Eligibility:
    employees: tuple[int, int] | None
    sector: str | None
    country: str | None  # a country id, "unknown" (a place we cannot know) or None (no place)
    verdict: str | None


@dataclass(frozen=True)
class Message:
    text: str
    language: str
    expect: str | Eligibility  # an intent name, "out_of_scope", or an eligibility expectation
    source: str  # file name, for error messages

    @property
    def kind(self) -> str:
        if isinstance(self.expect, Eligibility):
            return "eligibility"
        return "out_of_scope" if self.expect == OUT_OF_SCOPE else "answer"


def normalised(text: str) -> str:
    """Lower case, words only: "How much?!" and "how much" are the same message."""
    return " ".join(re.findall(r"\w+", text.lower()))


def _eligibility(raw: Any, where: str) -> Eligibility:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: eligibility must be a mapping")
    unknown_keys = set(raw) - {"reach", "employees", "sector", "country", "verdict"}
    if unknown_keys or raw.get("reach", True) is not True:
        raise ValueError(f"{where}: eligibility keys are employees, sector, country, verdict")
    employees = raw.get("employees")
    if isinstance(employees, int):
        employees = (employees, employees)
    elif isinstance(employees, list) and len(employees) == 2 and all(isinstance(n, int) for n in employees):
        employees = (min(employees), max(employees))
    elif employees is not None:
        raise ValueError(f"{where}: employees must be a number, [lo, hi] or null")
    sector, country, verdict = raw.get("sector"), raw.get("country"), raw.get("verdict")
    if sector is not None and sector not in SECTORS:
        raise ValueError(f"{where}: sector {sector!r} is not one of {sorted(SECTORS)}")
    if verdict is not None and verdict not in VERDICTS:
        raise ValueError(f"{where}: verdict {verdict!r} is not one of {sorted(VERDICTS)}")
    if verdict is not None and employees is None:
        raise ValueError(f"{where}: a verdict needs a headcount (the scorer never invents one)")
    if country is not None and country != UNKNOWN_PLACE:
        countries = yaml.safe_load((ROOT / "data" / "places.yml").read_text(encoding="utf-8"))["countries"]
        if country not in countries:
            raise ValueError(f"{where}: country {country!r} is not in data/places.yml (or 'unknown')")
    return Eligibility(employees, sector, country, verdict)


def _expect(raw: Any, topics: set[str], where: str) -> str | Eligibility:
    if isinstance(raw, dict) and set(raw) == {"eligibility"}:
        return _eligibility(raw["eligibility"], where)
    if raw == OUT_OF_SCOPE or raw in ANSWER_INTENTS:
        return raw
    if isinstance(raw, str) and raw.startswith("faq_") and raw.removeprefix("faq_") in topics:
        return raw
    raise ValueError(f"{where}: expect {raw!r} is not a known topic, intent, out_of_scope or eligibility")


def load(directory: Path = HELDOUT_DIR) -> list[Message]:
    """Every message of every set, checked; raises ValueError naming the file and message."""
    knowledge = yaml.safe_load((ROOT / "data" / "knowledge.yml").read_text(encoding="utf-8"))
    topics = set(knowledge["topics"])
    messages: list[Message] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        language = data.get("language")
        if language not in LANGS:
            raise ValueError(f"{path.name}: language must be one of {LANGS}")
        for index, item in enumerate(data.get("messages") or []):
            where = f"{path.name} message {index + 1}"
            text = str(item.get("text") or "").strip() if isinstance(item, dict) else ""
            if not text:
                raise ValueError(f"{where}: no text")
            key = normalised(text)
            if key in seen:
                raise ValueError(f"{where}: {text!r} repeats a message of {seen[key]}")
            seen[key] = path.name
            messages.append(Message(text, language, _expect(item.get("expect"), topics, where), path.name))
    return messages
