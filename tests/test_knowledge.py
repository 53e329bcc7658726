"""The knowledge capability: data completeness, sourced answers, unknown facts, fallback."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.fallback import ActionFallback, consecutive_misses
from actions.knowledge import ActionAnswerFaq, answer, knowledge, reply, topics
from i18n import LANGUAGES, t

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"  # the fact sheet lies beside the repository (and in CI)
HAN = re.compile(r"[\u3400-\u9fff]")
UNKNOWN_TOPICS = {"fees", "visits", "certificate", "eit"}
REQUIRED_TOPICS = {
    "modules", "module1", "module2", "module3", "module4", "module5", "what_is", "acronym",
    "format", "attendees", "first_module", "duration", "sectors", "size", "china", "licensee",
    "funders", "results", "contact", "enrol", "fees", "visits", "certificate", "eit",
}
# A number next to a currency or price word: what an invented price would look like.
PRICE = re.compile(
    r"(\d[\d,.]*\s*(元|块|rmb|cny|usd|yuan|dollars?|\$|¥)|(rmb|cny|usd|\$|¥)\s*\d)", re.I
)


def _yaml(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text(encoding="utf-8"))


def _tracker(
    intent: str | None,
    lang: str = "en",
    text: str = "question",
    events: list[dict[str, Any]] | None = None,
    active_loop: str | None = None,
) -> Tracker:
    latest = {"intent": {"name": intent, "confidence": 0.9}, "text": text,
              "metadata": {"language": lang}}
    if events is None:
        events = [{"event": "user", "text": text, "parse_data": latest}]
    return Tracker(
        "local-test", {"language": lang}, latest, events, False, None,
        {"name": active_loop} if active_loop else {}, "action_listen",
    )


async def _run(action: Any, tracker: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker, {})
    return dispatcher.messages, events


# --- the knowledge base as data -----------------------------------------------------------


def test_enough_topics_and_the_required_ones() -> None:
    assert len(topics()) >= 25
    assert REQUIRED_TOPICS <= set(topics())


@pytest.mark.parametrize("topic", topics())
def test_every_topic_has_both_languages_titles_and_valid_sources(topic: str) -> None:
    entry = knowledge()["topics"][topic]
    assert entry["sources"], "every answer carries the source of its facts"
    assert set(entry["sources"]) <= set(knowledge()["sources"])
    for lang in LANGUAGES:
        assert entry[lang].strip() and entry["title"][lang].strip()
    assert HAN.search(entry["zh"]) and not HAN.search(entry["title"]["en"])
    for lang in LANGUAGES:
        text = answer(topic, lang)
        assert text.splitlines()[-1].startswith(t("source_line", lang, sources="").rstrip())
        for tag in entry["sources"]:
            assert f"[{tag}]" in text.splitlines()[-1]


def test_domain_intents_rules_and_topics_agree() -> None:
    domain_faq = {i for i in _yaml("domain.yml")["intents"] if str(i).startswith("faq_")}
    assert domain_faq == {f"faq_{topic}" for topic in topics()}
    rules = _yaml("stories/knowledge.yml")["rules"]
    ruled = {step["intent"] for rule in rules for step in rule["steps"] if "intent" in step}
    assert ruled == domain_faq
    assert "action_fallback" in _yaml("domain.yml")["actions"]


def test_suggestions_are_topics() -> None:
    assert set(knowledge()["suggestions"]) <= set(topics())


def test_chinese_module_names_are_said_to_be_translations() -> None:
    note = t("translated_titles_note", "zh")
    assert note and note in answer("modules", "zh")
    assert note not in answer("format", "zh")
    assert "翻译" not in answer("modules", "en")


@pytest.mark.skipif(not (SHARED / "score-facts.md").exists(), reason="shared facts not here")
def test_every_figure_in_an_answer_is_in_the_sources() -> None:
    facts = (SHARED / "score-facts.md").read_text(encoding="utf-8")
    facts += (SHARED / "000_9b103a5cf90d90e3.txt").read_text(encoding="utf-8")
    digits = set(re.findall(r"\d+", facts.replace(",", "")))
    # Chinese restates two kinds of figure: RMB 50 million = 5,000 万, and months as numbers
    # in dates (1 November 2017 = 2017 年 11 月 1 日).
    digits |= {"5000"} | {str(month) for month in range(1, 13)}
    for topic in topics():
        for lang in LANGUAGES:
            body = knowledge()["topics"][topic][lang].replace(",", "")
            invented = set(re.findall(r"\d+", body)) - digits
            assert not invented, f"{topic}/{lang} states figures not in the sources: {invented}"


# --- unknown facts ------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("topic", sorted(UNKNOWN_TOPICS))
def test_unknown_facts_have_no_figure_and_offer_staff_and_contact(topic: str, lang: str) -> None:
    entry = knowledge()["topics"][topic]
    assert entry.get("unknown") is True
    assert not re.search(r"\d", entry[lang]), "no figure at all where we lack the fact"
    answered = reply(topic, lang)
    assert not PRICE.search(answered.text)
    assert answered.buttons == [{"title": t("button_request_human", lang),
                                 "payload": '/request_human{"reason":"unknown_fact"}'}]
    assert "zhangxubiao@ilo.org" in answered.text and "[PR2014]" in answered.text


def test_no_answer_anywhere_quotes_a_price() -> None:
    for topic in topics():
        for lang in LANGUAGES:
            assert not PRICE.search(reply(topic, lang).text.replace("RMB 50", "")
                                    .replace("5,000 万元人民币", "")), topic


# --- action_answer_faq --------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_answer_faq_in_the_users_language_with_sources(lang: str) -> None:
    messages, events = await _run(ActionAnswerFaq(), _tracker("faq_format", lang))
    assert len(messages) == 1
    assert messages[0]["text"] == answer("format", lang)
    assert bool(HAN.search(messages[0]["text"])) == (lang == "zh")
    assert events == []


async def test_answer_faq_unknown_fact_has_the_staff_button() -> None:
    messages, _ = await _run(ActionAnswerFaq(), _tracker("faq_fees", "zh"))
    assert messages[0]["buttons"] == [
        {"title": "转给工作人员", "payload": '/request_human{"reason":"unknown_fact"}'}
    ]


async def test_answer_faq_leads_back_to_an_active_form() -> None:
    _, events = await _run(ActionAnswerFaq(), _tracker("faq_modules", active_loop="eligibility_form"))
    assert events == [{"event": "followup", "name": "eligibility_form", "timestamp": None}]


async def test_answer_faq_with_an_unknown_topic_still_replies() -> None:
    messages, _ = await _run(ActionAnswerFaq(), _tracker("faq_nonexistent"))
    assert messages and messages[0]["buttons"]


# --- fallback -----------------------------------------------------------------------------


def _user(intent: str | None) -> dict[str, Any]:
    return {"event": "user", "text": "x", "parse_data": {"intent": {"name": intent}}}


def _bot() -> dict[str, Any]:
    return {"event": "bot", "text": "..."}


def test_consecutive_misses_counts_back_to_the_last_understood_message() -> None:
    assert consecutive_misses([]) == 0
    assert consecutive_misses([_user("faq_modules")]) == 0
    assert consecutive_misses([_user("nlu_fallback")]) == 1
    assert consecutive_misses([_user("greet"), _bot(), _user("nlu_fallback")]) == 1
    assert consecutive_misses([_user("out_of_scope"), _bot(), _user("nlu_fallback")]) == 2
    assert consecutive_misses(
        [_user("nlu_fallback"), _bot(), _user("faq_fees"), _bot(), _user("out_of_scope")]
    ) == 1
    assert consecutive_misses([_user("nlu_fallback"), _bot(), _user(None)]) == 2
    # A new session starts the count again.
    assert consecutive_misses(
        [_user("nlu_fallback"), {"event": "session_started"}, _user("nlu_fallback")]
    ) == 1


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_first_miss_suggests_topics_second_offers_a_person(lang: str) -> None:
    first = _tracker("nlu_fallback", lang)
    messages, _ = await _run(ActionFallback(), first)
    assert messages[0]["text"] == t("fallback_rephrase", lang)
    payloads = [b["payload"] for b in messages[0]["buttons"]]
    assert payloads and all(p.startswith("/faq_") for p in payloads)

    second = _tracker("nlu_fallback", lang, events=[_user("out_of_scope"), _bot(), _user("nlu_fallback")])
    messages, _ = await _run(ActionFallback(), second)
    assert [b["payload"] for b in messages[0]["buttons"]] == ['/request_human{"reason":"misunderstood"}']
    assert "+86 10 6532 5091" in messages[0]["text"]


async def test_out_of_scope_says_what_the_assistant_is_for() -> None:
    messages, _ = await _run(ActionFallback(), _tracker("out_of_scope", "zh"))
    assert messages[0]["text"] == t("out_of_scope_rephrase", "zh")


async def test_fallback_leads_back_to_an_active_form() -> None:
    _, events = await _run(ActionFallback(), _tracker("nlu_fallback", active_loop="booking_form"))
    assert events == [{"event": "followup", "name": "booking_form", "timestamp": None}]


@pytest.mark.parametrize(
    "text",
    ["", "   ", "😀😀😀", "a" * 4000, "SCORE培训 how much 多少钱", "12345",
     "<script>alert(1)</script>", "{placeholder} %s {0}"],
)
async def test_fallback_survives_bad_input(text: str) -> None:
    for intent in ("nlu_fallback", None):
        messages, _ = await _run(ActionFallback(), _tracker(intent, "en", text=text))
        assert len(messages) == 1 and messages[0]["text"]


# --- NLU training data --------------------------------------------------------------------


def _examples(block: dict[str, Any]) -> list[str]:
    return [line[2:].strip() for line in block["examples"].splitlines() if line.startswith("- ")]


def test_every_faq_intent_has_15_examples_per_language_and_no_duplicates() -> None:
    """Our examples (faq_*, out_of_scope) are not also examples of another intent anywhere."""
    owner: dict[str, set[str]] = {}
    for path in sorted((ROOT / "nlu").glob("*.yml")):
        for block in yaml.safe_load(path.read_text(encoding="utf-8"))["nlu"]:
            if "intent" not in block:
                continue  # regex and lookup blocks
            examples = _examples(block)
            for example in examples:
                owner.setdefault(example.lower(), set()).add(block["intent"])
            if block["intent"].startswith("faq_"):
                zh = [e for e in examples if HAN.search(e)]
                assert len(zh) >= 15 and len(examples) - len(zh) >= 15, block["intent"]
    ours = {k: v for k, v in owner.items() if any(i.startswith("faq_") or i == "out_of_scope" for i in v)}
    clashes = {k: v for k, v in ours.items() if len(v) > 1}
    assert not clashes


# Intents only a button sends (`/intent{...}`, parsed without NLU): their entities (session or
# slot id, booking reference, module, place) cannot come from typed text.
# One list, shared with the evaluation's cross-validation (typed intents only).
from bench.nlu_cv import PAYLOAD_ONLY  # noqa: E402


def test_every_typed_intent_has_15_examples_per_language_and_payload_only_ones_none() -> None:
    examples: dict[str, list[str]] = {}
    for path in sorted((ROOT / "nlu").glob("*.yml")):
        for block in yaml.safe_load(path.read_text(encoding="utf-8"))["nlu"]:
            if "intent" in block:
                examples.setdefault(block["intent"], []).extend(_examples(block))
    domain = set(_yaml("domain.yml")["intents"])
    assert PAYLOAD_ONLY <= domain
    assert not PAYLOAD_ONLY & set(examples)
    assert set(examples) <= domain
    short = {}
    for intent in sorted(domain - PAYLOAD_ONLY - {"nlu_fallback"}):
        zh = sum(bool(HAN.search(e)) for e in examples.get(intent, []))
        en = len(examples.get(intent, [])) - zh
        if min(en, zh) < 15:
            short[intent] = (en, zh)
    assert not short, short
    lowered = [e.lower() for texts in examples.values() for e in texts]
    assert len(lowered) == len(set(lowered)), "an example appears twice"


def test_test_stories_cover_every_topic_in_both_languages() -> None:
    stories = _yaml("tests/stories/test_knowledge.yml")["stories"]
    covered: dict[str, set[str]] = {}
    for story in stories:
        for step in story["steps"]:
            if str(step.get("intent", "")).startswith("faq_") and "user" in step:
                lang = "zh" if HAN.search(step["user"]) else "en"
                covered.setdefault(step["intent"].removeprefix("faq_"), set()).add(lang)
    for topic in topics():
        assert covered.get(topic) == {"en", "zh"}, topic
