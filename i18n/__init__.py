"""Languages and translations shared by the gateway and the actions.

Translations are data: every `i18n/messages/*.yml` file maps a message key to its text per
language (`en`, `zh`). Text may hold `{placeholders}` filled by `t(key, lang, **values)`.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

LANGUAGES = ("en", "zh")
DEFAULT_LANGUAGE = "en"
MESSAGES_DIR = Path(__file__).resolve().parent / "messages"


@lru_cache(maxsize=1)
def _catalogue() -> dict[str, dict[str, str]]:
    catalogue: dict[str, dict[str, str]] = {}
    for path in sorted(MESSAGES_DIR.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key, texts in data.items():
            if key in catalogue:
                raise ValueError(f"message key {key!r} is defined twice ({path.name})")
            missing = [lang for lang in LANGUAGES if not isinstance(texts, dict) or lang not in texts]
            if missing:
                raise ValueError(f"message {key!r} in {path.name} lacks {', '.join(missing)}")
            catalogue[key] = {lang: str(texts[lang]) for lang in LANGUAGES}
    return catalogue


def keys() -> list[str]:
    return sorted(_catalogue())


def t(key: str, lang: str | None, **values: Any) -> str:
    """The text of message `key` in `lang` (English when the language is unknown)."""
    texts = _catalogue()[key]
    text = texts.get(normalise(lang), texts[DEFAULT_LANGUAGE])
    return text.format(**values) if values else text


def normalise(code: str | None) -> str:
    """Map a language code ("zh-hans", "zh-CN", "en-GB", None) onto en or zh."""
    if not code:
        return DEFAULT_LANGUAGE
    code = code.lower()
    if code.startswith("zh"):
        return "zh"
    return "en"


_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def detect(text: str, current: str | None = None) -> str:
    """The language a message is written in, or `current` when the text can't tell.

    Short or ambiguous messages ("ok", "5", "SCORE", an emoji) keep the current language.
    Chinese characters are a surer sign than langdetect's statistics on short texts, so any
    message with a few Han characters and more of them than Latin words counts as Chinese.
    """
    current = normalise(current) if current else DEFAULT_LANGUAGE
    han = len(_HAN.findall(text))
    latin_words = _LATIN_WORD.findall(text)
    if han >= 2 and han >= len(latin_words):
        return "zh"
    if han == 0 and len(latin_words) < 3:
        return current  # "ok", "5", "SCORE", "Module 1": not enough to switch on
    if han == 0:
        guessed = _langdetect(text)
        return "en" if guessed is None or not guessed.startswith("zh") else "zh"
    return current


# langdetect loads the profiles of 55 languages (60 MB in the gateway) to tell them apart; the
# answer here is only Chinese or not, so it gets the English and both Chinese profiles.
_LANGDETECT_PROFILES = ("en", "zh-cn", "zh-tw")


@lru_cache(maxsize=1)
def _detector_factory():
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.load_json_profile([
        (Path(PROFILES_DIRECTORY) / name).read_text(encoding="utf-8") for name in _LANGDETECT_PROFILES
    ])
    factory.set_seed(0)  # langdetect is random unless seeded
    return factory


def _langdetect(text: str) -> str | None:
    from langdetect import LangDetectException

    try:
        detector = _detector_factory().create()
        detector.append(text)
        return detector.detect()
    except LangDetectException:
        return None
