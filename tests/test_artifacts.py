"""artifacts.py: every artefact of a run is written once, and the early and late halves load as one."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segwork import artifacts, clean
from segwork.config import RunParams
from segwork.pipeline import prepare
from segwork.read import NA_TOKENS
from segwork.run import run
from segwork.schema import Config
from segwork.synth import SynthSpec, write_synthetic


@pytest.mark.slow
def test_a_report_run_writes_each_artefact_once_and_reads_nothing_back(tmp_path, monkeypatch):
    written: Counter[str] = Counter()
    real_parquet = artifacts._parquet

    def counting(frame, path: Path, index: bool) -> None:
        written[path.name] += 1
        real_parquet(frame, path, index)

    read_back: list[str] = []
    real_read = artifacts.pd.read_parquet

    def watching(path, *a, **k):
        if "building" in str(path):  # the run's own build folder, before it is published
            read_back.append(Path(path).name)
        return real_read(path, *a, **k)

    monkeypatch.setattr(artifacts, "_parquet", counting)
    monkeypatch.setattr(artifacts.pd, "read_parquet", watching)
    params = RunParams(
        synth_customers=300, data_cache=str(tmp_path / "data"), out_dir=str(tmp_path / "out")
    )
    out = run(params)
    assert written and set(written.values()) == {1}, written
    assert read_back == []
    monkeypatch.undo()
    art = artifacts.load_artifacts(out)
    assert {"kmeans_cluster", "hdbscan_probability", "rfm_segment_id"} <= set(art.customers.columns)
    assert {"all", "rfm", "kmeans", "ward", "hdbscan"} <= set(art.top["scope"])
    assert art.linkage.shape[1] == 4 and len(art.linkage) > 0


# --------------------------------------------------------------------------- one materialisation

DUP_ROWS = [  # invoice, customer, date, qty, price, product, name, country
    ("1", "a", "2024-01-05 10:00", 2, 5.0, "P1", "Mug", "UK"),
    ("1", "a", "2024-01-05 10:00", 2, 5.0, "P1", "Mug", "UK"),  # exact copy
    ("1", "a", "2024-01-05 10:00", 1, 3.0, "POST", "Postage", "UK"),
    ("2", "a", "2024-02-07 09:00", 4, 2.5, "P2", "Cup", "UK"),
    ("C3", "a", "2024-02-08 09:00", -4, 2.5, "P2", "Cup", "UK"),  # cancels invoice 2's cups
    ("4", "b", "2024-01-20 12:00", 1, 20.0, "P3", "Pen", "FR"),
    ("4", "b", "2024-01-20 12:00", 1, 20.0, "P3", "Pen", "FR"),  # exact copy
    ("5", "b", "2024-03-02 12:00", 3, 1.5, "P1", "Mug", "FR"),
    ("6", None, "2024-03-03 12:00", 1, 9.0, "P1", "Mug", "UK"),
    ("7", "nan", "2024-03-04 12:00", 1, 9.0, "P1", "Mug", "UK"),  # a 'missing' marker ID
    ("8", "c", "2024-03-05 12:00", 2, 4.0, "P4", " ", "DE"),  # blank name: product id shown
    ("9", "c", "2024-03-28 12:00", 1, 4.0, "P4", " ", ""),  # blank country: '(unknown)'
]


def _parquet_file(path: Path, rows: list[tuple]) -> Path:
    cols = ["InvoiceNo", "CustomerID", "InvoiceDate", "Quantity", "UnitPrice", "StockCode",
            "Description", "Country"]  # fmt: skip
    df = pd.DataFrame(rows, columns=cols)
    df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"])
    df.to_parquet(path, index=False)
    return path


def _reference(prep, customers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """monthly, top items and ledger the way they were made before: kept lines as a view over
    the source, every column folded (GROUP BY ALL), re-read for each artefact."""
    con, rules = prep.con, Config().clean
    clean.create_classified_view(con, rules, None, exact=True)
    clean.aggregate_by_customer(con, table="cust_reason_ref")
    na = clean.relabel_missing_customers(con, rules, NA_TOKENS, table="cust_reason_ref")
    ledger = clean.ledger_from_aggregate(con, "cust_reason_ref").as_dict()
    clean.create_kept_view(con, exclude_customers=na)
    monthly = con.execute(  # the query monthly_frame ran over the kept lines before
        """
        SELECT date_trunc('month', invoice_date)::DATE AS month,
               count(DISTINCT coalesce(invoice_id, customer_id || '@' || invoice_date::VARCHAR)) AS orders,
               sum(amount) AS revenue, count(DISTINCT customer_id) AS customers
        FROM tx_kept GROUP BY 1 ORDER BY 1
        """
    ).df()
    monthly["month"] = pd.to_datetime(monthly["month"])
    full = pd.date_range(monthly["month"].min(), monthly["month"].max(), freq="MS")
    monthly = monthly.set_index("month").reindex(full, fill_value=0).rename_axis("month")
    monthly = monthly.reset_index().astype(
        {"orders": "int64", "customers": "int64", "revenue": "float64"}
    )
    return monthly, _reference_top(con, customers), ledger


def _reference_top(con, customers: pd.DataFrame, n: int = artifacts.TOP_N) -> pd.DataFrame:
    """Top items straight from the kept lines, one scope at a time, distinct customers counted."""
    long = [pd.DataFrame({"customer_id": customers.index, "scope": "all", "grp": "all"})]
    for scope, col in artifacts.GROUPINGS.items():
        if col in customers:
            grp = customers[col].astype(str).to_numpy()
            long.append(pd.DataFrame({"customer_id": customers.index, "scope": scope, "grp": grp}))
    con.register("ref_groups", pd.concat(long, ignore_index=True))
    df = con.execute(
        f"""
        WITH lines AS (
            SELECT g.scope, g.grp, k.customer_id, k.amount,
                   coalesce(nullif(trim(k.country), ''), '(unknown)') AS country,
                   coalesce(nullif(trim(k.product_name), ''), k.product_id, '(unknown)') AS product
            FROM tx_kept k JOIN ref_groups g USING (customer_id)
        ),
        agg AS (
            SELECT scope, grp, 'country' AS kind, country AS name, sum(amount) AS revenue,
                   count(DISTINCT customer_id) AS customers FROM lines GROUP BY ALL
            UNION ALL
            SELECT scope, grp, 'product' AS kind, product AS name, sum(amount) AS revenue,
                   count(DISTINCT customer_id) AS customers FROM lines GROUP BY ALL
        )
        SELECT scope, grp AS "group", kind,
               row_number() OVER (PARTITION BY scope, grp, kind ORDER BY revenue DESC, name) AS rank,
               name, revenue, customers
        FROM agg QUALIFY rank <= {n}
        """
    ).df()
    con.unregister("ref_groups")
    return df.astype({"rank": "int64", "customers": "int64", "revenue": "float64"})


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    key = [c for c in ("scope", "group", "kind", "rank", "month") if c in a]
    a, b = a.sort_values(key).reset_index(drop=True), b.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)


@pytest.mark.parametrize("source", ["hand-built", "synthetic"])
def test_artefacts_from_the_one_scan_equal_the_rescanning_ones(tmp_path, source):
    if source == "hand-built":
        data = _parquet_file(tmp_path / "tx.parquet", DUP_ROWS)
    else:
        data, _ = write_synthetic(tmp_path / "shop", SynthSpec(n_customers=300, seed=3))
    prep = prepare(data, Config())
    customers = artifacts.customers_frame(prep, None)
    # two cluster-like groupings, so every grouping set of the one pass is checked
    customers["kmeans_cluster"] = [i % 3 for i in range(len(customers))]
    customers["gmm_cluster"] = [i % 2 - 1 for i in range(len(customers))]
    monthly = artifacts.monthly_frame(prep)
    top = artifacts.top_items(prep, customers)
    # monthly totals come from the per-order table and top items (a second grouping) from the
    # per-customer items table made once: neither reads the source file again
    moved = data.rename(tmp_path / "moved.parquet")
    _same(artifacts.monthly_frame(prep), monthly)
    _same(artifacts.top_items(prep, customers, ("rfm",)), top[top.scope == "rfm"])
    moved.rename(data)
    ref_monthly, ref_top, ref_ledger = _reference(prep, customers)
    _same(monthly, ref_monthly)
    _same(top, ref_top)
    # the lift's buyer counts, from the same items table, against the kept lines
    lift = artifacts.product_lift(prep, prep.table["rfm_segment_id"])
    bought = prep.con.execute(
        """SELECT DISTINCT customer_id, coalesce(nullif(trim(product_name), ''), product_id,
                  '(unknown)') AS name FROM tx_kept WHERE amount > 0"""
    ).df()
    bought["group"] = bought["customer_id"].map(prep.table["rfm_segment_id"])
    buyers = bought.groupby(["group", "name"]).size()
    assert len(lift) > 0 or source == "hand-built"  # too few buyers there for a lift
    assert [buyers[(g, n)] for g, n in zip(lift["group"], lift["name"], strict=True)] == list(
        lift["buyers"]
    )
    assert prep.ledger.as_dict() == ref_ledger
    assert len(monthly) >= 3 and len(top) > 0
    if source == "hand-built":
        assert prep.ledger.dropped_rows["duplicate"] == 2
        assert set(top[top.kind == "country"].name) == {"UK", "FR", "DE", "(unknown)"}
        assert "P4" in set(top[top.kind == "product"].name)
        assert monthly["revenue"].sum() == pytest.approx(10 + 20 + 4.5 + 8 + 4)


def test_join_side_by_side_equals_join_in_any_order() -> None:
    """Frames on the same customers in the same order are put side by side; otherwise joined."""
    left = pd.DataFrame({"a": [1, 2, 3]}, index=pd.Index(["x", "y", "z"], name="customer_id"))
    same = pd.DataFrame({"b": [0.1, 0.2, 0.3]}, index=left.index.copy())
    shuffled = same.iloc[[2, 0]]
    pd.testing.assert_frame_equal(artifacts._join(left, same), left.join(same))
    pd.testing.assert_frame_equal(artifacts._join(left, shuffled), left.join(shuffled))
    assert np.isnan(artifacts._join(left, shuffled).loc["y", "b"])
