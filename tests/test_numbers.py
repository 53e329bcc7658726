"""The head-count parser: numbers as people write them, in English and Chinese."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from actions.numbers import Count, find_correction, find_headcount, parse_count


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("180", 180, 180),
        ("1,200", 1200, 1200),
        ("about 200", 200, 200),
        ("around 150 people", 150, 150),
        ("200-300", 200, 300),
        ("200 - 300 workers", 200, 300),
        ("200–300", 200, 300),
        ("200 to 300", 200, 300),
        ("200~300", 200, 300),
        ("between 200 and 300", 200, 300),
        ("two hundred", 200, 200),
        ("a hundred and fifty", 150, 150),
        ("twelve hundred", 1200, 1200),
        ("one thousand two hundred", 1200, 1200),
        ("twenty-five", 25, 25),
        ("1.2k", 1200, 1200),
        ("3k employees", 3000, 3000),
        ("150人", 150, 150),
        ("150多人", 150, 150),
        ("我们有150名员工", 150, 150),
        ("两百", 200, 200),
        ("约一千二百人", 1200, 1200),
        ("一千二", 1200, 1200),
        ("三百五", 350, 350),
        ("一百五十", 150, 150),
        ("十五", 15, 15),
        ("两百到三百人", 200, 300),
        ("1.2万", 12000, 12000),
        ("3千人", 3000, 3000),
        ("１８０人", 180, 180),  # full-width digits
        ("4,000", 4000, 4000),
        ("2 sites, 300 workers", 300, 300),  # the number tied to people wins
    ],
)
def test_parse_count_formats(text: str, low: int, high: int) -> None:
    count = parse_count(text)
    assert count is not None, text
    assert (count.low, count.high) == (low, high)


@pytest.mark.parametrize("text", ["about 200", "约一千二百人", "150多人", "大概三百", "roughly 90", "300左右"])
def test_approximate_is_marked(text: str) -> None:
    count = parse_count(text)
    assert count is not None and count.approximate


@pytest.mark.parametrize(
    "text",
    ["", "lots", "many people", "I don't know", "不知道", "很多人", "0", "none", "a lot", "???", "一家工厂"],
)
def test_garbage_is_not_a_number(text: str) -> None:
    assert parse_count(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sorry, 300 not 200", 300),
        ("not 200 but 300", 300),
        ("不是200，是300", 300),
        ("不是两百，是三百人", 300),
    ],
)
def test_parse_count_skips_the_negated_number(text: str, expected: int) -> None:
    assert parse_count(text) == Count(expected, expected, approximate=parse_count(text).approximate)


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("We are a garment factory in Dongguan with about 180 workers, supplying European brands", 180, 180),
        ("我们是东莞的一家服装厂，有150名员工", 150, 150),
        ("we employ 1,200 people", 1200, 1200),
        ("our headcount is about 90", 90, 90),
        ("200-300 employees in Chengdu", 200, 300),
        ("员工有两百人左右", 200, 200),
        # People words as typed on a phone, and colloquial Chinese counts.
        ("we have maybe 250 ppl on two shifts", 250, 250),
        ("a team of 60 folks", 60, 60),
        ("厂里一千五左右的员工", 1500, 1500),
        ("三百来号人", 300, 300),
        ("八十上下的工人", 80, 80),
    ],
)
def test_find_headcount_in_a_longer_message(text: str, low: int, high: int) -> None:
    count = find_headcount(text)
    assert count is not None and (count.low, count.high) == (low, high)


@pytest.mark.parametrize(
    "text",
    [
        "we want to start with Module 1",
        "we have been open since 2009",
        "yes, we can send two managers and two workers",
        "我们能派2名经理和2名工人",
        "we supply 3 European brands",
    ],
)
def test_find_headcount_ignores_other_numbers(text: str) -> None:
    assert find_headcount(text) is None


def test_corrections() -> None:
    current = Count(200, 200)
    assert find_correction("sorry, 300 not 200", current) == Count(300, 300)
    assert find_correction("不是200，是300", current) == Count(300, 300)
    assert find_correction("I meant 250", current) == Count(250, 250)
    assert find_correction("sorry, we have 320 workers", current) == Count(320, 320)
    # Not corrections of the head count:
    assert find_correction("not sure, maybe 3 days", current) is None
    assert find_correction("garments", current) is None
    assert find_correction("sorry, 200", current) is None  # the same figure again


@given(st.integers(min_value=1, max_value=10_000_000))
def test_any_written_integer_parses_back(n: int) -> None:
    assert parse_count(str(n)) == Count(n, n)
    assert parse_count(f"{n:,}") == Count(n, n)
    assert parse_count(f"{n}人") == Count(n, n)


@given(st.integers(min_value=1, max_value=5000), st.integers(min_value=0, max_value=5000))
def test_any_written_range_parses_back(low: int, extra: int) -> None:
    high = low + extra
    count = parse_count(f"{low}-{high}")
    assert count is not None and (count.low, count.high) == (low, high)
