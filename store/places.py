"""The place gazetteer (data/places.yml: city → province → country) and its one matcher.

Used by the eligibility check (where is the factory?) and by the schedules (which city a
classroom session is in, which region a consultation slot covers, what the user typed when
asked for a city or region). Places flagged `schedule: true` are the ones schedules may name:
sessions by a city's `en` name, consultation slots by a province's `en` name (its region).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from i18n import normalise

PLACES_FILE = Path(__file__).resolve().parent.parent / "data" / "places.yml"


class PlacesError(ValueError):
    """data/places.yml is malformed; the message names the entry."""


@dataclass(frozen=True)
class Place:
    country: str | None  # key in places.yml, e.g. "china"; None when unknown
    province: str | None = None
    city: str | None = None
    raw: str | None = None  # the user's words when no known place matched

    def label(self, lang: str, places: Places) -> str:
        parts = [
            places.name("cities", self.city, lang),
            places.name("provinces", self.province, lang),
            places.name("countries", self.country, lang),
        ]
        # Municipalities: "Shanghai, Shanghai, China" reads badly; drop repeated names.
        shown: list[str] = []
        for part in parts:
            if part and part not in shown:
                shown.append(part)
        if not shown:
            return self.raw or "?"
        return ("，" if lang == "zh" else ", ").join(shown)


@dataclass(frozen=True)
class _Name:
    text: str
    kind: str  # cities | provinces | countries
    key: str


_KINDS = ("cities", "provinces", "countries")
# Free text only: a country after these words is where the factory is, not where it sells.
_COUNTRY_CUE = re.compile(r"(?:\bin|\bfrom|based in|located in|\bat|在|位于|来自|地处)\s*$", re.IGNORECASE)
# The same cue after the name: "Tunisia-based", "a Vietnam factory", "越南的工厂".
_COUNTRY_CUE_AFTER = re.compile(
    r"^(?:[\s-]*based\b|\s+(?:factory|plant|company|firm|workshop|mill)\b|的?(?:工厂|公司|厂|企业))",
    re.IGNORECASE,
)


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


class Places:
    def __init__(self, data: dict[str, Any], source: str = "places.yml") -> None:
        self.data = _validate(data, source)
        names: list[_Name] = []
        for kind in _KINDS:
            for key, entry in self.data[kind].items():
                for text in {entry["en"], entry["zh"], *entry.get("aliases", [])}:
                    names.append(_Name(_norm(str(text)), kind, key))
        # Longest names first ("印度尼西亚" before "印度", "South Africa" before "Africa");
        # at equal length a city beats a province beats a country (Shanghai the city).
        names.sort(key=lambda n: (-len(n.text), _KINDS.index(n.kind)))
        self._names = names
        self._scheduled_names = [n for n in names if self.data[n.kind][n.key].get("schedule")]

    def name(self, kind: str, key: str | None, lang: str) -> str | None:
        if not key:
            return None
        entry = self.data[kind].get(key)
        return str(entry["zh" if lang == "zh" else "en"]) if entry else key

    def resolve(self, kind: str, key: str) -> Place:
        if kind == "cities":
            province = self.data["cities"][key]["province"]
            return Place(self.data["provinces"][province]["country"], province, key)
        if kind == "provinces":
            return Place(self.data["provinces"][key]["country"], key)
        return Place(key)

    def _matches(self, text: str, scheduled: bool = False) -> list[tuple[int, _Name]]:
        norm = _norm(text)
        taken: list[tuple[int, int]] = []
        found: list[tuple[int, _Name]] = []
        for name in self._scheduled_names if scheduled else self._names:
            if name.text.isascii():
                pattern = rf"(?<![a-z]){re.escape(name.text)}(?![a-z])"
            else:
                pattern = re.escape(name.text)
            for match in re.finditer(pattern, norm):
                start, end = match.span()
                if all(end <= s or start >= e for s, e in taken):
                    taken.append((start, end))
                    found.append((start, name))
        return sorted(found, key=lambda item: item[0])

    def find(self, text: str, *, answer: bool, scheduled: bool = False) -> Place | None:
        """The most specific known place in `text`.

        `answer`: the message answers "where is the factory?", so a bare country counts; in
        other messages a country needs a cue ("in Viet Nam", "在越南") because it may be a market
        ("we export to Germany"). `scheduled`: only places flagged `schedule: true`.
        """
        norm = _norm(text)
        best: Place | None = None
        best_rank = len(_KINDS)
        for start, name in self._matches(text, scheduled):
            if (name.kind == "countries" and not answer and not _COUNTRY_CUE.search(norm[:start])
                    and not _COUNTRY_CUE_AFTER.match(norm[start + len(name.text):])):
                continue
            rank = _KINDS.index(name.kind)
            if rank < best_rank:
                best, best_rank = self.resolve(name.kind, name.key), rank
        return best


def _validate(data: Any, source: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise PlacesError(f"{source}: expected a mapping with countries, provinces, cities")
    for kind in _KINDS:
        if not isinstance(data.get(kind), dict) or not data[kind]:
            raise PlacesError(f"{source}: '{kind}' is missing or empty")
        for key, entry in data[kind].items():
            where = f"{source}: {kind}.{key}"
            if not isinstance(entry, dict):
                raise PlacesError(f"{where}: expected a mapping with en and zh")
            for lang in ("en", "zh"):
                if not str(entry.get(lang) or "").strip():
                    raise PlacesError(f"{where}: '{lang}' name is missing")
            if not isinstance(entry.get("aliases", []), list):
                raise PlacesError(f"{where}: 'aliases' must be a list")
            if not isinstance(entry.get("schedule", False), bool):
                raise PlacesError(f"{where}: 'schedule' must be true or false")
    for key, entry in data["provinces"].items():
        if entry.get("country") not in data["countries"]:
            raise PlacesError(f"{source}: provinces.{key}: unknown country {entry.get('country')!r}")
    for key, entry in data["cities"].items():
        if entry.get("province") not in data["provinces"]:
            raise PlacesError(f"{source}: cities.{key}: unknown province {entry.get('province')!r}")
    return data


def load_places(path: Path = PLACES_FILE) -> Places:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise PlacesError(f"{path.name}: not valid YAML: {error}") from error
    return Places(data, path.name)


@lru_cache(maxsize=1)
def places() -> Places:
    return load_places()


# --- the schedules' view: places by their English name ---------------------------------------
# Sessions name a city, consultation slots a region (a province), by the `en` name.
CITIES, REGIONS = "cities", "regions"
_SCHEDULE_KINDS = {CITIES: "cities", REGIONS: "provinces"}


@lru_cache(maxsize=2)
def scheduled(section: str) -> dict[str, dict[str, Any]]:
    """The places schedules may name in `section` (cities | regions), by English name."""
    data = places().data
    return {str(entry["en"]): entry for entry in data[_SCHEDULE_KINDS[section]].values()
            if entry.get("schedule")}


def canonical_place(text: str | None) -> str | None:
    """'东莞', 'dongguan', 'Dongguan 市', '我在深圳' -> 'Dongguan' (the most specific place
    schedules may name, by its English name); None when there is none."""
    if not text:
        return None
    place = places().find(text, answer=True, scheduled=True)
    if place is None:
        return None
    kind, key = ("cities", place.city) if place.city else ("provinces", place.province)
    return str(places().data[kind][key]["en"]) if key else None


def region_of(place: str) -> str:
    """The region (province) a city is in; a region is its own."""
    name = canonical_place(place) or place
    if name in scheduled(REGIONS):
        return name
    city = scheduled(CITIES).get(name)
    return str(places().data["provinces"][city["province"]]["en"]) if city else name


def cities_in(place: str) -> list[str]:
    """The cities a place stands for: a city itself, or every scheduled city of a region."""
    name = canonical_place(place) or place
    cities = scheduled(CITIES)
    if name in cities:  # Shanghai and Chongqing are both a city and a region
        return [name]
    provinces = places().data["provinces"]
    return [city for city, entry in cities.items()
            if provinces[entry["province"]]["en"] == name] or [name]


def place_name(name: str, lang: str | None) -> str:
    """A city's or region's name (its English name, as schedules store it) in `lang`."""
    entry = scheduled(CITIES).get(name) or scheduled(REGIONS).get(name)
    if entry and normalise(lang) == "zh":
        return str(entry["zh"])
    return name
