"""Money is written in the data's currency: from the config, else the main country, else plain."""

from __future__ import annotations

import pytest

from segwork.currency import currency, resolve
from segwork.errors import SegworkInputError
from segwork.report.tables import fmt_money
from segwork.schema import config_from_dict


def test_the_main_country_sets_the_currency_only_when_it_dominates():
    assert resolve("auto", "United Kingdom", 0.82) == "GBP"
    assert resolve("auto", "대한민국", 0.99) == "KRW"
    assert resolve("auto", "EIRE", 0.7) == "EUR"
    assert resolve("auto", "United Kingdom", 0.4) is None  # no country holds most revenue
    assert resolve("auto", "Atlantis", 0.9) is None  # unknown country: plain numbers
    assert resolve("auto", None, 0.0) is None
    assert resolve("krw", "United Kingdom", 0.9) == "KRW"  # the config wins
    assert resolve("none", "United Kingdom", 0.9) is None


def test_amounts_are_written_like_people_write_them():
    assert fmt_money(1234.5, currency("GBP")) == "£1,234.50"
    assert fmt_money(12900.4, currency("KRW")) == "₩12,900"  # no decimals for won
    assert fmt_money(-57.4, currency("GBP")) == "−£57.40"
    assert fmt_money(57.4, currency("GBP"), signed=True) == "+£57.40"
    assert fmt_money(1e9, None) == "1,000,000,000.00"  # never scientific
    assert fmt_money(float("nan"), currency("GBP")) == "–"


def test_an_unknown_currency_in_the_config_is_one_line():
    assert config_from_dict({"report": {"currency": "GBP"}}).report.currency == "GBP"
    with pytest.raises(SegworkInputError, match=r"report.currency 'pounds' is not known"):
        config_from_dict({"report": {"currency": "pounds"}}, source="shop.yaml")
