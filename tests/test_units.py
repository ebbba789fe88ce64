"""Counts in human units (:mod:`mbnas.units`): every budget form the README names."""

import pytest

from mbnas.errors import MbnasError
from mbnas.search.settings import SearchSettings
from mbnas.units import format_count, parse_count


@pytest.mark.parametrize(("text", "value"), [
    ("300M", 300_000_000), ("0.3G", 300_000_000), ("1.5G", 1_500_000_000),
    ("300000000", 300_000_000), ("300e6", 300_000_000), ("150m", 150_000_000),
    ("6M", 6_000_000), ("1K", 1_000),
])
def test_budget_forms(text, value):
    assert parse_count(text) == value


def test_equal_budgets_name_the_same_run():
    names = {SearchSettings(budget=parse_count(t)).run_name for t in ("300M", "0.3G", "300e6")}
    assert names == {"search-300M"}
    assert SearchSettings(budget=parse_count("1.5G")).run_name == "search-1500M"


@pytest.mark.parametrize("text", ["300X", "", "-5M", "0", "nan", "inf", "M", "1e-9"])
def test_bad_budgets(text):
    with pytest.raises(MbnasError, match="write e.g. 300M, 0.3G, 1.5G, 300000000 or 300e6"):
        parse_count(text)


def test_format_count():
    assert [format_count(n) for n in (300_774_272, 1_500_000_000, 18_020, 7)] == \
        ["300.8M", "1.5G", "18.0K", "7"]
