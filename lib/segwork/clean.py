"""Cleaning rules -> (kept lines, Ledger): every input row is kept or dropped for one named reason.

The rules run in DuckDB over the canonical ``tx`` view made by :mod:`segwork.read`, in one pass,
so a 50M-row file is classified and aggregated without being loaded into pandas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import duckdb

from segwork.errors import SegworkInputError
from segwork.schema import CleanRules
from segwork.store import BY_CUSTOMER, CLASSIFIED, KEPT, KEPT_ORDERS, MATCHED, ORDERS, TX

#: Drop reasons in the order they are tested: the first that matches is the row's reason.
REASONS: tuple[str, ...] = (
    "missing_date",
    "missing_amount",
    "missing_customer",
    "cancellation",
    "cancelled_purchase",
    "non_product_code",
    "non_positive_quantity",
    "non_positive_price",
    "after_as_of",
    "duplicate",
)

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


def reason_case(rules: CleanRules, as_of: date | None, matched: str | None = None) -> str:
    """SQL CASE giving each line its drop reason code (NULL = kept), tested in REASONS order.

    ``matched`` is a SQL boolean saying the line belongs to a matched cancellation pair
    (see :func:`create_matched_table`); None when matching is off.
    """
    tests: list[tuple[str, str]] = [
        ("invoice_date IS NULL", "missing_date"),
        ("amount IS NULL", "missing_amount"),
    ]
    if rules.drop_missing_customer:
        tests.append(("customer_id IS NULL", "missing_customer"))
    if rules.cancellations == "drop":
        tests.append(("is_cancel", "cancellation"))
    else:
        # net: only unmatched reversals (negative lines) stay, as refunds; a cancelled line
        # with a positive amount is the cancelled order line itself, never revenue.
        also = f" OR ({matched})" if matched else ""
        tests.append((f"is_cancel AND (NOT ({_REVERSAL}){also})", "cancellation"))
    if matched:
        tests.append((f"NOT is_cancel AND ({matched})", "cancelled_purchase"))
    if rules.drop_non_product:
        tests.append((_non_product_sql(rules), "non_product_code"))
    # Netted cancellations keep their negative quantity: exempt them from the quantity rule.
    if rules.drop_non_positive_quantity:
        tests.append(("quantity <= 0 AND NOT is_cancel", "non_positive_quantity"))
    if rules.drop_non_positive_price:
        tests.append(("unit_price <= 0", "non_positive_price"))
    if as_of is not None:
        tests.append((f"invoice_date >= DATE '{as_of.isoformat()}'", "after_as_of"))
    whens = " ".join(f"WHEN {cond} THEN {reason_code(name)}" for cond, name in tests)
    return f"CAST(CASE {whens} ELSE NULL END AS UTINYINT)"


#: A line that reverses a purchase (negative quantity or amount), as C-invoice lines do.
_REVERSAL = "quantity < 0 OR amount < 0"
_LINE_COLS = (
    "invoice_id, customer_id, invoice_date, quantity, unit_price, amount, "
    "product_id, product_name, country"
)


def _non_product_sql(rules: CleanRules) -> str:
    """SQL true for postage, fees and other codes that are not products."""
    codes = ", ".join(_sql_str(c) for c in rules.non_product_codes) or "NULL"
    prefixes = " OR ".join(
        f"starts_with(product_id, {_sql_str(p)})" for p in rules.non_product_prefixes
    )
    return f"product_id IN ({codes})" + (f" OR {prefixes}" if prefixes else "")


def _columns(con: duckdb.DuckDBPyConnection, source: str) -> set[str]:
    """Column names of a view or table."""
    return {str(r[0]) for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}


def _cancel_sql(rules: CleanRules, has_status: bool) -> str:
    """SQL true for a cancellation: invoice starting with C, or a status in cancel_status."""
    sql = "coalesce(starts_with(invoice_id, 'C'), false)"
    if rules.cancel_status and has_status:
        values = ", ".join(_sql_str(v.strip().lower()) for v in rules.cancel_status)
        sql += f" OR coalesce(lower(trim(status)) IN ({values}), false)"
    return f"({sql})"


def create_matched_table(
    con: duckdb.DuckDBPyConnection,
    rules: CleanRules,
    as_of: date | None,
    source: str = TX,
    table: str = MATCHED,
) -> None:
    """Pair each cancellation with the purchase it reverses: the row ids of every matched line.

    The rule: a cancellation line (C-invoice or cancel status) of -n units of product P by
    customer X (dated before the as-of date, when one is given) reverses the latest earlier
    purchase line of exactly n units of P by X (at the same timestamp or before) that no other
    cancellation reversed. Each line is matched at most once; a partial return (fewer units)
    matches nothing. Only purchase lines the other rules would keep can be matched, and only
    lines with a customer and a product.

    In each (customer, product, units) group, purchases (+1) and cancellations (-1) are
    walked in time order, purchases first on equal timestamps. The open purchases form a
    stack of size ``b`` (the running sum floored at zero); a cancellation is matched when the
    stack is not empty, and a purchase is matched (popped) when ``b`` later falls below its
    level. All in window functions over the few groups that hold a cancellation.
    """
    has_status = bool(rules.cancel_status) and "status" in _columns(con, source)
    cols = _LINE_COLS + (", status" if has_status else "")
    is_cancel = _cancel_sql(rules, has_status)
    base = reason_case(rules, as_of, matched=None)
    before = f" AND invoice_date < DATE '{as_of.isoformat()}'" if as_of is not None else ""
    cancel_ok = (
        f"is_cancel AND ({_REVERSAL}) AND customer_id IS NOT NULL AND product_id IS NOT NULL "
        f"AND invoice_date IS NOT NULL AND amount IS NOT NULL{before}"
    )
    keep_ok = (
        "NOT is_cancel AND base IS NULL AND customer_id IS NOT NULL AND product_id IS NOT NULL"
    )
    if rules.drop_duplicates:  # copies of a line are one event; all their rows are matched
        line_id, row_ids = "min(row_id)", "list(row_id)"
    else:
        line_id, row_ids = "row_id", "[row_id]"
    group = f"GROUP BY {cols}, is_cancel, base" if rules.drop_duplicates else ""
    order = "PARTITION BY customer_id, product_id, units ORDER BY ts, is_cancel, line_id"
    keys = f"{table}_keys"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {keys} AS
        SELECT DISTINCT customer_id, product_id, abs(quantity) AS units
        FROM (SELECT {cols}, {is_cancel} AS is_cancel FROM {source}) WHERE {cancel_ok}
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        WITH candidates AS (
            SELECT *, {base} AS base FROM (
                SELECT f.* FROM (SELECT row_id, {cols}, {is_cancel} AS is_cancel FROM {source}) f
                SEMI JOIN {keys} k
                  ON f.customer_id = k.customer_id AND f.product_id = k.product_id
                 AND abs(f.quantity) = k.units
            )
        ),
        events AS (
            SELECT {line_id} AS line_id, {row_ids} AS row_ids,
                   customer_id, product_id, abs(quantity) AS units,
                   invoice_date AS ts, is_cancel
            FROM candidates WHERE ({cancel_ok}) OR ({keep_ok})
            {group}
        ),
        walk AS (
            SELECT *, sum(CASE WHEN is_cancel THEN -1 ELSE 1 END)
                          OVER (w ROWS UNBOUNDED PRECEDING) AS s
            FROM events WINDOW w AS ({order})
        ),
        stack AS (
            SELECT *, s - least(0, min(s) OVER (w ROWS UNBOUNDED PRECEDING)) AS b
            FROM walk WINDOW w AS ({order})
        ),
        marked AS (
            SELECT row_ids, is_cancel,
                   CASE WHEN is_cancel THEN coalesce(lag(b) OVER w, 0) > 0
                        ELSE coalesce(min(b) OVER (w ROWS BETWEEN 1 FOLLOWING
                                                   AND UNBOUNDED FOLLOWING), b) < b
                   END AS matched
            FROM stack WINDOW w AS ({order})
        )
        SELECT unnest(row_ids) AS row_id, is_cancel FROM marked WHERE matched
        """
    )
    con.execute(f"DROP TABLE {keys}")


#: Text columns of a line: the check hash prefixes them, so it is independent of the key hash.
_TEXT_COLS = frozenset(
    {"invoice_id", "customer_id", "product_id", "product_name", "country", "status"}
)


def line_key_sql(cols: list[str]) -> str:
    """SQL: a 64-bit hash of a whole line, the key exact duplicates are folded on."""
    return f"hash({', '.join(cols)})"


def line_check_sql(cols: list[str]) -> str:
    """SQL: a second 64-bit hash of the line, computed from other bytes (text prefixed, columns
    reversed), so two distinct lines that share a key almost surely differ here."""
    parts = [f"'~' || {c}" if c in _TEXT_COLS else c for c in reversed(cols)]
    return f"hash({', '.join(parts)})"


def fixed_width_aggregates(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the connection's engine hash-aggregates only fixed-width buffers (Spark): text
    in ``any_value`` would make it sort every line, so the duplicate fold groups on every
    column (the country is a code on every engine, see :func:`create_country_codes`)."""
    return bool(getattr(con, "fixed_width_aggregates", False))


def country_codes(view: str) -> str:
    """Name of the table numbering the countries of the classified view ``view``."""
    return f"{view}_countries"


def view_tables(view: str) -> tuple[str, str, str]:
    """The tables :func:`create_classified_view` may make beside the view ``view``: its country
    codes, its matched cancellation pairs and its repeated line keys (for whoever drops it)."""
    return country_codes(view), f"{view}_matched", f"{view}_repeated"


def create_country_codes(con: duckdb.DuckDBPyConnection, source: str, table: str) -> None:
    """The distinct countries of ``source`` numbered 1.. in text order: a few rows, one per
    country, so a code stands for exactly one country (no hash that could merge two)."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        SELECT country, CAST(row_number() OVER (ORDER BY country) AS INTEGER) AS country_code
        FROM (SELECT DISTINCT country FROM {source} WHERE country IS NOT NULL)
        """
    )


def repeated_keys_sql(cols: list[str], source: str) -> str:
    """SQL: the line keys that occur more than once: the only lines a fold has to group."""
    return f"SELECT {line_key_sql(cols)} AS _key FROM {source} GROUP BY 1 HAVING count(*) > 1"


def fold_lines_sql(
    cols: list[str],
    source: str,
    exact: bool = False,
    repeated: str | None = None,
    fixed_width: bool = False,
) -> str:
    """SQL: the distinct lines of ``source`` with ``n_copies`` and ``fold_ok``.

    The fast path hashes each line to one 64-bit key. Lines whose key is not in ``repeated``
    (a table of :func:`repeated_keys_sql`; nearly all of them) pass through as they are, so
    only the few repeated keys are grouped, with the columns carried along; ``fold_ok`` is
    false for a group whose check hash differs, i.e. two different lines that collided, and
    the caller then folds again with ``exact=True`` (GROUP BY every column), so no two
    distinct lines are ever merged. Without ``repeated`` every line is grouped on its key.
    ``fixed_width`` (see :func:`fixed_width_aggregates`) groups the repeated lines on every
    column instead of carrying text in ``any_value``: the same fold, exact by construction.
    """
    names = ", ".join(cols)
    if exact:
        return f"SELECT {names}, count(*)::BIGINT AS n_copies, true AS fold_ok FROM {source} GROUP BY ALL"
    key, chk = line_key_sql(cols), line_check_sql(cols)
    where = f" WHERE {key} IN (SELECT _key FROM {repeated})" if repeated else ""
    if fixed_width and repeated:
        grouped = fold_lines_sql(cols, f"(SELECT {names} FROM {source}{where})", exact=True)
    else:
        carried = ", ".join(f"any_value({c}) AS {c}" for c in cols)
        grouped = (
            f"SELECT {carried}, count(*)::BIGINT AS n_copies, min(_chk) = max(_chk) AS fold_ok "
            f"FROM (SELECT {names}, {key} AS _key, {chk} AS _chk FROM {source}{where}) GROUP BY _key"
        )
    if not repeated:
        return grouped
    single = (
        f"SELECT {names}, 1::BIGINT AS n_copies, true AS fold_ok FROM {source} "
        f"WHERE {key} NOT IN (SELECT _key FROM {repeated})"
    )
    return f"{single} UNION ALL {grouped}"


def create_classified_view(
    con: duckdb.DuckDBPyConnection,
    rules: CleanRules,
    as_of: date | None,
    source: str = TX,
    view: str = CLASSIFIED,
    exact: bool = False,
) -> None:
    """One row per distinct line with ``n_copies`` (exact duplicates folded) and its ``reason``.

    With the duplicate rule on, identical lines are grouped; the first copy gets the line's
    reason (or is kept) and the extra ``n_copies - 1`` count as ``duplicate`` when kept.
    ``fold_ok`` is false where the hash fold merged distinct lines (see :func:`fold_lines_sql`;
    ``exact=True`` groups on every column instead).
    With ``match_cancellations`` the matched pairs are found first (:func:`create_matched_table`)
    and their lines dropped as ``cancelled_purchase`` / ``cancellation``.
    """
    # status only matters (and only joins the line's identity) when cancel_status is set
    has_status = bool(rules.cancel_status) and "status" in _columns(con, source)
    if rules.cancel_status and not has_status:
        raise SegworkInputError(
            f"clean.cancel_status is set ({', '.join(rules.cancel_status)}) "
            "but the data has no status column; map it under columns.status"
        )
    cols = [c.strip() for c in _LINE_COLS.split(",")] + (["status"] if has_status else [])
    # the orders carry the country as this exact code: a fixed-width buffer (text in any_value
    # cost a quarter of the order pass on DuckDB at 50M rows; on Spark it would sort every line)
    codes, matched_pairs, repeated_keys = view_tables(view)
    create_country_codes(con, source, codes)
    matched = None
    if rules.match_cancellations:
        # flag the matched rows on the raw scan: a narrow lookup of row ids, cheaper than
        # joining the folded lines (and all their columns) to the matched table
        create_matched_table(con, rules, as_of, source, matched_pairs)
        matched = "matched"
        cols.append("matched")
        source = (
            f"(SELECT *, row_id IN (SELECT row_id FROM {matched_pairs}) AS matched FROM {source})"
        )
    if rules.drop_duplicates:
        repeated = None
        if not exact:  # one narrow pass finds the repeated keys; the rest is never grouped
            repeated = repeated_keys
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {repeated} AS {repeated_keys_sql(cols, source)}"
            )
        lines = fold_lines_sql(cols, source, exact, repeated, fixed_width_aggregates(con))
    else:
        lines = f"SELECT {', '.join(cols)}, 1::BIGINT AS n_copies, true AS fold_ok FROM {source}"
    flagged = f"SELECT *, {_cancel_sql(rules, has_status)} AS is_cancel FROM lines"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW {view} AS
        WITH lines AS ({lines}),
        flagged AS ({flagged})
        SELECT *, {reason_case(rules, as_of, matched)} AS reason FROM flagged
        """
    )


def folds_exact(con: duckdb.DuckDBPyConnection, table: str = ORDERS) -> bool:
    """True when no hash fold behind ``table`` merged two different lines (see fold_lines_sql)."""
    ok = con.execute(f"SELECT coalesce(bool_and(fold_ok), true) FROM {table}").fetchall()[0][0]
    return bool(ok)


def classify_and_aggregate(
    con: duckdb.DuckDBPyConnection,
    rules: CleanRules,
    as_of: date | None,
    source: str = TX,
) -> bool:
    """Classify and fold the source, then aggregate it once (:func:`aggregate_by_customer`);
    True when the fast hash fold was exact, False when a collision made it fold again on
    every column."""
    mixed = rules.cancellations == "net" and bool(rules.cancel_status)
    create_classified_view(con, rules, as_of, source)
    aggregate_by_customer(con, folded=rules.drop_duplicates, mixed_orders=mixed)
    if folds_exact(con):
        return True
    create_classified_view(con, rules, as_of, source, exact=True)
    aggregate_by_customer(con, folded=rules.drop_duplicates, mixed_orders=mixed)
    return False


def create_kept_view(
    con: duckdb.DuckDBPyConnection,
    source: str = CLASSIFIED,
    view: str = KEPT,
    exclude_customers: tuple[str, ...] = (),
) -> None:
    """Kept lines, one per distinct line, for profiles and charts after the ledger is made.

    ``exclude_customers`` are stored IDs that turned out to mean "missing" (see
    :func:`relabel_missing_customers`); their lines are not kept.
    """
    cond = "reason IS NULL"
    if exclude_customers:
        ids = ", ".join(_sql_str(c) for c in exclude_customers)
        cond += f" AND customer_id NOT IN ({ids})"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {source} WHERE {cond}")


def create_kept_orders_view(
    con: duckdb.DuckDBPyConnection,
    source: str = ORDERS,
    view: str = KEPT_ORDERS,
    exclude_customers: tuple[str, ...] = (),
) -> None:
    """Kept orders (one row per order) from the materialised table, for the monthly totals:
    the same lines as :func:`create_kept_view`, without reading the source again."""
    create_kept_view(con, source, view, exclude_customers)


def orders_sql(source: str, codes: str, folded: bool = True, mixed_orders: bool = False) -> str:
    """SQL: per (reason, customer, order) rows, revenue, cancellations, dates and month.

    The one aggregate of the (folded) lines everything else is read from: the per-customer
    table and the ledger (summed further) and the monthly totals. ``order_ts`` is the line's
    timestamp only when the invoice ID is missing (such lines are told apart by time). An
    order's ``month`` is the calendar month of its first line. The order carries the smallest
    ``country_code`` of its lines (``codes``: a table of :func:`create_country_codes`; a
    fixed-width buffer) and ``country`` is looked up from it after the aggregate.
    """
    if folded:
        rows, rev_all, w = "sum(n_copies)", "sum(amount * n_copies)", " * n_copies"
    else:
        rows, rev_all, w = "count(*)", "sum(amount)", ""
    cancel_all = f"sum(amount{w}) FILTER (WHERE is_cancel)" if mixed_orders else "NULL::DOUBLE"
    orders = f"""
        SELECT reason, customer_id, invoice_id,
               CASE WHEN invoice_id IS NULL THEN invoice_date END AS order_ts,
               date_trunc('month', min(invoice_date))::DATE AS month,
               bool_and(is_cancel) AS is_cancel,
               {rows} AS n_rows,
               {rev_all} AS revenue_all,
               sum(amount) AS revenue,
               {cancel_all} AS cancel_all,
               count(*) AS n_lines,
               min(invoice_date) AS first_ts,
               max(invoice_date) AS last_ts,
               min(country_code) AS country_code,
               bool_and(fold_ok) AS fold_ok
        FROM {_coded(source, codes)}
        GROUP BY reason, customer_id, invoice_id, order_ts
    """
    return _decoded(orders, codes)


def _coded(lines: str, codes: str) -> str:
    """SQL: ``lines`` with each line's ``country_code`` (NULL for a NULL country)."""
    return (
        f"(SELECT l.*, k.country_code FROM {lines} l LEFT JOIN {codes} k ON l.country = k.country)"
    )


def _decoded(sql: str, codes: str) -> str:
    """SQL: the rows of ``sql`` with ``country`` looked up from their ``country_code``."""
    return (
        f"SELECT a.*, k.country FROM ({sql}) a "
        f"LEFT JOIN {codes} k ON a.country_code = k.country_code"
    )


def by_customer_sql(orders: str, codes: str, mixed_orders: bool = False) -> str:
    """SQL: per (reason, customer) rows, revenue, purchased/cancelled value, orders, dates.

    One row of ``orders`` is one order, so frequency is a plain count rather than a costlier
    COUNT(DISTINCT). An order's lines share one reason and cancel flag (a C-invoice is
    cancelled as a whole; dropped cancellations are their own group), so its cancelled value
    is read off the order, unless ``mixed_orders`` (status cancellations kept as refunds next
    to purchases of the same order), which splits it line by line. The latest order's
    ``country_code`` is carried and ``country`` looked up in ``codes`` after the aggregate.
    """
    cancel_revenue = "cancel_all" if mixed_orders else "CASE WHEN is_cancel THEN revenue_all END"
    customers = f"""
        SELECT reason, customer_id,
               sum(n_rows)::BIGINT AS n_rows,
               sum(n_lines)::BIGINT AS n_lines,
               sum(revenue_all) AS revenue_all,
               sum(revenue) AS revenue,
               sum(revenue_all - coalesce({cancel_revenue}, 0)) AS purchased,
               sum(abs({cancel_revenue})) AS cancelled,
               count(*) FILTER (WHERE NOT is_cancel) AS frequency,
               min(first_ts) FILTER (WHERE NOT is_cancel) AS first_purchase,
               max(last_ts) FILTER (WHERE NOT is_cancel) AS last_purchase,
               arg_max(country_code, last_ts) AS country_code
        FROM {orders}
        GROUP BY reason, customer_id
    """
    return _decoded(customers, codes)


def aggregate_by_customer(
    con: duckdb.DuckDBPyConnection,
    source: str = CLASSIFIED,
    table: str = BY_CUSTOMER,
    folded: bool = True,
    mixed_orders: bool = False,
    orders: str = ORDERS,
) -> None:
    """The single pass over the data: the per-order table, then per (reason, customer) facts.

    The source is scanned (and its duplicates folded) once, into the ``orders`` temp table
    (:func:`orders_sql`, one row per order); the ledger, the RFM table
    (:func:`by_customer_sql`) and the monthly totals all read that small table.
    ``folded=False`` says every line has ``n_copies = 1`` (duplicate rule off), which lets
    the scan skip the weighting. ``purchased`` and ``cancelled`` (absolute value of
    cancellation lines) feed the cancel-heavy warning. The country travels as the code
    :func:`create_classified_view` made (a fixed-width buffer) and is looked up at the end.
    """
    codes = country_codes(source)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {orders} AS {orders_sql(source, codes, folded, mixed_orders)}"
    )
    customers = by_customer_sql(orders, codes, mixed_orders)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {customers}")


def relabel_missing_customers(
    con: duckdb.DuckDBPyConnection,
    rules: CleanRules,
    na_tokens: tuple[str, ...],
    table: str = BY_CUSTOMER,
) -> tuple[str, ...]:
    """Treat stored IDs like 'nan', 'NULL', '#N/A' as a missing customer; returns those IDs.

    Parquet IDs are read as stored to keep the scan fast, so the check runs here, on the
    small per-customer aggregate: their rows move to ``missing_customer`` (unless an earlier
    reason applies) and the ID becomes NULL, as the CSV reader would have made it.
    """
    tokens = ", ".join(_sql_str(t.lower()) for t in na_tokens)
    cond = f"(trim(customer_id) = '' OR lower(trim(customer_id)) IN ({tokens}))"
    found = tuple(
        str(r[0])
        for r in con.execute(
            f"SELECT DISTINCT customer_id FROM {table} WHERE {cond} ORDER BY 1"
        ).fetchall()
    )
    if not found:
        return found
    missing = reason_code("missing_customer")
    relabel = (
        f"CASE WHEN reason IS NULL OR reason > {missing} THEN {missing} ELSE reason END"
        if rules.drop_missing_customer
        else "reason"
    )
    con.execute(
        f"UPDATE {table} SET reason = CAST({relabel} AS UTINYINT), customer_id = NULL WHERE {cond}"
    )
    return found


def ledger_from_aggregate(con: duckdb.DuckDBPyConnection, table: str = BY_CUSTOMER) -> Ledger:
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


def cancel_heavy_customers(
    con: duckdb.DuckDBPyConnection, share: float, table: str = BY_CUSTOMER, examples: int = 5
) -> tuple[int, tuple[str, ...]]:
    """How many customers cancelled more than ``share`` of the value they bought, and a few IDs.

    Bought: their purchase lines, kept or removed as ``cancelled_purchase``; cancelled: the
    absolute value of their cancellation lines (matched or not, fees included). Largest
    cancellers first.
    """
    kept, matched = "reason IS NULL", f"reason = {reason_code('cancelled_purchase')}"
    # net mode files cancelled fees (postage, manual) under non_product_code, drop mode under
    # cancellation: count both so the two modes agree
    codes = (reason_code("cancellation"), reason_code("non_product_code"))
    cancel = f"reason IN {codes}"
    rows = con.execute(
        f"""
        WITH c AS (
            SELECT customer_id,
                   sum(purchased) FILTER (WHERE {kept} OR {matched}) AS bought,
                   sum(cancelled) FILTER (WHERE {kept} OR {cancel}) AS cancelled
            FROM {table} WHERE customer_id IS NOT NULL GROUP BY customer_id
        )
        SELECT customer_id, count(*) OVER () FROM c
        WHERE bought > 0 AND cancelled > {float(share)} * bought
        ORDER BY cancelled DESC, customer_id LIMIT {int(examples)}
        """
    ).fetchall()
    return (int(rows[0][1]) if rows else 0), tuple(str(r[0]) for r in rows)
