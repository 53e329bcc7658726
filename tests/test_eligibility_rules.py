"""The eligibility rules: every band edge, ranges, unknowns, and the rules file's validation."""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from actions.eligibility_rules import (
    RULES_FILE,
    Facts,
    RulesError,
    evaluate,
    find_sector,
    load_rules,
    parse_rules,
    rules,
)
from i18n import keys
from store.places import load_places, places

ROOT = Path(__file__).resolve().parent.parent


def facts(low: int | None, high: int | None = None, country: str | None = "india", **kw: Any) -> Facts:
    base: dict[str, Any] = dict(sector="manufacturing", sector_kind="garments", can_commit=True, supplies_brands=True)
    base.update(kw)
    return Facts(employees_low=low, employees_high=low if high is None else high, country=country, **base)


# (employees, country, outcome). Default band 50–250 [ILO-IN][PHASE3], China 50–500 [ILO-CN2],
# Indonesia 30–250, Peru 25–250 [PHASE3]; margin 10 %: 45–49 / 251–275 borderline by default.
BAND_EDGES = [
    (44, "india", "not_eligible"),
    (45, "india", "borderline"),
    (49, "india", "borderline"),
    (50, "india", "eligible"),
    (250, "india", "eligible"),
    (251, "india", "borderline"),
    (275, "india", "borderline"),
    (276, "india", "not_eligible"),
    (500, "india", "not_eligible"),
    (49, "china", "borderline"),
    (50, "china", "eligible"),
    (250, "china", "eligible"),
    (251, "china", "eligible"),
    (500, "china", "eligible"),
    (501, "china", "borderline"),
    (550, "china", "borderline"),
    (551, "china", "not_eligible"),
    (4000, "china", "not_eligible"),
    (30, "indonesia", "eligible"),
    (29, "indonesia", "borderline"),
    (251, "indonesia", "borderline"),
    (25, "peru", "eligible"),
    (24, "peru", "borderline"),
    (10, "peru", "not_eligible"),
    (180, "viet_nam", "eligible"),
]


@pytest.mark.parametrize(("employees", "country", "outcome"), BAND_EDGES)
def test_band_edges(employees: int, country: str, outcome: str) -> None:
    assert evaluate(facts(employees, country=country), rules()).outcome == outcome


@pytest.mark.parametrize(
    ("low", "high", "country", "outcome", "code"),
    [
        (100, 200, "india", "eligible", "size_in_band"),
        (50, 250, "india", "eligible", "size_in_band"),
        (200, 300, "india", "borderline", "size_range_partly_outside"),
        (40, 60, "india", "borderline", "size_range_partly_outside"),
        (300, 400, "india", "not_eligible", "size_too_large"),
        (10, 30, "india", "not_eligible", "size_too_small"),
        (10, 5000, "india", "borderline", "size_range_partly_outside"),
        (200, 300, "china", "eligible", "size_in_band"),
        (400, 600, "china", "borderline", "size_range_partly_outside"),
    ],
)
def test_ranges_judge_both_ends(low: int, high: int, country: str, outcome: str, code: str) -> None:
    decision = evaluate(facts(low, high, country=country), rules())
    assert decision.outcome == outcome
    assert code in decision.codes


def test_the_band_follows_the_country() -> None:
    assert (rules().band_for("china").min, rules().band_for("china").max) == (50, 500)
    assert rules().band_for("china").sources == ("ILO-CN2",)
    assert (rules().band_for("india").min, rules().band_for("india").max) == (50, 250)
    assert rules().band_for("india").sources == ("ILO-IN", "PHASE3")
    assert (rules().band_for(None).min, rules().band_for(None).max) == (50, 250)


@pytest.mark.parametrize(
    ("kw", "outcome", "code"),
    [
        (dict(country=None), "borderline", "country_unknown"),
        (dict(country="bangladesh"), "borderline", "country_not_offered"),
        (dict(sector="other", sector_kind="mining"), "borderline", "sector_unknown"),
        (dict(sector=None, sector_kind=None), "borderline", "sector_unknown"),
        (dict(sector="services", sector_kind="hotels"), "eligible", "sector_ok"),
        (dict(can_commit=False), "not_eligible", "commit_no"),
        (dict(can_commit=None), "borderline", "commit_unknown"),
        (dict(supplies_brands=False), "eligible", "size_in_band"),  # buyers are not a condition
    ],
)
def test_other_factors(kw: dict[str, Any], outcome: str, code: str) -> None:
    decision = evaluate(facts(180, **kw), rules())
    assert decision.outcome == outcome
    assert code in decision.codes


def test_unknown_size_is_borderline() -> None:
    decision = evaluate(facts(None, None), rules())
    assert decision.outcome == "borderline" and "size_unknown" in decision.codes


def test_worst_factor_wins() -> None:
    # Too large beats borderline country.
    assert evaluate(facts(4000, country=None), rules()).outcome == "not_eligible"


def test_every_reason_has_a_text_in_both_languages() -> None:
    codes = {
        "size_in_band", "size_too_small", "size_too_large", "size_just_below", "size_just_above",
        "size_range_partly_outside", "size_unknown", "country_unknown", "country_not_offered",
        "sector_ok", "sector_unknown", "commit_yes", "commit_no", "commit_unknown", "brands_yes",
    }
    produced: set[str] = set()
    for low, high, country, kw in [
        (180, 180, "china", {}), (10, 10, "india", {}), (4000, 4000, "india", {}), (48, 48, "india", {}),
        (260, 260, "india", {}), (200, 300, "india", {}), (None, None, None, {"can_commit": None}),
        (180, 180, "bangladesh", {"sector": "other", "can_commit": False}),
    ]:
        produced |= set(evaluate(facts(low, high, country=country, **kw), rules()).codes)
    assert produced == codes
    assert {f"elig_reason_{c}" for c in codes} <= set(keys())


@pytest.mark.parametrize(
    ("text", "sector", "kind"),
    [
        ("garment factory", "manufacturing", "garments"),
        ("我们是服装厂", "manufacturing", "garments"),
        ("auto parts", "manufacturing", "auto_parts"),
        ("we are a hotel", "services", "hotels"),
        ("a factory", "manufacturing", None),
        ("服务业", "services", None),
        ("coal mining", "other", "mining"),
        ("小作坊", "manufacturing", None),
        ("a paper mill", "manufacturing", None),
    ],
)
def test_sector_words(text: str, sector: str, kind: str | None) -> None:
    assert find_sector(text, rules()) == (sector, kind)


def test_places_map_city_to_province_to_country() -> None:
    place = places().find("我们在东莞", answer=False)
    assert place is not None and (place.city, place.province, place.country) == ("dongguan", "guangdong", "china")
    assert places().find("Dalian", answer=True).province == "liaoning"
    assert places().find("印度尼西亚", answer=True).country == "indonesia"  # not India
    assert places().find("we sell to Germany and India", answer=False) is None  # a market, not a place
    assert places().find("we are in Vietnam", answer=False).country == "viet_nam"
    # A country named as where the company is, after the name too.
    assert places().find("Ghana-based garment maker", answer=False).country == "ghana"
    assert places().find("a Peru company with 40 staff", answer=False).country == "peru"
    assert places().find("秘鲁的工厂", answer=False).country == "peru"


# --- the rules file --------------------------------------------------------------------------


def shipped() -> dict[str, Any]:
    return yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))


def test_the_shipped_rules_are_valid() -> None:
    loaded = load_rules()
    assert set(loaded.bands) == {"default", "china", "indonesia", "peru"}


def mutate(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(shipped())
    node = data
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return data


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("bands.china.max", 40, "bands.china: min (50) is greater than max (40)"),
        ("bands.china.min", "fifty", "bands.china.min: must be a whole number"),
        ("bands.default", DELETE, "without a 'default' band"),
        ("bands.atlantis", {"min": 1, "max": 2, "sources": ["ILO-IN"]}, "bands.atlantis: unknown country 'atlantis'"),
        ("bands.peru.sources", ["ILO-XX"], "bands.peru.sources: unknown source tag 'ILO-XX'"),
        ("bands.peru.sources", [], "bands.peru.sources: give at least one source tag"),
        ("margin_percent", 250, "margin_percent: must be a number from 0 to 100"),
        ("countries.offered", ["china", "narnia"], "countries.offered: unknown country 'narnia'"),
        ("sectors.eligible", ["manufacturing", "mining"], "sectors.eligible"),
        ("sectors.kinds.garments.sector", "fashion", "sectors.kinds.garments.sector"),
        ("commitment.if_no", "maybe", "commitment.if_no"),
        ("version", 2, "version: expected 1"),
    ],
)
def test_a_bad_rules_file_names_the_problem(path: str, value: Any, message: str) -> None:
    with pytest.raises(RulesError) as error:
        parse_rules(mutate(path, value), load_places())
    assert message in str(error.value)


def test_the_check_command(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "actions.eligibility_rules", "--check"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "china: 50–500" in ok.stdout

    bad = tmp_path / "rules.yml"
    bad.write_text(yaml.safe_dump(mutate("bands.china.max", 40), allow_unicode=True), encoding="utf-8")
    failed = subprocess.run(
        [sys.executable, "-m", "actions.eligibility_rules", "--check", str(bad)],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert failed.returncode == 1
    assert "bands.china: min (50) is greater than max (40)" in failed.stderr

    broken = tmp_path / "broken.yml"
    broken.write_text("bands: [unclosed", encoding="utf-8")
    failed = subprocess.run(
        [sys.executable, "-m", "actions.eligibility_rules", "--check", str(broken)],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert failed.returncode == 1 and "not valid YAML" in failed.stderr
