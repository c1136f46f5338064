"""Cleaning rules -> (kept lines, Ledger): every input row is kept or dropped for one named reason.

The rules run in DuckDB over the canonical ``tx`` view made by :mod:`segwork.io`, in one pass,
so a 50M-row file is classified and aggregated without being loaded into pandas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import duckdb

from segwork.schema import CleanRules

#: Drop reasons in the order they are tested: the first that matches is the row's reason.
REASONS: tuple[str, ...] = (
    "missing_date",
    "missing_amount",
    "missing_customer",
    "cancellation",
    "non_product_code",
    "non_positive_quantity",
    "non_positive_price",
    "after_as_of",
    "duplicate",
)

REASON_LABELS: dict[str, dict[str, str]] = {
    "missing_date": {"en": "Missing invoice date", "ko": "주문일 없음"},
    "missing_amount": {"en": "Missing quantity or price", "ko": "수량·단가 없음"},
    "missing_customer": {"en": "Missing customer ID", "ko": "고객번호 없음"},
    "cancellation": {"en": "Cancellation or return", "ko": "취소·반품"},
    "non_product_code": {
        "en": "Non-product code (postage, fees...)",
        "ko": "상품 아닌 코드(배송비·수수료 등)",
    },
    "non_positive_quantity": {"en": "Quantity <= 0", "ko": "수량 0 이하"},
    "non_positive_price": {"en": "Price <= 0", "ko": "단가 0 이하"},
    "after_as_of": {"en": "After the as-of date", "ko": "기준일 이후"},
    "duplicate": {"en": "Exact duplicate line", "ko": "완전 중복 행"},
}

_CENT = 0.005


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class Ledger:
    """Rows and revenue in, kept, and dropped per reason; :meth:`check` proves they reconcile."""

    rows_in: int
    revenue_in: float
    rows_kept: int = 0
    revenue_kept: float = 0.0
    customers_kept: int = 0
    dropped_rows: dict[str, int] = field(default_factory=dict)
    dropped_revenue: dict[str, float] = field(default_factory=dict)

    def check(self) -> None:
        """Kept + dropped == read, for rows exactly and for revenue to the cent."""
        rows = self.rows_kept + sum(self.dropped_rows.values())
        if rows != self.rows_in:
            raise AssertionError(
                f"ledger does not reconcile: {rows} rows accounted, {self.rows_in} read"
            )
        revenue = self.revenue_kept + sum(self.dropped_revenue.values())
        if abs(revenue - self.revenue_in) > max(_CENT, 1e-12 * abs(self.revenue_in)):
            raise AssertionError(
                f"ledger revenue does not reconcile: {revenue:.2f} accounted, {self.revenue_in:.2f} read"
            )

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form for summary.json: counts, revenue, and drops by reason in rule order."""
        return {
            "rows_in": self.rows_in,
            "rows_kept": self.rows_kept,
            "revenue_in": round(self.revenue_in, 2),
            "revenue_kept": round(self.revenue_kept, 2),
            "customers_kept": self.customers_kept,
            "dropped": {
                r: {"rows": self.dropped_rows[r], "revenue": round(self.dropped_revenue[r], 2)}
                for r in REASONS
                if self.dropped_rows.get(r)
            },
        }


def reason_code(reason: str) -> int:
    """Small-integer code of a reason (1-based position in REASONS): cheap to group on."""
    return REASONS.index(reason) + 1


def reason_name(code: int | None) -> str | None:
    """The reason named by a code from the ``reason`` column; None means kept."""
    return None if code is None else REASONS[int(code) - 1]


def reason_case(rules: CleanRules, as_of: date | None) -> str:
    """SQL CASE giving each line its drop reason code (NULL = kept), tested in REASONS order."""
    tests: list[tuple[str, str]] = [
        ("invoice_date IS NULL", "missing_date"),
        ("amount IS NULL", "missing_amount"),
    ]
    if rules.drop_missing_customer:
        tests.append(("customer_id IS NULL", "missing_customer"))
    if rules.cancellations == "drop":
        tests.append(("is_cancel", "cancellation"))
    if rules.drop_non_product:
        codes = ", ".join(_sql_str(c) for c in rules.non_product_codes) or "NULL"
        prefixes = " OR ".join(
            f"starts_with(product_id, {_sql_str(p)})" for p in rules.non_product_prefixes
        )
        tests.append(
            (
                f"product_id IN ({codes})" + (f" OR {prefixes}" if prefixes else ""),
                "non_product_code",
            )
        )
    # Netted cancellations keep their negative quantity: exempt them from the quantity rule.
    if rules.drop_non_positive_quantity:
        tests.append(("quantity <= 0 AND NOT is_cancel", "non_positive_quantity"))
    if rules.drop_non_positive_price:
        tests.append(("unit_price <= 0", "non_positive_price"))
    if as_of is not None:
        tests.append((f"invoice_date >= DATE '{as_of.isoformat()}'", "after_as_of"))
    whens = " ".join(f"WHEN {cond} THEN {reason_code(name)}" for cond, name in tests)
    return f"CAST(CASE {whens} ELSE NULL END AS UTINYINT)"


def create_classified_view(
    con: duckdb.DuckDBPyConnection,
    rules: CleanRules,
    as_of: date | None,
    source: str = "tx",
    view: str = "tx_classified",
) -> None:
    """One row per distinct line with ``n_copies`` (exact duplicates folded) and its ``reason``.

    With the duplicate rule on, identical lines are grouped; the first copy gets the line's
    reason (or is kept) and the extra ``n_copies - 1`` count as ``duplicate`` when kept.
    """
    cols = "invoice_id, customer_id, invoice_date, quantity, unit_price, amount, product_id, product_name, country"
    if rules.drop_duplicates:
        lines = f"SELECT {cols}, count(*)::BIGINT AS n_copies FROM {source} GROUP BY ALL"
    else:
        lines = f"SELECT {cols}, 1::BIGINT AS n_copies FROM {source}"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW {view} AS
        WITH lines AS ({lines}),
        flagged AS (SELECT *, coalesce(starts_with(invoice_id, 'C'), false) AS is_cancel FROM lines)
        SELECT *, {reason_case(rules, as_of)} AS reason FROM flagged
        """
    )


def create_kept_view(
    con: duckdb.DuckDBPyConnection, source: str = "tx_classified", view: str = "tx_kept"
) -> None:
    """Kept lines, one per distinct line, for profiles and charts after the ledger is made."""
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {source} WHERE reason IS NULL"
    )


def aggregate_by_customer(
    con: duckdb.DuckDBPyConnection,
    source: str = "tx_classified",
    table: str = "cust_reason",
    folded: bool = True,
) -> None:
    """The single pass over the data: per (reason, customer) rows, revenue and purchase facts.

    Both the ledger (summed over customers) and the RFM table (the kept rows) come from this
    small table, so the file is scanned once. Orders are grouped first, so frequency is a plain
    count rather than a costlier COUNT(DISTINCT). ``folded=False`` says every line has
    ``n_copies = 1`` (duplicate rule off), which lets the scan skip the weighting.
    """
    if folded:
        rows, rev_all = "sum(n_copies)", "sum(amount * n_copies)"
    else:
        rows, rev_all = "count(*)", "sum(amount)"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        WITH orders AS (
            SELECT reason, customer_id, invoice_id,
                   any_value(is_cancel) AS is_cancel,
                   {rows} AS n_rows,
                   {rev_all} AS revenue_all,
                   sum(amount) AS revenue,
                   count(*) AS n_lines,
                   min(invoice_date) AS first_ts,
                   max(invoice_date) AS last_ts,
                   any_value(country) AS country
            FROM {source}
            GROUP BY reason, customer_id, invoice_id
        )
        SELECT reason, customer_id,
               sum(n_rows)::BIGINT AS n_rows,
               sum(n_lines)::BIGINT AS n_lines,
               sum(revenue_all) AS revenue_all,
               sum(revenue) AS revenue,
               count(*) FILTER (WHERE NOT is_cancel) AS frequency,
               min(first_ts) FILTER (WHERE NOT is_cancel) AS first_purchase,
               max(last_ts) FILTER (WHERE NOT is_cancel) AS last_purchase,
               arg_max(country, last_ts) AS country
        FROM orders
        GROUP BY reason, customer_id
        """
    )


def ledger_from_aggregate(con: duckdb.DuckDBPyConnection, table: str = "cust_reason") -> Ledger:
    """Sum the per-customer aggregate into the ledger and check that it reconciles."""
    rows = con.execute(
        f"""
        SELECT reason, sum(n_rows)::BIGINT, sum(n_lines)::BIGINT, sum(revenue_all), sum(revenue),
               count(DISTINCT customer_id) FILTER (WHERE frequency > 0)
        FROM {table} GROUP BY reason
        """
    ).fetchall()
    ledger = Ledger(rows_in=0, revenue_in=0.0)
    for code, n_rows, n_lines, rev_all, rev, customers in rows:
        reason = reason_name(code)
        ledger.rows_in += int(n_rows)
        ledger.revenue_in += float(rev_all or 0.0)
        if reason is None:
            ledger.rows_kept = int(n_lines)
            ledger.revenue_kept = float(rev or 0.0)
            ledger.customers_kept = int(customers)
            extra = int(n_rows) - int(n_lines)
            if extra:
                ledger.dropped_rows["duplicate"] = extra
                ledger.dropped_revenue["duplicate"] = float(rev_all or 0.0) - float(rev or 0.0)
        else:
            ledger.dropped_rows[reason] = ledger.dropped_rows.get(reason, 0) + int(n_rows)
            ledger.dropped_revenue[reason] = ledger.dropped_revenue.get(reason, 0.0) + float(
                rev_all or 0.0
            )
    ledger.check()
    return ledger
