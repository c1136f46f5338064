from datetime import date, datetime

import duckdb
import pandas as pd
import pytest

from segwork import clean, rfm
from segwork.errors import SegworkInputError
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


# Cancellations matched to the purchases they reverse (the default since issue 8).
MATCH_ROWS = [
    # x bought 80,995 units and cancelled them 12 minutes later (UCI customer 16446)
    ("050", "x", "2011-05-18 09:52", 1, 1.65, "22980", "BRUSH", "UK"),
    ("050", "x", "2011-05-18 09:52", 1, 1.25, "22982", "BRUSH", "UK"),
    ("100", "x", "2011-12-09 09:15", 80995, 2.08, "23843", "PAPER CRAFT", "UK"),
    ("C101", "x", "2011-12-09 09:27", -80995, 2.08, "23843", "PAPER CRAFT", "UK"),
    # y: the cancellation reverses the latest earlier purchase of 10, not the January one
    ("200", "y", "2011-01-03 10:00", 10, 1.0, "P", "Pen", "UK"),
    ("201", "y", "2011-11-01 10:00", 10, 1.0, "P", "Pen", "UK"),
    ("C202", "y", "2011-11-02 10:00", -10, 1.0, "P", "Pen", "UK"),
    # z: a return before any purchase (bought before the data starts) matches nothing
    ("C300", "z", "2011-03-01 10:00", -5, 2.0, "Q", "Cup", "UK"),
    ("301", "z", "2011-03-05 10:00", 5, 2.0, "Q", "Cup", "UK"),
    # w: a partial return (6 of 12) matches nothing
    ("400", "w", "2011-04-01 10:00", 12, 3.0, "R", "Jar", "UK"),
    ("C401", "w", "2011-04-02 10:00", -6, 3.0, "R", "Jar", "UK"),
    # v: one purchase, two cancellations: the first matches, the second does not
    ("500", "v", "2011-06-01 10:00", 2, 4.0, "T1", "Box", "UK"),
    ("C501", "v", "2011-06-01 11:00", -2, 4.0, "T1", "Box", "UK"),
    ("C502", "v", "2011-06-01 12:00", -2, 4.0, "T1", "Box", "UK"),
]


def test_cancellation_removes_the_purchase_it_reverses():
    con, led = ledger_for(MATCH_ROWS)
    assert led.dropped_rows == {"cancellation": 6, "cancelled_purchase": 3}
    assert led.dropped_revenue["cancelled_purchase"] == pytest.approx(80995 * 2.08 + 10 + 8)
    assert led.rows_kept == 5 and led.customers_kept == 4  # v bought nothing that stayed
    assert led.revenue_kept == pytest.approx(2.90 + 10 + 10 + 36)
    led.check()
    t = rfm.rfm_table(con, date(2011, 12, 10)).loc[:, ["frequency", "monetary", "last_purchase"]]
    assert t.loc["x"].tolist()[:2] == [1, 2.90]  # the cancelled order no longer counts
    assert t.loc["y", "last_purchase"] == pd.Timestamp("2011-01-03 10:00")
    assert t.loc["z", "monetary"] == 10 and t.loc["w", "monetary"] == 36
    assert "v" not in t.index


def test_matched_pairs_also_leave_a_netted_ledger():
    """net: a matched pair is removed whole; unmatched returns stay as negative revenue."""
    con, led = ledger_for(MATCH_ROWS, CleanRules(cancellations="net"))
    assert led.dropped_rows == {"cancellation": 3, "cancelled_purchase": 3}  # C101 C202 C501
    assert led.dropped_revenue["cancellation"] == pytest.approx(-(80995 * 2.08 + 10 + 8))
    assert led.rows_kept == 8  # 5 purchases + C300, C401, C502
    led.check()
    t = rfm.rfm_table(con, date(2011, 12, 10))
    assert t.loc["x", "monetary"] == 2.90 and t.loc["x", "frequency"] == 1
    assert t.loc["w", "monetary"] == 36 - 18 and t.loc["z", "monetary"] == 0
    assert "v" not in t.index  # only an unmatched refund is left: no purchase order


def test_matching_off_keeps_the_old_behaviour():
    _, led = ledger_for(MATCH_ROWS, CleanRules(match_cancellations=False))
    assert led.dropped_rows == {"cancellation": 6}
    assert led.rows_kept == 8 and led.customers_kept == 5


def test_same_timestamp_purchase_is_matched_and_each_purchase_only_once():
    rows = [
        ("1", "a", "2024-01-05", 3, 2.0, "P", "x", "UK"),  # date-only file: same timestamp
        ("C2", "a", "2024-01-05", -3, 2.0, "P", "x", "UK"),
        ("3", "a", "2024-01-06", 3, 2.0, "P", "x", "UK"),
        ("3", "a", "2024-01-06", 3, 2.0, "P", "x", "UK"),  # exact duplicate: one event
        ("C4", "a", "2024-01-07", -3, 2.0, "P", "x", "UK"),
        ("C5", "a", "2024-01-08", -3, 2.0, "P", "x", "UK"),  # nothing left to reverse
        ("6", "a", "2024-01-09", 1, 2.0, "P", "x", "UK"),
    ]
    _, led = ledger_for(rows)
    assert led.dropped_rows == {"cancellation": 3, "cancelled_purchase": 3}  # both copies
    assert led.rows_kept == 1
    led.check()
    _, led = ledger_for(rows, CleanRules(drop_duplicates=False))
    # without the duplicate rule the two copies are two purchases: C4 and C5 take one each
    assert led.dropped_rows == {"cancellation": 3, "cancelled_purchase": 3}
    assert led.rows_kept == 1


def test_cancellation_after_the_as_of_date_does_not_reach_back():
    rows = [
        ("1", "a", "2024-01-30", 3, 2.0, "P", "x", "UK"),
        ("C2", "a", "2024-02-03", -3, 2.0, "P", "x", "UK"),
    ]
    _, led = ledger_for(rows, as_of=date(2024, 2, 1))
    assert led.rows_kept == 1 and led.dropped_rows == {"cancellation": 1}


def tx_con_status(rows: list[tuple], statuses: list[str | None]) -> duckdb.DuckDBPyConnection:
    """tx_con with the reader's ``status`` column (interfaces.md #1)."""
    con = tx_con(rows)
    con.register("st", pd.DataFrame({"row_id": range(1, len(rows) + 1), "status": statuses}))
    con.execute("ALTER VIEW tx RENAME TO tx_nostatus")
    con.execute(
        "CREATE VIEW tx AS SELECT t.*, s.status FROM tx_nostatus t JOIN st s USING (row_id)"
    )
    return con


def test_status_column_marks_cancellations():
    rows = [
        ("1", "a", "2024-01-02", 2, 5.0, "P1", "Mug", "KR"),
        ("2", "a", "2024-01-03", -2, 5.0, "P1", "Mug", "KR"),  # reversal, status 반품
        ("3", "a", "2024-01-04", 1, 7.0, "P2", "Cup", "KR"),  # the cancelled line itself
        ("4", "a", "2024-01-05", 1, 9.0, "P3", "Pen", "KR"),
        ("5", "b", "2024-01-05", 1, 9.0, "P3", "Pen", "KR"),
    ]
    statuses = ["배송완료", " 반품 ", "취소", "배송완료", "Cancelled"]
    rules = CleanRules(cancel_status=("취소", "반품", "CANCELLED"))
    con = tx_con_status(rows, statuses)
    clean.create_classified_view(con, rules, None)
    clean.aggregate_by_customer(con)
    led = clean.ledger_from_aggregate(con)
    assert led.dropped_rows == {"cancellation": 3, "cancelled_purchase": 1}
    assert led.rows_kept == 1 and led.revenue_kept == pytest.approx(9.0)
    # net: the reversal matched its purchase; the cancelled line is never revenue
    con = tx_con_status(rows, statuses)
    clean.create_classified_view(
        con, CleanRules(cancellations="net", cancel_status=rules.cancel_status), None
    )
    clean.aggregate_by_customer(con, mixed_orders=True)
    led = clean.ledger_from_aggregate(con)
    assert led.dropped_rows == {"cancellation": 3, "cancelled_purchase": 1}


def test_cancel_status_without_a_status_column_is_an_input_error():
    con = tx_con(ROWS)
    with pytest.raises(SegworkInputError, match="columns.status"):
        clean.create_classified_view(con, CleanRules(cancel_status=("취소",)), None)


def test_na_customer_ids_stored_as_text_count_as_missing():
    rows = [
        ("1", "nan", "2024-01-02", 100, 50.0, "P1", "Mug", "UK"),
        ("2", "#N/A", "2024-01-02", 1, 5.0, "P1", "Mug", "UK"),
        ("C3", "NULL", "2024-01-02", -1, 5.0, "P1", "Mug", "UK"),
        ("4", "a", "2024-01-02", 1, 5.0, "P1", "Mug", "UK"),
    ]
    con, _ = ledger_for(rows)
    found = clean.relabel_missing_customers(con, CleanRules(), ("nan", "#n/a", "null"))
    assert found == ("#N/A", "NULL", "nan")
    led = clean.ledger_from_aggregate(con)
    assert led.dropped_rows == {"missing_customer": 3}
    assert led.dropped_revenue["missing_customer"] == pytest.approx(5000 + 5 - 5)
    assert led.customers_kept == 1


def test_cancel_heavy_customers_are_counted_with_examples():
    con, _ = ledger_for(MATCH_ROWS)
    n, ids = clean.cancel_heavy_customers(con, 0.5)
    # x cancelled all, v 16 of 8 bought, z 10 of 10; y 10 of 20 and w 18 of 36 are not over half
    assert n == 3 and ids[:2] == ("x", "v") and set(ids) == {"x", "v", "z"}


def test_refund_inside_a_purchase_order_counts_as_cancelled_value():
    """Status files can hold a refund line in the order it refunds (net mode keeps both)."""
    rows = [
        ("1", "a", "2024-01-02", 10, 1.0, "P1", "Mug", "KR"),
        ("1", "a", "2024-01-02", -6, 1.0, "P2", "Cup", "KR"),  # 반품 of a P2 bought elsewhere
        ("2", "b", "2024-01-02", 10, 1.0, "P1", "Mug", "KR"),
    ]
    con = tx_con_status(rows, ["완료", "반품", "완료"])
    rules = CleanRules(cancellations="net", cancel_status=("반품",))
    clean.create_classified_view(con, rules, None)
    clean.aggregate_by_customer(con, mixed_orders=True)
    assert clean.cancel_heavy_customers(con, 0.5) == (1, ("a",))
    a = con.execute(
        "SELECT frequency, revenue FROM cust_reason WHERE reason IS NULL AND customer_id = 'a'"
    ).fetchone()
    assert a == (1, pytest.approx(4.0))  # one purchase order, net of the refund


# --------------------------------------------------------------------------- one scan, hash fold


def _ledger_after_classify(rows, rules=None, as_of=None):
    """The pipeline's path: classify, fold and aggregate once, with the collision check."""
    con = tx_con(rows)
    exact = clean.classify_and_aggregate(con, rules or CleanRules(), as_of)
    return con, exact, clean.ledger_from_aggregate(con)


def _ledger_exact(rows, rules=None, as_of=None):
    """The reference: fold on every column (GROUP BY ALL), aggregate straight from the view."""
    con = tx_con(rows)
    clean.create_classified_view(con, rules or CleanRules(), as_of, exact=True)
    clean.aggregate_by_customer(con)
    return clean.ledger_from_aggregate(con)


def test_the_hash_fold_gives_the_exact_ledger_to_the_row_and_the_cent():
    _, exact, led = _ledger_after_classify(ROWS, as_of=date(2024, 2, 1))
    ref = _ledger_exact(ROWS, as_of=date(2024, 2, 1))
    assert exact is True
    assert led.as_dict() == ref.as_dict()
    assert led.dropped_rows["duplicate"] == 1 and led.dropped_revenue["duplicate"] == 10.0


def test_a_hash_collision_is_detected_and_folded_again_exactly(monkeypatch):
    # a key that collides for every line of a customer: the check hash disagrees, so the
    # lines are folded again on every column and no two different lines are merged
    monkeypatch.setattr(clean, "line_key_sql", lambda cols: "hash(customer_id)")
    con, exact, led = _ledger_after_classify(ROWS, as_of=date(2024, 2, 1))
    assert exact is False
    assert clean.folds_exact(con)
    assert led.as_dict() == _ledger_exact(ROWS, as_of=date(2024, 2, 1)).as_dict()
    assert led.rows_kept == 2 and led.rows_in == 10


def test_folding_keeps_lines_that_differ_only_in_a_null():
    rows = [
        ("1", "a", "2024-01-01 10:00", 2, 5.0, "P1", "Mug", "UK"),
        ("1", "a", "2024-01-01 10:00", 2, 5.0, "P1", None, "UK"),  # not a copy: name missing
        ("1", "a", "2024-01-01 10:00", 2, 5.0, "P1", "Mug", "UK"),  # a copy of the first
    ]
    _, _, led = _ledger_after_classify(rows)
    assert led.rows_kept == 2 and led.dropped_rows == {"duplicate": 1}
    assert led.revenue_kept == pytest.approx(20.0)


def test_an_order_whose_lines_span_two_months_is_one_order_in_its_first_month():
    rows = [
        ("1", "a", "2024-01-31 23:59", 2, 5.0, "P1", "Mug", "UK"),
        ("1", "a", "2024-02-01 00:01", 1, 3.0, "P2", "Cup", "UK"),  # same invoice, next month
        ("2", "a", "2024-02-10 10:00", 1, 4.0, "P1", "Mug", "UK"),
    ]
    con, _, led = _ledger_after_classify(rows)
    assert led.rows_kept == 3 and led.revenue_kept == pytest.approx(17.0)
    orders = con.execute(
        "SELECT invoice_id, month, n_lines, revenue FROM tx_orders ORDER BY invoice_id"
    ).fetchall()
    assert orders == [("1", date(2024, 1, 1), 2, 13.0), ("2", date(2024, 2, 1), 1, 4.0)]
    freq = con.execute("SELECT frequency FROM cust_reason WHERE reason IS NULL").fetchall()
    assert freq == [(2,)]
