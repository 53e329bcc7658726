"""Personal data out of exported transcripts: known names and ids, phone numbers, emails.

Known values (a user's display name, @username, Telegram id, enquiry contacts, attendee
names) are replaced wherever they appear; phone numbers and emails are found by pattern
because users type other people's too.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# A run of digits with the usual separators, optionally +country code; checked below for
# 7 to 15 digits (E.164) so that small numbers ("50 workers", "2+2 days") stay.
PHONE_RE = re.compile(r"(?<![\w+])\+?\(?\d[\d\s().\-]{5,22}\d(?!\w)")
DATE_RE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{4}$")
TELEGRAM_ID_RE = re.compile(r"\btg-\d+\b")
_CJK_RE = re.compile(r"[\u3400-\u9fff]")

NAME = "[NAME]"
PHONE = "[PHONE]"
EMAIL = "[EMAIL]"
TELEGRAM_ID = "[TELEGRAM_ID]"
USERNAME = "[USERNAME]"
CONTACT = "[CONTACT]"


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(ch.isdigit() for ch in text)
    if not 7 <= digits <= 15 or DATE_RE.match(text.strip()):
        return text
    return PHONE


@dataclass
class Redactor:
    """Replaces known personal values and patterns; built once per export."""

    names: set[str] = field(default_factory=set)
    usernames: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)
    contacts: set[str] = field(default_factory=set)
    _pattern: re.Pattern[str] | None = None
    _labels: dict[str, str] = field(default_factory=dict)

    def add_name(self, name: str | None) -> None:
        if not name or not name.strip():
            return
        name = name.strip()
        self.names.add(name)
        # Parts of a name ("Wang" of "Wang Lei") are personal too, when long enough not to
        # be ordinary words; Chinese names are matched whole and by 2+ character parts.
        for part in re.split(r"\s+", name):
            if len(part) >= 3 or (len(part) >= 2 and _CJK_RE.search(part)):
                self.names.add(part)
        self._pattern = None

    def add_username(self, username: str | None) -> None:
        if username and username.strip():
            self.usernames.add(username.strip().lstrip("@"))
            self._pattern = None

    def add_contact(self, value: str | None) -> None:
        """A phone number or address as typed in a form: replaced whole, never in parts."""
        if value and len(value.strip()) >= 3:
            self.contacts.add(value.strip())
            self._pattern = None

    def add_id(self, value: str | int | None) -> None:
        if value is not None and str(value).strip():
            self.ids.add(str(value).strip())
            self._pattern = None

    def _compiled(self) -> re.Pattern[str] | None:
        if self._pattern is None:
            labels: dict[str, str] = {}
            for value in self.contacts:
                labels[value.lower()] = CONTACT
            for value in self.ids:
                labels[value.lower()] = TELEGRAM_ID
            for value in self.names:
                labels[value.lower()] = NAME
            for value in self.usernames:
                labels[value.lower()] = USERNAME
                labels["@" + value.lower()] = USERNAME
            if not labels:
                return None
            alternatives = []
            # Longest first, so "Wang Lei" wins over "Wang".
            for value in sorted(labels, key=len, reverse=True):
                escaped = re.escape(value)
                if _CJK_RE.search(value) or not (value[0].isalnum() and value[-1].isalnum()):
                    alternatives.append(escaped)
                else:
                    alternatives.append(rf"(?<![\w@]){escaped}(?!\w)")
            self._pattern = re.compile("|".join(alternatives), re.IGNORECASE)
            self._labels = labels
        return self._pattern

    def __call__(self, text: str | None) -> str:
        if not text:
            return text or ""
        text = EMAIL_RE.sub(EMAIL, text)
        pattern = self._compiled()
        if pattern is not None:
            text = pattern.sub(lambda m: self._labels.get(m.group(0).lower(), NAME), text)
        text = TELEGRAM_ID_RE.sub(TELEGRAM_ID, text)
        return PHONE_RE.sub(_phone, text)


def redactor_for(
    names: Iterable[str | None] = (),
    usernames: Iterable[str | None] = (),
    ids: Iterable[str | int | None] = (),
) -> Redactor:
    redactor = Redactor()
    for name in names:
        redactor.add_name(name)
    for username in usernames:
        redactor.add_username(username)
    for value in ids:
        redactor.add_id(value)
    return redactor
