"""The held-out sets of bench/nlu_eval.py (bench/heldout/*.yml): apart from the training data,
in the format and numbers bench/heldout/README.md asks for, and the scorer's reading of replies."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from actions.knowledge import answer, topics
from bench.heldout_eval import facts_filled
from bench.heldout_sets import HELDOUT_DIR, LANGS, Eligibility, load, normalised
from bench.nlu_cv import examples_of
from bench.replies import ANSWERS, REFUSALS, answers, classify, is_refusal, outcome_of
from i18n import t

ROOT = Path(__file__).resolve().parent.parent


def training_texts() -> set[str]:
    texts: set[str] = set()
    for path in (ROOT / "nlu").glob("*.yml"):
        for block in yaml.safe_load(path.read_text(encoding="utf-8"))["nlu"]:
            if "intent" in block:
                texts |= {normalised(e) for e in examples_of(block)}
    return texts


def test_normalised_ignores_case_spacing_and_punctuation() -> None:
    assert normalised("  How much?!  ") == normalised("how   much") == "how much"
    assert normalised("能参加吗？") == normalised("能参加吗")
    assert normalised("SCORE培训，多少钱") == normalised("score培训 多少钱")


def test_every_heldout_file_is_read_and_none_overlaps_the_training_data() -> None:
    messages = load()  # every bench/heldout/*.yml, format checked
    assert {m.source for m in messages} == {p.name for p in HELDOUT_DIR.glob("*.yml")}
    training = training_texts()
    overlap = sorted(f"{m.source}: {m.text}" for m in messages if normalised(m.text) in training)
    assert not overlap, f"held-out messages that are training examples: {overlap}"


@pytest.mark.parametrize("lang", LANGS)
def test_enough_messages_of_every_kind(lang: str) -> None:
    """Issue 14: per language 150 messages, 30 one-message eligibility questions, 40
    out-of-scope, every FAQ topic at least twice."""
    messages = [m for m in load() if m.language == lang]
    kinds = Counter(m.kind for m in messages)
    assert len(messages) >= 150 and kinds["eligibility"] >= 30 and kinds["out_of_scope"] >= 40, kinds
    faqs = Counter(m.expect for m in messages if m.kind == "answer")
    assert not [topic for topic in topics() if faqs[f"faq_{topic}"] < 2]


def test_format_errors_name_the_message(tmp_path: Path) -> None:
    (tmp_path / "en.yml").write_text(
        'language: en\nmessages:\n  - {text: "hi there", expect: faq_no_such_topic}\n', encoding="utf-8"
    )
    with pytest.raises(ValueError, match="en.yml message 1"):
        load(tmp_path)


# --- how the scorer reads a reply ----------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_every_topic_answer_is_read_as_that_topic_in_its_language(lang: str) -> None:
    other = "zh" if lang == "en" else "en"
    for topic in topics():
        seen = classify(answer(topic, lang))
        assert answers(seen, f"faq_{topic}", lang), (topic, seen.label)
        assert not answers(seen, f"faq_{topic}", other)  # the answer in the wrong language misses


@pytest.mark.parametrize("lang", LANGS)
def test_refusals_and_other_answers_are_read(lang: str) -> None:
    for label in REFUSALS:
        key = label.removeprefix("i18n:")
        text = t(key, lang, contact=t("contact_short", lang))
        assert is_refusal(classify(text)), key
    assert not is_refusal(classify(answer("fees", lang)))
    assert answers(classify(t("booking_ask_kind", lang)), "start_booking", lang)
    assert not answers(classify(t("booking_ask_kind", lang)), "book_classroom", lang)
    handoff = t("handoff_started", lang) + "\n" + t("handoff_after_hours", lang, when="09:00")
    assert answers(classify(handoff), "request_human", lang)
    assert classify("something nobody wrote").label is None
    assert set(ANSWERS) >= {"greet", "goodbye", "thank", "my_bookings"}


def test_outcomes_are_read_from_the_reply() -> None:
    for lang in LANGS:
        for outcome in ("eligible", "borderline", "not_eligible"):
            assert outcome_of(t(f"elig_outcome_{outcome}", lang) + "\n\nwhy ...") == outcome
    assert outcome_of("Noted: 200 employees.") is None


def test_facts_filled_allows_ten_percent_and_no_invented_country() -> None:
    slots = {"employees_low": 200, "employees_high": 200, "sector": "manufacturing", "factory_country": "china"}
    assert facts_filled(Eligibility((210, 210), "manufacturing", "china", None), slots)[0]
    assert not facts_filled(Eligibility((300, 300), None, None, None), slots)[0]
    assert facts_filled(Eligibility((150, 200), None, "china", None), slots)[0]
    ok, note = facts_filled(Eligibility(None, None, "unknown", None), slots)
    assert not ok and "invented" in note
    assert facts_filled(Eligibility(None, None, None, None), {})[0]
    assert not facts_filled(Eligibility(None, "services", None, None), slots)[0]


# --- cross-validation input ----------------------------------------------------------------


def test_cv_uses_typed_intents_only() -> None:
    from bench.nlu_cv import PAYLOAD_ONLY, training_data

    split, _ = training_data()
    for lang in LANGS:
        assert split[lang] and not (set(split[lang]) & (PAYLOAD_ONLY | {"nlu_fallback"}))
        assert not [t for texts in split[lang].values() for t in texts if t.startswith("/")]


def test_cv_config_keeps_the_pipeline_and_lowers_diet_epochs_only_if_there_is_diet(tmp_path: Path) -> None:
    from bench.nlu_cv import cv_config

    source, out = tmp_path / "config.yml", tmp_path / "cv.yml"
    pipeline = [{"name": "JiebaTokenizer"},
                {"name": "rasa_extensions.intent_classifier.SentenceIntentClassifier", "epochs": 7}]
    source.write_text(yaml.safe_dump({"language": "zh", "pipeline": pipeline, "policies": [{"name": "RulePolicy"}]}))
    assert cv_config(60, out, source) == "config.yml as is"
    assert yaml.safe_load(out.read_text()) == {"language": "zh", "pipeline": pipeline}
    source.write_text(yaml.safe_dump({"pipeline": [{"name": "DIETClassifier", "epochs": 100}]}))
    assert cv_config(60, out, source) == "DIET 60 ep"
    assert yaml.safe_load(out.read_text())["pipeline"][0]["epochs"] == 60
