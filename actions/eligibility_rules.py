"""The eligibility rules (data/eligibility_rules.yml): loading, validation and judging.

Staff edit the YAML, not this module. A bad file stops the action server at start-up with a
message that names the problem; check an edit first with
    python -m actions.eligibility_rules --check [path/to/rules.yml]
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from store.kinds import EligibilityOutcome
from store.places import PLACES_FILE, Places, PlacesError, load_places

RULES_FILE = Path(__file__).resolve().parent.parent / "data" / "eligibility_rules.yml"

OUTCOMES = tuple(EligibilityOutcome)  # in order of severity
SECTORS = ("manufacturing", "services", "other")


class RulesError(ValueError):
    """The rules file is malformed; the message names the file, the entry and the problem."""


@dataclass(frozen=True)
class Band:
    region: str  # "default" or a country id
    min: int
    max: int
    sources: tuple[str, ...]


@dataclass(frozen=True)
class SectorKind:
    key: str
    sector: str
    en: str
    zh: str
    words: tuple[str, ...]


@dataclass(frozen=True)
class Rules:
    sources: dict[str, dict[str, str]]
    bands: dict[str, Band]
    margin_percent: float
    offered: frozenset[str]
    offered_sources: tuple[str, ...]
    eligible_sectors: frozenset[str]
    sector_sources: tuple[str, ...]
    kinds: dict[str, SectorKind]
    generic: dict[str, tuple[str, ...]]
    commitment_if_no: EligibilityOutcome
    commitment_sources: tuple[str, ...]
    brands_sources: tuple[str, ...]

    def band_for(self, country: str | None) -> Band:
        return self.bands.get(country or "", self.bands["default"])

    def source_names(self, tags: tuple[str, ...], lang: str) -> str:
        sep = "；" if lang == "zh" else "; "
        return sep.join(f"{self.sources[tag][lang]} [{tag}]" for tag in tags)


# --- judging -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What the user told the check. None means not known."""

    employees_low: int | None = None
    employees_high: int | None = None
    sector: str | None = None  # manufacturing | services | other
    sector_kind: str | None = None
    country: str | None = None  # country id from places.yml
    supplies_brands: bool | None = None
    can_commit: bool | None = None


@dataclass(frozen=True)
class Reason:
    code: str  # i18n key suffix: elig_reason_<code>
    outcome: EligibilityOutcome  # the outcome this reason alone leads to
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    outcome: EligibilityOutcome
    reasons: tuple[Reason, ...]
    band: Band

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]


def _position(value: int, band: Band, margin_percent: float) -> str:
    """in | near_below | near_above | below | above."""
    if band.min <= value <= band.max:
        return "in"
    if value < band.min:
        return "near_below" if value >= band.min - math.ceil(band.min * margin_percent / 100) else "below"
    return "near_above" if value <= band.max + math.floor(band.max * margin_percent / 100) else "above"


def _size_reason(facts: Facts, band: Band, rules: Rules) -> Reason:
    low, high = facts.employees_low, facts.employees_high
    if low is None or high is None:
        return Reason("size_unknown", EligibilityOutcome.BORDERLINE)
    count = str(low) if low == high else f"{low}–{high}"
    params = {"count": count, "min": band.min, "max": band.max}
    ends = {_position(low, band, rules.margin_percent), _position(high, band, rules.margin_percent)}
    if ends == {"in"}:
        return Reason("size_in_band", EligibilityOutcome.ELIGIBLE, params)
    if ends == {"below"}:
        return Reason("size_too_small", EligibilityOutcome.NOT_ELIGIBLE, params)
    if ends == {"above"}:
        return Reason("size_too_large", EligibilityOutcome.NOT_ELIGIBLE, params)
    if low != high:
        return Reason("size_range_partly_outside", EligibilityOutcome.BORDERLINE, params)
    side = "below" if "near_below" in ends else "above"
    return Reason(f"size_just_{side}", EligibilityOutcome.BORDERLINE, params)


def evaluate(facts: Facts, rules: Rules) -> Decision:
    """Judge the facts: the worst outcome of the size, country, sector and commitment."""
    band = rules.band_for(facts.country)
    reasons: list[Reason] = [_size_reason(facts, band, rules)]
    if facts.country is None:
        reasons.append(Reason("country_unknown", EligibilityOutcome.BORDERLINE))
    elif facts.country not in rules.offered:
        reasons.append(Reason("country_not_offered", EligibilityOutcome.BORDERLINE, {"country": facts.country}))
    if facts.sector in rules.eligible_sectors:
        reasons.append(Reason("sector_ok", EligibilityOutcome.ELIGIBLE, {"sector": facts.sector}))
    else:
        reasons.append(Reason("sector_unknown", EligibilityOutcome.BORDERLINE, {"sector": facts.sector_kind or ""}))
    if facts.can_commit is True:
        reasons.append(Reason("commit_yes", EligibilityOutcome.ELIGIBLE))
    elif facts.can_commit is False:
        reasons.append(Reason("commit_no", rules.commitment_if_no))
    else:
        reasons.append(Reason("commit_unknown", EligibilityOutcome.BORDERLINE))
    if facts.supplies_brands:
        reasons.append(Reason("brands_yes", EligibilityOutcome.ELIGIBLE))
    outcome = max((r.outcome for r in reasons), key=OUTCOMES.index)
    return Decision(outcome, tuple(reasons), band)


# --- loading and validation ----------------------------------------------------------------


def _tags(value: Any, where: str, sources: dict[str, Any], src: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise RulesError(f"{src}: {where}.sources: give at least one source tag, e.g. [ILO-IN]")
    for tag in value:
        if tag not in sources:
            raise RulesError(
                f"{src}: {where}.sources: unknown source tag {tag!r} (add it under 'sources:')"
            )
    return tuple(str(t) for t in value)


def _int(value: Any, where: str, src: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RulesError(f"{src}: {where}: must be a whole number of employees ≥ 1, got {value!r}")
    return value


def parse_rules(data: Any, places: Places, src: str = "eligibility_rules.yml") -> Rules:
    if not isinstance(data, dict):
        raise RulesError(f"{src}: expected a mapping at the top level")
    if data.get("version") != 1:
        raise RulesError(f"{src}: version: expected 1, got {data.get('version')!r}")

    sources = data.get("sources")
    if not isinstance(sources, dict) or not sources:
        raise RulesError(f"{src}: sources: missing; list the source tags with en and zh names")
    for tag, names in sources.items():
        if not isinstance(names, dict) or not all(str(names.get(lang) or "").strip() for lang in ("en", "zh")):
            raise RulesError(f"{src}: sources.{tag}: needs both 'en' and 'zh' names")

    bands_data = data.get("bands")
    if not isinstance(bands_data, dict) or "default" not in bands_data:
        raise RulesError(f"{src}: bands: missing, or without a 'default' band")
    bands: dict[str, Band] = {}
    for region, entry in bands_data.items():
        where = f"bands.{region}"
        if region != "default" and region not in places.data["countries"]:
            raise RulesError(f"{src}: {where}: unknown country {region!r} (not in {PLACES_FILE.name})")
        if not isinstance(entry, dict):
            raise RulesError(f"{src}: {where}: expected {{min: .., max: .., sources: [..]}}")
        low, high = _int(entry.get("min"), f"{where}.min", src), _int(entry.get("max"), f"{where}.max", src)
        if low > high:
            raise RulesError(f"{src}: {where}: min ({low}) is greater than max ({high})")
        bands[region] = Band(region, low, high, _tags(entry.get("sources"), where, sources, src))

    margin = data.get("margin_percent")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin <= 100:
        raise RulesError(f"{src}: margin_percent: must be a number from 0 to 100, got {margin!r}")

    countries = data.get("countries")
    if not isinstance(countries, dict) or not isinstance(countries.get("offered"), list):
        raise RulesError(f"{src}: countries.offered: expected a list of country ids")
    for country in countries["offered"]:
        if country not in places.data["countries"]:
            raise RulesError(f"{src}: countries.offered: unknown country {country!r} (not in {PLACES_FILE.name})")

    sectors = data.get("sectors")
    if not isinstance(sectors, dict):
        raise RulesError(f"{src}: sectors: missing")
    eligible = sectors.get("eligible")
    if not isinstance(eligible, list) or not eligible or any(s not in SECTORS for s in eligible):
        raise RulesError(f"{src}: sectors.eligible: expected a list drawn from {', '.join(SECTORS)}, got {eligible!r}")
    kinds: dict[str, SectorKind] = {}
    for key, entry in (sectors.get("kinds") or {}).items():
        where = f"sectors.kinds.{key}"
        if not isinstance(entry, dict) or entry.get("sector") not in SECTORS:
            raise RulesError(f"{src}: {where}.sector: must be one of {', '.join(SECTORS)}")
        words = entry.get("words")
        if not isinstance(words, list) or not words:
            raise RulesError(f"{src}: {where}.words: give at least one word")
        for lang in ("en", "zh"):
            if not str(entry.get(lang) or "").strip():
                raise RulesError(f"{src}: {where}: '{lang}' name is missing")
        kinds[key] = SectorKind(key, entry["sector"], str(entry["en"]), str(entry["zh"]), tuple(str(w) for w in words))
    generic: dict[str, tuple[str, ...]] = {}
    for sector, words in (sectors.get("generic") or {}).items():
        if sector not in SECTORS or not isinstance(words, list):
            raise RulesError(
                f"{src}: sectors.generic.{sector}: expected one of {', '.join(SECTORS)} with a list of words"
            )
        generic[sector] = tuple(str(w) for w in words)

    commitment = data.get("commitment") or {}
    if commitment.get("if_no") not in OUTCOMES:
        raise RulesError(
            f"{src}: commitment.if_no: must be one of {', '.join(OUTCOMES)}, got {commitment.get('if_no')!r}"
        )

    return Rules(
        sources={tag: {"en": str(n["en"]), "zh": str(n["zh"])} for tag, n in sources.items()},
        bands=bands,
        margin_percent=float(margin),
        offered=frozenset(countries["offered"]),
        offered_sources=_tags(countries.get("sources"), "countries", sources, src),
        eligible_sectors=frozenset(eligible),
        sector_sources=_tags(sectors.get("sources"), "sectors", sources, src),
        kinds=kinds,
        generic=generic,
        commitment_if_no=EligibilityOutcome(commitment["if_no"]),
        commitment_sources=_tags(commitment.get("sources"), "commitment", sources, src),
        brands_sources=_tags((data.get("brands") or {}).get("sources"), "brands", sources, src),
    )


def load_rules(path: Path = RULES_FILE, places_path: Path = PLACES_FILE) -> Rules:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise RulesError(f"{path}: file not found") from error
    except yaml.YAMLError as error:
        raise RulesError(f"{path.name}: not valid YAML: {error}") from error
    return parse_rules(data, load_places(places_path), path.name)


@lru_cache(maxsize=1)
def rules() -> Rules:
    return load_rules()


# --- sector words --------------------------------------------------------------------------


def find_sector(text: str, rules: Rules) -> tuple[str, str | None] | None:
    """(sector, kind key) named in the text: a kind ("garment") beats a generic word ("factory")."""
    norm = text.lower()

    def has(word: str) -> bool:
        word = word.lower()
        if word.isascii():
            return re.search(rf"(?<![a-z]){re.escape(word)}s?(?![a-z])", norm) is not None
        return word in norm

    for kind in rules.kinds.values():
        if any(has(w) for w in kind.words):
            return kind.sector, kind.key
    for sector, words in rules.generic.items():
        if any(has(w) for w in words):
            return sector, None
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the eligibility rules and places files.")
    parser.add_argument("--check", action="store_true", help="validate and print a summary")
    parser.add_argument("rules_file", nargs="?", type=Path, default=RULES_FILE)
    parser.add_argument("--places", type=Path, default=PLACES_FILE)
    args = parser.parse_args(argv)
    try:
        loaded = load_rules(args.rules_file, args.places)
    except (RulesError, PlacesError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for band in loaded.bands.values():
        print(f"ok: {band.region}: {band.min}–{band.max} employees [{', '.join(band.sources)}]")
    print(f"ok: margin {loaded.margin_percent:g}%, {len(loaded.offered)} countries, {len(loaded.kinds)} sector kinds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
