"""The Spark engine runs segwork's own SQL and gives the DuckDB engine's ledger, RFM and segments.

One local[2] session per module (a JVM start costs seconds); every test runs in one xdist
worker (group "spark") so the session is shared.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")
pytest.importorskip("sqlglot")

from segwork import clean, sparkread  # noqa: E402
from segwork import spark as sp  # noqa: E402
from segwork.engine import check_engine, data_location  # noqa: E402
from segwork.errors import SegworkInputError  # noqa: E402
from segwork.pipeline import prepare  # noqa: E402
from segwork.schema import ColumnMap, Config  # noqa: E402
from segwork.store import BY_CUSTOMER, ORDERS  # noqa: E402

pytestmark = pytest.mark.xdist_group("spark")

#: Columns that must be equal customer by customer between the engines.
PARITY = (
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "rfm_segment_id",
)


@pytest.fixture(scope="module")
def spark():
    """local[2] with two shuffle partitions: small data needs no more."""
    session = sp.session("local[2]", shuffle_partitions=2, timeout=180)
    yield session
    session.stop()


def messy_orders() -> pd.DataFrame:
    """Purchases plus every kind of line the ledger drops, with known counts."""
    rows = []
    t0 = pd.Timestamp("2024-01-01 09:00")
    for c in range(40):
        for o in range(1 + c % 4):
            rows.append(
                (
                    f"{c:03d}{o}",
                    f"P{o}",
                    1 + (c + o) % 3,
                    t0 + pd.Timedelta(days=(c * 5 + o * 11) % 90),
                    1.5 + c % 7,
                    str(1000 + c),
                )
            )
    line = ("0050", "P0", 2, t0 + pd.Timedelta(days=3), 4.25, "1005")
    rows += [line, line, line]  # a line and two extra copies: 2 duplicates
    rows.append(("C9001", "P0", -(1 + 5 % 3), t0 + pd.Timedelta(days=80), 1.5 + 5 % 7, "1005"))
    rows.append(("C9002", "P9", -7, t0 + pd.Timedelta(days=20), 3.0, "1006"))  # unmatched
    rows.append(("9003", "POST", 1, t0 + pd.Timedelta(days=4), 18.0, "1007"))  # postage
    rows.append(("9004", "P1", 3, t0 + pd.Timedelta(days=5), 0.0, "1008"))  # free
    rows.append(("9005", "P1", -3, t0 + pd.Timedelta(days=6), 2.0, "1009"))  # negative, no C
    rows.append(("9006", "P1", 3, t0 + pd.Timedelta(days=7), 2.0, None))  # no customer
    rows.append(("9007", "P2", 900, t0 + pd.Timedelta(days=8), 2.0, "nan"))  # 'nan' marker
    df = pd.DataFrame(
        rows,
        columns=["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"],
    )
    df["Description"] = "MUG"
    df["Country"] = np.where(df["CustomerID"].str.endswith("3") == True, "France", "UK")  # noqa: E712
    return df


@pytest.fixture(scope="module")
def messy(spark, tmp_path_factory):
    """The hand-built file prepared by both engines, once for the module."""
    p = tmp_path_factory.mktemp("messy") / "orders.parquet"
    messy_orders().to_parquet(p, index=False)
    return prepare(p, Config()), prepare(p, Config(), engine="spark"), p


def assert_engines_agree(duck, spk) -> None:
    """Same ledger (rows exact, revenue to the cent), as-of date and per-customer values."""
    assert spk.ledger.as_dict() == duck.ledger.as_dict()
    assert spk.as_of == duck.as_of
    a = duck.table.sort_index()[list(PARITY)]
    b = spk.table.sort_index()[list(PARITY)]
    pd.testing.assert_frame_equal(a, b)
    assert spk.segmenter.edges_ == duck.segmenter.edges_


def test_hand_built_file_gives_the_same_ledger_rfm_and_segments(messy):
    duck, spk, _ = messy
    assert_engines_agree(duck, spk)
    dropped = spk.ledger.dropped_rows
    assert dropped["duplicate"] == 2
    assert dropped["cancelled_purchase"] == 1 and dropped["cancellation"] == 2
    assert dropped["non_product_code"] == 1 and dropped["non_positive_price"] == 1
    assert dropped["non_positive_quantity"] == 1
    assert dropped["missing_customer"] == 2  # None and the 'nan' marker
    assert "nan" not in spk.table.index
    # the later stages read the Spark store through the same DuckDB-shaped connection
    kept = spk.con.execute("SELECT count(*) FROM tx_kept").fetchone()[0]
    assert kept == spk.ledger.rows_kept
    assert [w[0] for w in spk.warnings] == [w[0] for w in duck.warnings]


def stored_plans(spark, path: Path, monkeypatch, fixed_width: bool) -> dict[str, str]:
    """The physical plan of every table the ledger stage stores on Spark, by table name."""
    plans: dict[str, str] = {}
    store = sp.SparkCon._materialise

    def record(self, name, frame):
        plans[name] = frame._jdf.queryExecution().executedPlan().toString()
        store(self, name, frame)

    monkeypatch.setattr(sp.SparkCon, "_materialise", record)
    # a session of its own: its temp views must not replace those of the shared ``messy`` run
    con = sp.SparkCon(spark.newSession())
    con.fixed_width_aggregates = fixed_width
    sp.open_spark_source(con, str(path), Config())
    clean.classify_and_aggregate(con, Config().clean, None)
    con.close()
    return plans


def test_order_and_customer_aggregates_hash_without_text_buffers(spark, messy, monkeypatch):
    """Spark hash-aggregates fixed-width buffers only: text in any_value/max_by makes it sort
    every line (a 50M-line file ran the 6 GB heap out of memory), so the country is a code and
    repeated lines are folded on every column."""
    plans = stored_plans(spark, messy[2], monkeypatch, fixed_width=True)
    for table in (ORDERS, BY_CUSTOMER):  # the order plan holds the duplicate fold too
        assert "HashAggregate" in plans[table] and "SortAggregate" not in plans[table], table
    # the check can fail: text in an aggregate buffer (the country as text) sorts on Spark
    con = sp.SparkCon(spark.newSession())
    sp.open_spark_source(con, str(messy[2]), Config())
    text = con.spark.sql(
        "SELECT customer_id, max_by(country, invoice_date) AS country FROM tx GROUP BY customer_id"
    )
    assert "SortAggregate" in text._jdf.queryExecution().executedPlan().toString()
    con.close()


def test_a_folder_of_parquet_files_reads_as_one_source(spark, messy, tmp_path):
    df = pd.read_parquet(messy[2])
    folder = tmp_path / "parts"
    (folder / "2024").mkdir(parents=True)
    half = len(df) // 2
    df.iloc[:half].to_parquet(folder / "2024" / "part 0.parquet", index=False)
    df.iloc[half:].to_parquet(folder / "part-1.parquet", index=False)
    raw = sp.read_raw(spark, str(folder))
    ids = [r[0] for r in raw.select(sp.ROW_NUMBER).collect()]
    assert None not in ids and len(ids) == len(df) == len(set(ids))  # unique across files
    duck = messy[0]  # the same lines as one file, on DuckDB
    spk = prepare(folder, Config(), engine="spark")
    assert spk.ledger.as_dict() == duck.ledger.as_dict()
    pd.testing.assert_frame_equal(
        duck.table.sort_index()[list(PARITY)], spk.table.sort_index()[list(PARITY)]
    )


def test_segments_are_assigned_on_the_executors(spark, messy, tmp_path):
    from segwork.segmenters import KMeansSegmenter

    prep = messy[1]
    km = KMeansSegmenter(n_clusters=3).fit(prep.table)
    out = tmp_path / "segments_parquet"
    sp.write_segments_parquet(prep.store.con, prep.as_of, prep.segmenter, {"kmeans": km}, out)
    assert {p.name for p in out.iterdir() if p.is_dir()} == {
        f"rfm_segment_id={s}" for s in prep.table["rfm_segment_id"].unique()
    }
    got = pd.read_parquet(out).set_index("customer_id").sort_index()
    want = prep.table.sort_index()
    assert len(got) == len(want) == 40
    for col in ("recency_days", "frequency", "monetary", "r_score", "f_score", "m_score"):
        assert got[col].tolist() == want[col].tolist(), col
    assert got["rfm_segment_id"].astype(str).tolist() == want["rfm_segment_id"].tolist()
    assert got["kmeans_cluster"].tolist() == km.predict(want).tolist()
    assert got["kmeans_cluster"].nunique() > 1


def test_cli_engine_switch_writes_the_same_segments(spark, messy, tmp_path):
    from segwork.cli import main

    data = messy[2]
    for engine in ("duckdb", "spark"):
        argv = ["run", "--data", str(data), "--out", str(tmp_path / engine), "--no-report"]
        assert main([*argv, "--engine", engine, "--quiet"]) == 0
    duck = pd.read_csv(tmp_path / "duckdb" / "segments.csv", encoding="utf-8-sig")
    spk = pd.read_csv(tmp_path / "spark" / "segments.csv", encoding="utf-8-sig")
    pd.testing.assert_frame_equal(duck, spk)
    assert main(["run", "--engine", "spark", "--data", str(tmp_path / "no.parquet")]) == 2


def test_the_package_main_file_runs_as_spark_submit_runs_it(tmp_path):
    """spark-submit runs segwork/__main__.py as a file: its folder must not shadow the standard
    library (segwork/profile.py hides the profile module cProfile needs, and pyspark imports it)."""
    main_file = Path(sp.__file__).with_name("__main__.py")
    data = tmp_path / "orders.parquet"
    messy_orders().to_parquet(data, index=False)
    env = {
        **os.environ,
        "PYTHONPATH": str(main_file.parent.parent),
        sp.MASTER_ENV: "bogus://nowhere",  # pyspark is imported, then the session refused
    }
    argv = ["run", "--engine", "spark", "--data", str(data), "--out", str(tmp_path / "out")]
    done = subprocess.run(
        [sys.executable, str(main_file), *argv, "--no-report", "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr[-800:]
    assert "Spark session on bogus://nowhere failed to start" in done.stderr


def test_text_dates_in_parquet_read_as_on_duckdb(spark, tmp_path):
    df = messy_orders()
    df["InvoiceDate"] = df["InvoiceDate"].dt.strftime("%d/%m/%Y %H:%M")  # text, not timestamps
    p = tmp_path / "text_dates.parquet"
    df.to_parquet(p, index=False)
    duck, spk = prepare(p, Config()), prepare(p, Config(), engine="spark")
    assert spk.source.date_format == duck.source.date_format == "%d/%m/%Y %H:%M"
    assert_engines_agree(duck, spk)


def test_transpiled_sql_keeps_duckdb_meaning():
    framed = sp.to_spark_sql(
        "SELECT sum(x) OVER (w ROWS UNBOUNDED PRECEDING) AS s FROM t "
        "WINDOW w AS (PARTITION BY a ORDER BY ts)"
    )
    assert "PARTITION BY a ORDER BY ts" in framed and "(w " not in framed
    top = sp.to_spark_sql(
        "SELECT g, row_number() OVER (PARTITION BY g ORDER BY v DESC) AS rank FROM t "
        "QUALIFY rank <= 2 ORDER BY g, rank"
    )
    assert top.rstrip().endswith("ORDER BY g NULLS LAST, rank NULLS LAST")  # outside, not lost
    assert "CAST(86400.0 AS DOUBLE)" in sp.to_spark_sql("SELECT d / 86400.0 FROM t")
    # DuckDB's hash is 64-bit, Spark's HASH 32-bit (a 10M-line fold would collide)
    assert sp.to_spark_sql("SELECT hash(a, b) FROM t") == "SELECT XXHASH64(a, b) FROM t"
    assert "RLIKE '^(?:[0-9]+)$'" in sp.to_spark_sql("SELECT regexp_full_match(v, '[0-9]+')")
    assert "'$1'" in sp.to_spark_sql("SELECT regexp_replace(v, '^([0-9]+)\\.0+$', '\\1')")


@pytest.mark.parametrize(
    ("fmt", "pattern"),
    [
        ("%d/%m/%Y %H:%M", "d/M/yyyy H:m"),
        ("%Y%m%d%H%M%S", "yyyyMMddHHmmss"),  # no separators: fixed widths
        ("%Y. %m. %d. %p %I:%M", "yyyy. M. d. a h:m"),
    ],
)
def test_strptime_formats_become_spark_patterns(fmt, pattern):
    assert sp.spark_pattern(fmt) == pattern


def test_session_is_sized_from_the_local_master(monkeypatch):
    assert sp.local_cores("local[2]") == 2 and sp.local_cores("local") == 1
    conf = sp.local_conf("local[3]", None)
    assert conf["spark.sql.shuffle.partitions"] == str(3 * sp.PARTITIONS_PER_CORE)
    assert sp.local_conf("local[3]", 5)["spark.sql.shuffle.partitions"] == "5"
    mb = int(conf["spark.driver.memory"].removesuffix("m"))
    assert sp.DRIVER_MEMORY_FLOOR_MB <= mb <= sp.DRIVER_MEMORY_CAP_MB


def test_engine_and_data_flags_are_checked(tmp_path):
    assert check_engine("spark") == "spark"
    with pytest.raises(SegworkInputError, match="--engine: 'polars'"):
        check_engine("polars")
    assert data_location("spark", "s3a://bucket/tx/") == "s3a://bucket/tx/"
    assert data_location("duckdb", "x.parquet") == Path("x.parquet")
    with pytest.raises(SegworkInputError, match="no .parquet or CSV files"):
        sp.source_format(str(tmp_path))
    (tmp_path / "part-0.csv.gz").write_bytes(b"")
    assert sp.source_format(str(tmp_path)) == "csv"
    assert sp.source_format(str(tmp_path / "orders.CSV.GZ")) == "csv"
    assert sp.source_format(str(tmp_path / "orders.xlsx")) == "excel"
    with pytest.raises(SegworkInputError, match="unsupported file type"):
        sp.source_format(str(tmp_path / "orders.json"))
    assert sp.source_format("hdfs://nn/tx/2026-10") == "parquet"


@pytest.mark.uci
@pytest.mark.slow
def test_uci_spark_engine_equals_duckdb_engine(spark, uci_parquet):
    duck = prepare(uci_parquet, Config())
    spk = prepare(uci_parquet, Config(), engine="spark")
    assert_engines_agree(duck, spk)
    assert len(spk.table) == 4324  # non-trivial: the real customer count after cleaning
    for reason in ("missing_customer", "cancellation", "cancelled_purchase", "duplicate"):
        assert spk.ledger.dropped_rows[reason] == duck.ledger.dropped_rows[reason] > 0


# --------------------------------------------------------------------------- CSV and Excel

KOREAN = {
    "InvoiceNo": "주문번호",
    "StockCode": "상품코드",
    "Description": "상품명",
    "Quantity": "수량",
    "InvoiceDate": "주문일시",
    "UnitPrice": "단가",
    "CustomerID": "고객번호",
    "Country": "국가",
}
KOREAN_MAP = ColumnMap(
    invoice_id="주문번호",
    product_id="상품코드",
    product_name="상품명",
    quantity="수량",
    invoice_date="주문일시",
    unit_price="단가",
    customer_id="고객번호",
    country="국가",
)


def korean_csv(path: Path, df: pd.DataFrame, date_format: str = "%d/%m/%Y %H:%M") -> Path:
    """The orders as a gzipped CP949 CSV with Korean headers, a title line above the header,
    won prices written with the currency ('1,234.50원') and text dates."""
    out = df.rename(columns=KOREAN).copy()
    out["주문일시"] = pd.to_datetime(out["주문일시"]).dt.strftime(date_format)
    out["단가"] = [f"{v:,.2f}원" for v in out["단가"]]
    text = "주문 내역 (2024)\n" + out.to_csv(index=False)
    path.write_bytes(gzip.compress(text.encode("cp949")))
    return path


def test_gzipped_korean_csv_gives_the_same_ledger_and_rfm(spark, tmp_path):
    p = korean_csv(tmp_path / "주문.csv.gz", messy_orders())
    cfg = Config(columns=KOREAN_MAP)
    duck, spk = prepare(p, cfg), prepare(p, cfg, engine="spark")
    assert (spk.source.encoding, spk.source.header_row) == (duck.source.encoding, 2) == ("cp949", 2)
    assert spk.source.date_format == duck.source.date_format == "%d/%m/%Y %H:%M"
    assert spk.source.format == "csv" and spk.source.mapping == duck.source.mapping
    assert_engines_agree(duck, spk)


def test_a_bad_date_after_the_sample_is_refused_as_on_duckdb(spark, tmp_path, monkeypatch):
    df = messy_orders()
    p = tmp_path / "orders.csv"
    df["InvoiceDate"] = df["InvoiceDate"].dt.strftime("%d/%m/%Y %H:%M")
    df.loc[len(df) - 3, "InvoiceDate"] = "31/31/2024 10:00"  # far past the 5-line sample
    df.to_csv(p, index=False)
    monkeypatch.setattr(sparkread, "SAMPLE_ROWS", 5)  # the sample's lines all parse
    with pytest.raises(SegworkInputError) as want:
        prepare(p, Config())
    with pytest.raises(SegworkInputError) as got:
        prepare(p, Config(), engine="spark")
    assert str(got.value) == str(want.value)  # same count, same row number, same advice
    assert "31/31/2024" in str(got.value) and "\n" not in str(got.value)


def test_dates_that_read_two_ways_are_refused_as_on_duckdb(spark, tmp_path, monkeypatch):
    df = messy_orders()
    day = df["InvoiceDate"].dt.day.clip(upper=12).astype(str).str.zfill(2)
    df["InvoiceDate"] = day + df["InvoiceDate"].dt.strftime("/%m/%Y %H:%M")  # every day <= 12
    p = tmp_path / "ambiguous.csv"
    df.to_csv(p, index=False)
    with pytest.raises(SegworkInputError, match="read two ways") as want:
        prepare(p, Config())
    with pytest.raises(SegworkInputError, match="read two ways") as got:
        prepare(p, Config(), engine="spark")
    assert str(got.value) == str(want.value) and "\n" not in str(got.value)


def test_a_folder_of_csv_files_reads_as_one_source(spark, messy, tmp_path):
    df = pd.read_parquet(messy[2])
    half = len(df) // 2
    (tmp_path / "parts").mkdir()
    df.iloc[:half].to_csv(tmp_path / "parts" / "a.csv", index=False)
    with gzip.open(tmp_path / "parts" / "b.csv.gz", "wt") as fh:
        df.iloc[half:].to_csv(fh, index=False)
    spk = prepare(tmp_path / "parts", Config(), engine="spark")
    assert spk.ledger.as_dict() == messy[0].ledger.as_dict()
    pd.testing.assert_frame_equal(
        messy[0].table.sort_index()[list(PARITY)], spk.table.sort_index()[list(PARITY)]
    )


def test_excel_is_read_on_the_driver_and_handed_to_spark(spark, tmp_path):
    pytest.importorskip("openpyxl")
    p = tmp_path / "orders.xlsx"
    messy_orders().to_excel(p, index=False)
    duck, spk = prepare(p, Config()), prepare(p, Config(), engine="spark")
    assert spk.source.format == "excel"
    assert_engines_agree(duck, spk)


@pytest.mark.uci
@pytest.mark.slow
def test_uci_gzipped_csv_on_spark_equals_duckdb(spark, uci_dir):
    csv = uci_dir / "online_retail.csv.gz"
    duck = prepare(csv, Config())
    spk = prepare(csv, Config(), engine="spark")
    assert spk.source.format == "csv" and spk.source.date_format == "ISO 8601"
    assert_engines_agree(duck, spk)
    assert len(spk.table) == 4324


# --------------------------------------------------------------------------- clustering


def test_clustering_fits_on_the_driver_sample_and_labels_everyone(spark, messy):
    from segwork.clustering import ClusterConfig
    from segwork.sparkfit import cluster_on_sample, driver_sample

    # prepared again: Spark temp views are per session, and other tests replaced them
    prep = prepare(messy[2], Config(), engine="spark")
    cfg = ClusterConfig(k=3, stability_repeats=2, seed=7)
    sample = driver_sample(prep.store.con, prep.as_of, 25, seed=7)
    assert len(sample) == 25 and set(sample.index) < set(prep.table.index)
    again = driver_sample(prep.store.con, prep.as_of, 25, seed=7)
    pd.testing.assert_frame_equal(sample, again)  # seeded: the same customers every time
    assert set(driver_sample(prep.store.con, prep.as_of, 25, seed=8).index) != set(sample.index)
    res = cluster_on_sample(prep, cfg, size=25)
    km = res.segmenters["kmeans"]
    assert list(km.builder_.transform(sample).shape) == [25, 3]
    assert len(km.labels_) == 25  # the driver fitted on the sample only
    assert res.summary["n_customers"] == 25 and res.summary["fit_sample"]["n_customers"] == 40
    block = res.summary["methods"]["kmeans"]
    assert block["sampled"] and "driver_sample" in [n["code"] for n in block["notes"]]
    # every customer labelled: the sample keeps its fitted labels, the rest come from the
    # executors with the same fitted model
    assert list(res.labels.index) == list(prep.table.index)
    assert res.labels["kmeans_cluster"].notna().all()
    assert res.labels.loc[sample.index, "kmeans_cluster"].tolist() == km.labels_.tolist()
    rest = prep.table.index.difference(sample.index)
    assert (
        res.labels.loc[rest, "kmeans_cluster"].tolist() == km.predict(prep.table.loc[rest]).tolist()
    )
    gmm = res.segmenters["gmm"]
    assert np.allclose(
        res.labels.loc[rest, "gmm_probability"], gmm.predict_proba(prep.table.loc[rest]).max(axis=1)
    )
    assert res.labels["rfm_segment"].tolist() == prep.table["rfm_segment_id"].tolist()
    # a table no larger than the sample is clustered whole, as on DuckDB
    whole = cluster_on_sample(prep, cfg, size=40)
    assert whole.summary["n_customers"] == 40 and "fit_sample" not in whole.summary


@pytest.mark.slow
def test_a_report_run_on_spark_publishes_the_same_report_as_on_duckdb(tmp_path, spark):
    """`segwork run --engine spark` with the notebooks: every page, and the same numbers."""
    import json

    from segwork.config import RunParams
    from segwork.run import run

    def one(engine: str) -> Path:
        params = RunParams(
            synth_customers=300,
            data_cache=str(tmp_path / "data"),
            out_dir=str(tmp_path / engine),
            engine=engine,
            lang="en",
        )
        return run(params)

    on_spark, on_duckdb = one("spark"), one("duckdb")
    pages = sorted(p.name for p in on_spark.glob("*.html"))
    assert pages == sorted(p.name for p in on_duckdb.glob("*.html")) and len(pages) >= 6
    a, b = (
        json.loads((o / "summary.json").read_text(encoding="utf-8")) for o in (on_spark, on_duckdb)
    )
    for block in ("ledger", "as_of", "rfm", "segments", "customers", "currency"):
        assert a[block] == b[block], block
    seg_s, seg_d = (
        pd.read_csv(o / "segments.csv", dtype={"customer_id": str}) for o in (on_spark, on_duckdb)
    )
    pd.testing.assert_frame_equal(
        seg_s.set_index("customer_id")[["recency_days", "frequency", "monetary", "rfm_segment_id"]],
        seg_d.set_index("customer_id")[["recency_days", "frequency", "monetary", "rfm_segment_id"]],
    )
