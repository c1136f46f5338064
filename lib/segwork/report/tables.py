"""Numbers and tables for people: thousands separators, currency, %, dates; no index, no NaN.

Every table a report page shows is a :class:`Table`: the values (columns keyed by id), how
each column is written (its kind), and the reader's language for the headers. It renders as an
HTML table (text left, numbers right, scrolling inside its own box on a phone) and as plain
text for nbval.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd

from segwork.currency import Currency
from segwork.text import catalogue

DASH = "–"
#: Column ids written as money when no kind is given.
MONEY = {
    "revenue", "monetary", "median_monetary", "revenue_in", "revenue_kept", "avg_order_value",
    "revenue_per_customer", "expected_revenue", "mean_monetary",
}  # fmt: skip
#: Column ids written as a share (values are fractions: 0.25 -> 25.0%).
SHARES = {"customer_share", "revenue_share", "row_share", "noise_share", "repeat_rate", "share"}
NUMERIC_KINDS = {"int", "num", "money", "share", "score", "days", "signed_int", "signed_money"}


def is_missing(value: Any) -> bool:
    """None, NaN and NaT are missing: shown as a dash, never 'NaN'."""
    if value is None or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def fmt_int(value: Any, signed: bool = False) -> str:
    """1234 -> '1,234'; signed: '+1,234' / '−1,234' (a real minus sign)."""
    if is_missing(value):
        return DASH
    n = int(round(float(value)))
    text = f"{abs(n):,}"
    if n < 0:
        return "−" + text
    return ("+" + text) if signed and n > 0 else text


def fmt_num(value: Any, decimals: int = 1) -> str:
    """A plain number with separators and a fixed number of decimals; never scientific."""
    if is_missing(value):
        return DASH
    v = float(value)
    text = f"{abs(v):,.{decimals}f}"
    return ("−" + text) if v < 0 and text.strip("0.,") else text


def fmt_money(value: Any, cur: Currency | None, signed: bool = False, whole: bool = False) -> str:
    """'£1,234.50', '₩12,900', '−£57.40'; without a currency '1,234.50'. ``whole`` drops decimals."""
    if is_missing(value):
        return DASH
    v = float(value)
    decimals = 0 if whole else (cur.decimals if cur else 2)
    body = f"{abs(v):,.{decimals}f}"
    symbol = cur.symbol if cur else ""
    zero = not body.strip("0.,")
    sign = "−" if v < 0 and not zero else ("+" if signed and v > 0 and not zero else "")
    return f"{sign}{symbol}{body}"


def fmt_share(value: Any, decimals: int = 1) -> str:
    """A fraction as a percentage: 0.253 -> '25.3%'."""
    if is_missing(value):
        return DASH
    return f"{100 * float(value):.{decimals}f}%"


def fmt_date(value: Any) -> str:
    """A date or timestamp as YYYY-MM-DD."""
    if is_missing(value):
        return DASH
    if isinstance(value, datetime | pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def fmt_value(value: Any, kind: str, cur: Currency | None, lang: str) -> str:
    """One cell as text by its kind."""
    if is_missing(value):
        return DASH
    if kind == "int":
        return fmt_int(value)
    if kind == "signed_int":
        return fmt_int(value, signed=True)
    if kind == "money":
        return fmt_money(value, cur)
    if kind == "signed_money":
        return fmt_money(value, cur, signed=True)
    if kind == "share":
        return fmt_share(value)
    if kind == "score":
        return fmt_num(value, 2)
    if kind == "days":
        return fmt_num(value, 0)
    if kind == "num":
        return fmt_num(value, 1)
    if kind == "date":
        return fmt_date(value)
    if kind == "bool" or isinstance(value, bool):
        return catalogue(lang)("tables.yes_value" if value else "tables.no_value")
    return str(value)


def infer_kind(column: str, series: pd.Series) -> str:
    """How a column is written when the view gives no kind: by its id, then by its dtype."""
    if column in MONEY:
        return "money"
    if column in SHARES or column.endswith("_share"):
        return "share"
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        whole = series.dropna()
        return "int" if len(whole) and (whole == whole.round()).all() else "num"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "date"
    return "text"


#: A column's kind: a name (see :func:`fmt_value`), or (kind of the first and last row, kind
#: of the rows between) for running totals such as the ledger: read, changes, kept.
Kind = str | tuple[str, str]


@dataclass
class Table:
    """A reader's table: values keyed by column id, a kind per column, headers in ``lang``."""

    frame: pd.DataFrame
    lang: str
    kinds: Mapping[str, Kind] = field(default_factory=dict)
    currency: Currency | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # id -> header, over the catalogue
    table_id: str | None = None

    def kind(self, column: str) -> Kind:
        """The kind of one column (given, else inferred)."""
        return self.kinds.get(column) or infer_kind(column, self.frame[column])

    def _cell(self, value: Any, kind: Kind, row: int) -> str:
        """One cell; a (ends, middle) kind picks by the row's position."""
        if isinstance(kind, tuple):
            kind = kind[0] if row in (0, len(self.frame) - 1) else kind[1]
        return fmt_value(value, kind, self.currency, self.lang)

    def numeric(self, column: str) -> bool:
        """True when the column holds numbers (right-aligned)."""
        kind = self.kind(column)
        return (kind[0] if isinstance(kind, tuple) else kind) in NUMERIC_KINDS

    def header(self, column: Any) -> str:
        """A column's header in the reader's language."""
        c = str(column)
        return self.headers.get(c) or catalogue(self.lang)["columns"].get(c, c)

    @property
    def data(self) -> pd.DataFrame:
        """The values with headers in the reader's language (what tests and analysts index)."""
        return self.frame.rename(columns=self.header)

    def cells(self) -> list[list[str]]:
        """Every body cell as text."""
        kinds = [self.kind(c) for c in self.frame.columns]
        return [
            [self._cell(v, k, i) for v, k in zip(row, kinds, strict=True)]
            for i, row in enumerate(self.frame.itertuples(index=False, name=None))
        ]

    def __len__(self) -> int:
        """Rows in the table."""
        return len(self.frame)

    @property
    def empty(self) -> bool:
        """True when the table has no rows."""
        return self.frame.empty

    def _repr_html_(self) -> str:
        """HTML: text left, numbers right, inside a box that scrolls sideways on a phone."""
        if self.frame.empty:
            return (
                f"<p class='segwork-empty'>{html.escape(catalogue(self.lang)('tables.empty'))}</p>"
            )
        e = html.escape
        numeric = [self.numeric(c) for c in self.frame.columns]
        align = ["num" if n else "txt" for n in numeric]
        head = "".join(
            f"<th class='{a}'>{e(self.header(c))}</th>"
            for c, a in zip(self.frame.columns, align, strict=True)
        )
        body = "".join(
            "<tr>"
            + "".join(f"<td class='{a}'>{e(v)}</td>" for v, a in zip(row, align, strict=True))
            + "</tr>"
            for row in self.cells()
        )
        tid = f" id='{e(self.table_id)}'" if self.table_id else ""
        return (
            "<div class='segwork-scroll' style='overflow-x:auto;max-width:100%'>"
            f"<table class='segwork-table'{tid}><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></div>"
        )

    def __repr__(self) -> str:
        """Plain text, one line per row, columns separated by ' | ' (what nbval compares)."""
        if self.frame.empty:
            return catalogue(self.lang)("tables.empty")
        lines = [" | ".join(self.header(c) for c in self.frame.columns)]
        lines += [" | ".join(row) for row in self.cells()]
        return "\n".join(lines)


@dataclass
class Lines:
    """Sentences shown as a bulleted list (plain lines for nbval)."""

    lines: list[str]

    def _repr_html_(self) -> str:
        """An HTML list, every sentence escaped."""
        return "<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in self.lines) + "</ul>"

    def __repr__(self) -> str:
        """One sentence per line."""
        return "\n".join(self.lines)


#: CSS for report tables and cards: shared by the notebook pages and index.html.
TABLE_CSS = """
table.segwork-table { border-collapse: collapse; margin: 6px 0 14px; font-size: 14px; }
table.segwork-table th, table.segwork-table td { border-bottom: 1px solid #ddd; padding: 4px 10px;
  white-space: nowrap; }
table.segwork-table th { background: #f4f6f9; font-weight: 600; }
table.segwork-table .num { text-align: right; font-variant-numeric: tabular-nums; }
table.segwork-table .txt { text-align: left; }
"""
