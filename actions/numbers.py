"""Head counts as people write them, in English and Chinese.

Pure Python, no Rasa: "180", "1,200", "about 200", "200-300", "two hundred", "150人", "两百",
"约一千二百人", "1.2k", "1.2万", and corrections such as "sorry, 300 not 200" or "不是200，是300".

Two entry points:
- `parse_count(text)`: the whole message answers "how many employees?" — any number counts.
- `find_headcount(text)`: a longer message that may mention the size somewhere ("a garment
  factory with about 180 workers"); only a number tied to a people word counts, so "Module 1",
  "since 2009" or "two managers" are not taken for the factory's size.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Count:
    """A head count: one number (low == high) or a range; `approximate` for "about", "约"."""

    low: int
    high: int
    approximate: bool = False

    @property
    def is_range(self) -> bool:
        return self.low != self.high

    def label(self) -> str:
        return str(self.low) if not self.is_range else f"{self.low}-{self.high}"


@dataclass(frozen=True)
class _Num:
    value: float
    start: int
    end: int


# --- number expressions ----------------------------------------------------------------------

_EN_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}
_EN_SCALES = {"hundred": 100, "thousand": 1000}
_EN_WORD = "|".join(sorted([*_EN_UNITS, *_EN_SCALES], key=len, reverse=True))
# "a hundred and fifty", "twelve hundred", "one thousand two hundred", "twenty-five"
_EN_RE = re.compile(
    rf"\b(?:(?:a|{_EN_WORD})(?:[\s-]+(?:and[\s-]+)?(?:{_EN_WORD}))*)\b"
)

_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}
_ZH_RE = re.compile(r"[零〇一二两三四五六七八九十百千万]+")

# 1,200  1.2k  1.2万  3千  200  (a thousands separator needs groups of exactly three digits)
_ARABIC_RE = re.compile(
    r"(?<![\d.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*(k\b|thousand\b|hundred\b|千|万|百)?",
    re.IGNORECASE,
)
_SUFFIX = {"k": 1000, "thousand": 1000, "hundred": 100, "千": 1000, "万": 10000, "百": 100}

# Chinese measure words after a lone "一" etc. that make it "a/one (thing)", not a head count:
# "一家服装厂", "一个问题", "一些".
_ZH_NOT_COUNT_AFTER = re.compile(r"^[家个些下点种起次位条批直定样般共]")


def _en_value(words: list[str]) -> int | None:
    total, current, seen = 0, 0, False
    for word in words:
        if word in ("and",):
            continue
        if word == "a":
            current = current or 1
            continue
        if word in _EN_UNITS:
            current += _EN_UNITS[word]
            seen = True
        elif word == "hundred":
            current = (current or 1) * 100
            seen = True
        elif word == "thousand":
            total += (current or 1) * 1000
            current = 0
            seen = True
    return total + current if seen else None


def _zh_value(text: str) -> int | None:
    """一千二百 → 1200, 一千二 → 1200 (colloquial), 两百 → 200, 三百五 → 350, 十五 → 15."""
    total, section, digit, last_unit = 0, 0, None, None
    for char in text:
        if char in _ZH_DIGITS:
            digit = _ZH_DIGITS[char]
        elif char == "万":
            section += digit or 0
            total += (section or 1) * 10000
            section, digit, last_unit = 0, None, 10000
        else:
            unit = _ZH_UNITS[char]
            section += (1 if digit is None else digit) * unit
            digit, last_unit = None, unit
    if digit is not None:
        # A trailing digit after a unit means the next smaller unit: 一千二 = 1200, 三百五 = 350.
        if last_unit and last_unit >= 100 and last_unit != 10000:
            section += digit * (last_unit // 10)
        elif last_unit == 10000:
            section += digit * 1000
        else:
            section += digit
    value = total + section
    return value if text.strip("零〇") else None


def _numbers(text: str) -> list[_Num]:
    found: list[_Num] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    for match in _ARABIC_RE.finditer(text):
        raw, suffix = match.group(1), (match.group(2) or "").lower()
        value = float(raw.replace(",", "")) * _SUFFIX.get(suffix, 1)
        found.append(_Num(value, match.start(), match.end()))
        taken.append((match.start(), match.end()))
    for match in _ZH_RE.finditer(text):
        if not free(match.start(), match.end()):
            continue
        chunk = match.group(0)
        if len(chunk) == 1 and chunk in "一二两" and _ZH_NOT_COUNT_AFTER.match(text[match.end():]):
            continue
        zh_number = _zh_value(chunk)
        if zh_number is not None:
            found.append(_Num(float(zh_number), match.start(), match.end()))
            taken.append((match.start(), match.end()))
    for match in _EN_RE.finditer(text):
        if not free(match.start(), match.end()):
            continue
        words = re.split(r"[\s-]+", match.group(0))
        if words[0] == "a" and (len(words) == 1 or words[1] not in _EN_SCALES):
            continue  # "a" alone is an article, not a number
        en_number = _en_value(words)
        if en_number is not None:
            found.append(_Num(float(en_number), match.start(), match.end()))
            taken.append((match.start(), match.end()))
    return sorted(found, key=lambda n: n.start)


# --- context around numbers ------------------------------------------------------------------

_RANGE_JOIN = re.compile(r"^\s*(?:-|–|—|~|〜|to|and|or|至|到)\s*$", re.IGNORECASE)
_BETWEEN = re.compile(r"between\s*$|介于\s*$|在\s*$", re.IGNORECASE)
_NEGATION_BEFORE = re.compile(r"(?:\bnot|\bno|\bisn't|\bnot\s+really|不是|并非|而非|非)\s*$", re.IGNORECASE)
_APPROX = re.compile(
    r"\b(?:about|around|approx(?:imately)?|roughly|nearly|almost|some|circa|ca\.|over|more than"
    r"|less than|under|up to|close to|maybe|perhaps)\b|~|约|大约|大概|差不多|将近|接近|左右|上下|多|余|来",
    re.IGNORECASE,
)
_PEOPLE_AFTER = re.compile(
    r"^\s*(?:\+|plus|or so|odd|多|余|来|左右|上下)?\s*的?\s*"
    r"(?:(?:full[\s-]?time|permanent|regular|total)\s+)?"
    r"(?:workers?|employees?|staff|people|persons?|heads?|personnel|labou?rers?|workforce"
    r"|名|个|位|号)?\s*"
    # "ppl", "pax", "folks": how people type on a phone; "号人" is colloquial Chinese.
    r"(?:员工|工人|职工|人|workers?|employees?|staff|people|ppl|pax|folks|persons?|heads?|personnel"
    r"|labou?rers?)"
    r"|^\s*(?:多|余|来|左右)?\s*[名位](?![称字次单])",
    re.IGNORECASE,
)
_PEOPLE_BEFORE = re.compile(
    r"(?:employ(?:s|ing)?|headcount(?:\s+of|\s+is)?|workforce(?:\s+of|\s+is)?|staff\s+of"
    r"|employees?\s*[:：]|workers?\s*[:：]|员工人数|员工|工人|职工|人数)\s*"
    r"(?:is|are|of|about|around|approx(?:imately)?|roughly|nearly|有|约|大约|大概|共)?\s*$",
    re.IGNORECASE,
)
_SMALL_GROUP_AFTER = re.compile(r"^\s*(?:managers?|supervisors?|名?经理|名?管理)", re.IGNORECASE)


def _normalise(text: str) -> str:
    # NFKC turns full-width digits and punctuation (１８０，～) into ASCII.
    return unicodedata.normalize("NFKC", text).lower()


def _group(text: str, nums: list[_Num]) -> list[tuple[_Num, _Num]]:
    """Pair numbers joined by a range word ("200-300", "两百到三百"); lone numbers pair with
    themselves. Numbers right after a negation ("not 200", "不是200") are dropped."""
    groups: list[tuple[_Num, _Num]] = []
    i = 0
    while i < len(nums):
        first = nums[i]
        if _NEGATION_BEFORE.search(text[: first.start]):
            i += 1
            continue
        if i + 1 < len(nums):
            second = nums[i + 1]
            between = text[first.end : second.start]
            joined = _RANGE_JOIN.match(between) and (
                between.strip().lower() not in ("and", "or") or _BETWEEN.search(text[: first.start])
            )
            if joined and second.value >= first.value:
                groups.append((first, second))
                i += 2
                continue
        groups.append((first, first))
        i += 1
    return groups


def _to_count(text: str, pair: tuple[_Num, _Num]) -> Count | None:
    low, high = round(pair[0].value), round(pair[1].value)
    if low <= 0 or high <= 0:
        return None
    around = text[max(0, pair[0].start - 16) : pair[1].end + 8]
    return Count(low, high, approximate=bool(_APPROX.search(around)))


def _about_people(text: str, pair: tuple[_Num, _Num]) -> bool:
    after = text[pair[1].end :]
    before = text[: pair[0].start]
    if _SMALL_GROUP_AFTER.match(after):
        return False
    return bool(_PEOPLE_AFTER.match(after) or _PEOPLE_BEFORE.search(before))


def parse_count(text: str) -> Count | None:
    """The head count a message gives as an answer, or None when it holds no number.

    A number tied to a people word wins over others ("2 sites, 300 workers" → 300); a negated
    number loses ("300 not 200" → 300); otherwise the first number counts.
    """
    norm = _normalise(text)
    groups = _group(norm, _numbers(norm))
    if not groups:
        return None
    people = [g for g in groups if _about_people(norm, g)]
    return _to_count(norm, (people or groups)[0])


# Free text only: below this a "number + people word" is a group, not the factory ("two
# workers attend the class"); the smallest band in the rules starts well above it.
MIN_FREE_TEXT_HEADCOUNT = 10


def find_headcount(text: str) -> Count | None:
    """The factory size mentioned in a longer message, only when tied to a people word."""
    norm = _normalise(text)
    for group in _group(norm, _numbers(norm)):
        if _about_people(norm, group):
            count = _to_count(norm, group)
            if count and count.low >= MIN_FREE_TEXT_HEADCOUNT:
                return count
    return None


_CORRECTION = re.compile(
    r"\bsorry\b|\bi meant\b|\bcorrection\b|\bactually\b|\bmistake\b|\btypo\b|\bnot\b"
    r"|不是|说错|更正|应该是|改成|改为|打错|写错|纠正",
    re.IGNORECASE,
)


def find_correction(text: str, current: Count | None) -> Count | None:
    """A corrected head count ("sorry, 300 not 200", "不是200，是300人"), or None.

    Accepted only when the message reads as a correction and either negates the current
    figure or ties the new one to people, so "not sure, maybe 3 days" changes nothing.
    """
    norm = _normalise(text)
    if not _CORRECTION.search(norm):
        return None
    nums = _numbers(norm)
    negated = [n for n in nums if _NEGATION_BEFORE.search(norm[: n.start])]
    mentions_current = current is not None and any(
        round(n.value) in (current.low, current.high) for n in negated
    )
    count = parse_count(text)
    if count is None or (current is not None and (count.low, count.high) == (current.low, current.high)):
        return None
    if mentions_current or find_headcount(text) is not None:
        return count
    if (
        re.search(r"\bi meant\b|\bcorrection\b|更正|应该是|说错|改成|改为", norm)
        and count.low >= MIN_FREE_TEXT_HEADCOUNT
    ):
        return count
    return None
