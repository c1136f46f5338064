"""Which currency a report shows money in: ``report.currency`` in the config, else the data's country.

A currency is a code (ISO 4217), a symbol and its decimals (KRW and JPY have none). The summary
keeps the code only; the report formats with :func:`currency`.
"""

from __future__ import annotations

from dataclasses import dataclass

from segwork.errors import SegworkInputError


@dataclass(frozen=True)
class Currency:
    """How an amount is written: ``£1,234.50``, ``₩12,900``."""

    code: str
    symbol: str
    decimals: int


CURRENCIES = {
    c.code: c
    for c in (
        Currency("GBP", "£", 2),
        Currency("EUR", "€", 2),
        Currency("USD", "$", 2),
        Currency("KRW", "₩", 0),
        Currency("JPY", "¥", 0),
        Currency("CNY", "CN¥", 2),
        Currency("AUD", "A$", 2),
        Currency("CAD", "CA$", 2),
        Currency("CHF", "CHF ", 2),
        Currency("SEK", "SEK ", 2),
        Currency("NOK", "NOK ", 2),
        Currency("DKK", "DKK ", 2),
        Currency("SGD", "S$", 2),
        Currency("HKD", "HK$", 2),
        Currency("INR", "₹", 2),
    )
}
_EURO = [
    "Austria",
    "Belgium",
    "Cyprus",
    "Estonia",
    "Finland",
    "France",
    "Germany",
    "Greece",
    "Ireland",
    "EIRE",
    "Italy",
    "Latvia",
    "Lithuania",
    "Luxembourg",
    "Malta",
    "Netherlands",
    "Portugal",
    "Slovakia",
    "Slovenia",
    "Spain",
    "Croatia",
]
#: Country name (as exports write it, English or Korean) -> currency code.
COUNTRY_CURRENCY: dict[str, str] = {
    **{c.lower(): "EUR" for c in _EURO},
    "united kingdom": "GBP", "uk": "GBP", "england": "GBP", "scotland": "GBP", "영국": "GBP",
    "korea": "KRW", "south korea": "KRW", "republic of korea": "KRW", "korea, republic of": "KRW",
    "대한민국": "KRW", "한국": "KRW", "kr": "KRW",
    "united states": "USD", "usa": "USD", "us": "USD", "미국": "USD",
    "japan": "JPY", "일본": "JPY", "china": "CNY", "중국": "CNY",
    "australia": "AUD", "canada": "CAD", "switzerland": "CHF", "sweden": "SEK", "norway": "NOK",
    "denmark": "DKK", "singapore": "SGD", "hong kong": "HKD", "india": "INR",
    "germany": "EUR", "france": "EUR", "독일": "EUR", "프랑스": "EUR",
}  # fmt: skip
#: The top country must hold at least this share of kept revenue to set the currency.
DOMINANT_SHARE = 0.5


def currency(code: str | None) -> Currency | None:
    """The currency of a code (None: amounts shown as plain numbers)."""
    return CURRENCIES.get(code) if code else None


def check_option(value: str) -> None:
    """``report.currency`` is auto, none or a known code; anything else is one line, exit 2."""
    if value in ("auto", "none") or value.upper() in CURRENCIES:
        return
    known = ", ".join(sorted(CURRENCIES))
    raise SegworkInputError(
        f"config: report.currency '{value}' is not known; use auto, none or one of {known}"
    )


def resolve(option: str, top_country: str | None, top_share: float) -> str | None:
    """The currency code a run reports in: the option, else the dominant country's, else None."""
    check_option(option)
    if option == "none":
        return None
    if option != "auto":
        return option.upper()
    if top_country is None or top_share < DOMINANT_SHARE:
        return None
    return COUNTRY_CURRENCY.get(top_country.strip().lower())
