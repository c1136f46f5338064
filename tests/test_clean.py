from datetime import date, datetime

import duckdb
import pandas as pd
import pytest

from segwork import clean
from segwork.schema import CleanRules

COLS = [
    "invoice_id",
    "customer_id",
    "invoice_date",
    "quantity",
    "unit_price",
    "product_id",
    "product_name",
    "country",
]


def tx_con(rows: list[tuple]) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a canonical ``tx`` view over hand-built lines."""
    df = pd.DataFrame(rows, columns=COLS)
    df["invoice_date"] = pd.to_datetime(df["invoice_date"], format="mixed")
    df["quantity"] = df["quantity"].astype("float64")
    df["unit_price"] = df["unit_price"].astype("float64")
    con = duckdb.connect()
    con.register("raw", df)
    con.execute(
        "CREATE VIEW tx AS SELECT row_number() OVER () AS row_id, invoice_id, customer_id, invoice_date,"
        " quantity, unit_price, quantity * unit_price AS amount, product_id, product_name, country FROM raw"
    )
    return con


ROWS = [
    ("1", "a", "2024-01-01 10:00", 2, 5.0, "P1", "Mug", "UK"),  # kept 10
    ("1", "a", "2024-01-01 10:00", 2, 5.0, "P1", "Mug", "UK"),  # duplicate 10
    ("1", "a", "2024-01-01 10:00", 1, 3.0, "POST", "Postage", "UK"),  # non-product 3
    ("2", None, "2024-01-02 10:00", 1, 7.0, "P2", "Cup", "UK"),  # missing customer 7
    ("C3", "a", "2024-01-03 10:00", -1, 5.0, "P1", "Mug", "UK"),  # cancellation -5
    ("4", "b", "2024-01-04 10:00", 0, 5.0, "P1", "Mug", "UK"),  # quantity 0
    ("5", "b", "2024-01-05 10:00", 3, 0.0, "P2", "Cup", "UK"),  # price 0
    ("6", "b", "2024-01-06 10:00", 1, 20.0, "P2", "Cup", "FR"),  # kept 20
    ("7", "b", "2024-02-01 10:00", 2, 4.0, "P3", "Pen", "FR"),  # after as-of (2024-02-01) or kept 8
    ("8", "c", None, 1, 1.0, "P3", "Pen", "FR"),  # missing date 1
]


def ledger_for(rows, rules=None, as_of=None):
    con = tx_con(rows)
    clean.create_classified_view(con, rules or CleanRules(), as_of)
    clean.aggregate_by_customer(con)
    return con, clean.ledger_from_aggregate(con)


def test_each_row_gets_one_named_reason_and_it_reconciles():
    _, led = ledger_for(ROWS, as_of=date(2024, 2, 1))
    assert led.rows_in == 10 and led.rows_kept == 2
    assert led.dropped_rows == {
        "duplicate": 1,
        "non_product_code": 1,
        "missing_customer": 1,
        "cancellation": 1,
        "non_positive_quantity": 1,
        "non_positive_price": 1,
        "after_as_of": 1,
        "missing_date": 1,
    }
    assert led.revenue_in == pytest.approx(10 + 10 + 3 + 7 - 5 + 0 + 0 + 20 + 8 + 1)
    assert led.revenue_kept == pytest.approx(30)
    assert led.dropped_revenue["cancellation"] == pytest.approx(-5)
    assert led.customers_kept == 2
    led.check()


def test_first_matching_reason_wins():
    # missing customer AND cancelled AND non-product: counted once, as missing_customer
    rows = [("C9", None, "2024-01-01", -1, 1.0, "POST", "x", "UK"), ROWS[0]]
    _, led = ledger_for(rows)
    assert led.dropped_rows == {"missing_customer": 1}


def test_rules_switched_off_keep_rows():
    _, led = ledger_for(ROWS, CleanRules(drop_duplicates=False, drop_non_product=False))
    assert "duplicate" not in led.dropped_rows and "non_product_code" not in led.dropped_rows
    assert led.rows_kept == 5  # 2 mugs + postage + cup + pen


def test_netted_cancellations_are_kept_as_negative_revenue():
    con, led = ledger_for(ROWS, CleanRules(cancellations="net"))
    assert "cancellation" not in led.dropped_rows
    a = con.execute(
        "SELECT revenue, frequency FROM cust_reason WHERE reason IS NULL AND customer_id='a'"
    ).fetchone()
    assert a == (pytest.approx(5.0), 1)  # 10 bought - 5 refunded, one purchase order


def test_check_catches_a_broken_ledger():
    led = clean.Ledger(rows_in=3, revenue_in=10.0, rows_kept=2, revenue_kept=10.0)
    with pytest.raises(AssertionError, match="2 rows accounted, 3 read"):
        led.check()
    led = clean.Ledger(rows_in=2, revenue_in=10.0, rows_kept=2, revenue_kept=9.0)
    with pytest.raises(AssertionError, match="revenue does not reconcile"):
        led.check()


def test_ledger_as_dict_lists_reasons_in_rule_order():
    _, led = ledger_for(ROWS, as_of=date(2024, 2, 1))
    d = led.as_dict()
    assert list(d["dropped"]) == [r for r in clean.REASONS if r in led.dropped_rows]
    assert d["rows_kept"] + sum(v["rows"] for v in d["dropped"].values()) == d["rows_in"]


def test_as_of_is_exclusive_midnight():
    rows = [
        ("1", "a", datetime(2024, 1, 31, 23, 59), 1, 1.0, "P", "x", "UK"),
        ("2", "a", "2024-02-01 00:00", 1, 1.0, "P", "x", "UK"),
    ]
    _, led = ledger_for(rows, as_of=date(2024, 2, 1))
    assert led.rows_kept == 1 and led.dropped_rows == {"after_as_of": 1}


@pytest.mark.uci
def test_uci_standard_four_rules_match_the_published_figures(uci_parquet):
    con = duckdb.connect()
    con.execute(
        f"""CREATE VIEW tx AS SELECT file_row_number + 1 AS row_id, InvoiceNo AS invoice_id,
        CustomerID AS customer_id, InvoiceDate AS invoice_date, Quantity::DOUBLE AS quantity,
        UnitPrice AS unit_price, Quantity * UnitPrice AS amount, StockCode AS product_id,
        Description AS product_name, Country AS country
        FROM read_parquet('{uci_parquet}', file_row_number = true)"""
    )
    clean.create_classified_view(con, CleanRules.standard4(), None)
    clean.aggregate_by_customer(con)
    led = clean.ledger_from_aggregate(con)
    assert led.rows_in == 541_909
    assert led.rows_kept == 397_884
    assert led.customers_kept == 4_338
    assert led.revenue_in == pytest.approx(9_747_747.93, abs=0.01)
    assert led.dropped_rows["missing_customer"] == 135_080
