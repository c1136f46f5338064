from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from segwork.config import RunParams
from segwork.errors import SegworkInputError
from segwork.pipeline import cluster_config, prepare
from segwork.schema import CleanRules, ClusterOptions, Config, load_config

KO_HEADERS = {
    "InvoiceNo": "주문번호",
    "StockCode": "상품코드",
    "Description": "상품명",
    "Quantity": "수량",
    "InvoiceDate": "주문일자",
    "UnitPrice": "단가",
    "CustomerID": "고객번호",
    "Country": "국가",
}
KO_CONFIG = """columns:
  invoice_id: 주문번호
  customer_id: 고객번호
  invoice_date: 주문일자
  quantity: 수량
  unit_price: 단가
  product_id: 상품코드
  product_name: 상품명
  country: 국가
read:
  encoding: {encoding}
"""


def messages(warnings) -> dict[str, str]:
    """Warning code -> English message."""
    return {code: message for code, message, _ in warnings}


def params(warnings) -> dict[str, dict]:
    """Warning code -> the params the report's text catalogue words it with."""
    return {code: dict(values) for code, _, values in warnings}


def korean_twins(df: pd.DataFrame, tmp: Path) -> tuple[Path, Path, Path]:
    """The same rows as a UTF-8 CSV (English headers) and a CP949 CSV with Korean headers + config."""
    df = df.copy()
    df["Description"] = "상품 " + df["Description"].fillna("").str.replace("£", "GBP ")
    utf8 = tmp / "orders_utf8.csv"
    df.to_csv(utf8, index=False, encoding="utf-8", date_format="%Y-%m-%d %H:%M")
    ko = tmp / "주문_cp949.csv"
    df.rename(columns=KO_HEADERS).to_csv(
        ko, index=False, encoding="cp949", date_format="%Y-%m-%d %H:%M"
    )
    cfg = tmp / "config.yaml"
    cfg.write_text(KO_CONFIG.format(encoding="auto"), encoding="utf-8")
    return utf8, ko, cfg


def assert_same_run(a, b):
    pd.testing.assert_frame_equal(a.table, b.table)
    assert a.ledger.as_dict() == b.ledger.as_dict()  # rows exact, revenue to the cent
    assert a.as_of == b.as_of


def small_orders(n: int = 60) -> pd.DataFrame:
    rows = []
    for c in range(n):
        for o in range(1 + c % 4):
            rows.append(
                {
                    "InvoiceNo": f"{c:03d}{o}",
                    "StockCode": f"P{o}",
                    "Description": "MUG £2",
                    "Quantity": 1 + (c + o) % 3,
                    "InvoiceDate": pd.Timestamp("2024-01-01 09:00")
                    + pd.Timedelta(days=(c * 5 + o * 11) % 90),
                    "UnitPrice": 1.5 + c % 7,
                    "CustomerID": str(1000 + c),
                    "Country": "United Kingdom",
                }
            )
    return pd.DataFrame(rows)


def test_cp949_korean_headers_give_the_same_segments_as_utf8(tmp_path):
    utf8, ko, cfg = korean_twins(small_orders(), tmp_path)
    a = prepare(utf8, Config())
    b = prepare(ko, load_config(cfg))
    assert b.source.encoding.lower().replace("-", "") in ("cp949", "euckr")
    assert_same_run(a, b)
    assert list(a.table["rfm_segment_id"]) == list(b.table["rfm_segment_id"])


def test_as_of_drops_later_rows_and_sets_recency(tmp_path):
    utf8, _, _ = korean_twins(small_orders(), tmp_path)
    prep = prepare(utf8, Config(), as_of=date(2024, 2, 1))
    assert prep.as_of == date(2024, 2, 1) and prep.as_of_given
    assert prep.ledger.dropped_rows["after_as_of"] > 0
    assert prep.table["recency_days"].min() >= 1
    assert prep.last_date < date(2024, 2, 1)


def test_no_rows_left_names_the_reasons(tmp_path):
    df = small_orders(5).assign(CustomerID=None)
    p = tmp_path / "o.csv"
    df.to_csv(p, index=False)
    with pytest.raises(SegworkInputError, match=r"no rows left after cleaning .*missing_customer"):
        prepare(p, Config())


@pytest.mark.uci
@pytest.mark.slow
def test_uci_ledger_through_the_reader(uci_parquet):
    prep = prepare(uci_parquet, Config(clean=CleanRules.standard4()))
    assert prep.source.layout == "uci_online_retail"
    assert prep.ledger.rows_in == 541_909
    assert prep.ledger.rows_kept == 397_884
    assert prep.ledger.customers_kept == 4_338 == len(prep.table)
    assert prep.as_of == date(2011, 12, 10)
    full = prepare(uci_parquet, Config())
    full.ledger.check()
    assert full.ledger.rows_in == 541_909
    assert set(full.ledger.dropped_rows) >= {
        "missing_customer",
        "cancellation",
        "duplicate",
        "non_product_code",
    }


@pytest.mark.uci
@pytest.mark.slow
def test_uci_cp949_twin_matches_parquet(uci_parquet, tmp_path):
    df = pd.read_parquet(uci_parquet)
    utf8, ko, cfg = korean_twins(df, tmp_path)
    a = prepare(utf8, Config())
    b = prepare(ko, load_config(cfg))
    assert_same_run(a, b)
    c = prepare(uci_parquet, Config())
    assert a.ledger.rows_in == c.ledger.rows_in == 541_909
    assert a.ledger.rows_kept == c.ledger.rows_kept
    pd.testing.assert_series_equal(a.table["rfm_segment_id"], c.table["rfm_segment_id"])


def test_parquet_text_na_customer_ids_are_missing_not_one_giant_vip(tmp_path):
    df = small_orders(30)
    markers = ["nan", "None", "NULL", "#N/A", "N/A", "-"]
    extra = small_orders(len(markers) * 4).iloc[: len(markers) * 4].copy()
    extra["CustomerID"] = markers * 4
    extra["Quantity"] = 500  # together they would outspend everyone
    p = tmp_path / "orders.parquet"
    pd.concat([df, extra], ignore_index=True).to_parquet(p, index=False)
    prep = prepare(p, Config())
    assert not set(markers) & set(prep.table.index)
    assert len(prep.table) == 30
    assert prep.ledger.dropped_rows["missing_customer"] == len(extra)
    assert prep.ledger.dropped_revenue["missing_customer"] == pytest.approx(
        float((extra["Quantity"] * extra["UnitPrice"]).sum())
    )
    kept = prep.con.execute("SELECT count(*) FROM tx_kept WHERE customer_id IN ('nan', '-')")
    assert kept.fetchone()[0] == 0
    assert "missing_customer_markers" in messages(prep.warnings)
    assert params(prep.warnings)["missing_customer_markers"] == {
        "ids": [repr(m) for m in sorted(markers)]
    }


def test_stale_data_and_cancel_heavy_customers_are_warned(tmp_path):
    df = small_orders(20)
    cancel = df[df["CustomerID"] == "1003"].copy()  # cancels all four of its orders
    cancel["InvoiceNo"] = "C" + cancel["InvoiceNo"]
    cancel["Quantity"] = -cancel["Quantity"]
    cancel["InvoiceDate"] += pd.Timedelta(hours=1)
    p = tmp_path / "orders.csv"
    pd.concat([df, cancel], ignore_index=True).to_csv(p, index=False)
    prep = prepare(p, Config())
    assert "1003" not in prep.table.index
    assert [c for c, _, _ in prep.warnings] == ["cancel_heavy_customers"]
    assert "1 customers" in messages(prep.warnings)["cancel_heavy_customers"]
    assert params(prep.warnings)["cancel_heavy_customers"] == {
        "n": 1,
        "share": 0.5,
        "examples": ["1003"],
    }
    late = prepare(p, Config(), as_of=prep.last_date + pd.Timedelta(days=91))
    assert messages(late.warnings)["stale_data"].startswith(
        f"the as-of date {late.as_of} is 91 days"
    )
    assert params(late.warnings)["stale_data"] == {
        "as_of": late.as_of.isoformat(),
        "gap": 91,
        "last": late.last_date.isoformat(),
    }
    ok = prepare(p, Config(), as_of=prep.last_date + pd.Timedelta(days=90))
    assert "stale_data" not in messages(ok.warnings)


def test_cancel_status_needs_a_mapped_status_column(tmp_path):
    p = tmp_path / "orders.csv"
    small_orders(5).to_csv(p, index=False)
    with pytest.raises(SegworkInputError, match=r"clean.cancel_status .* columns.status"):
        prepare(p, Config(clean=CleanRules(cancel_status=("취소",))))


@pytest.mark.uci
def test_uci_cancelled_giant_orders_no_longer_count(uci_parquet):
    """16446 bought 80,995 units (168,469.60) and 12346 74,215 (77,183.60), both cancelled."""
    prep = prepare(uci_parquet, Config())
    led = prep.ledger
    led.check()
    assert led.rows_in == 541_909
    assert led.dropped_rows["cancelled_purchase"] == 2_866
    assert led.dropped_revenue["cancelled_purchase"] == pytest.approx(426_383.28, abs=0.005)
    assert led.dropped_rows["cancellation"] == 8_905
    assert led.rows_kept == 388_332 and led.customers_kept == 4_324 == len(prep.table)
    c = prep.table.loc["16446"]
    assert (c.frequency, c.monetary) == (1, 2.90)  # two brushes on 2011-05-18
    assert "12346" not in prep.table.index  # its one order was the cancelled one
    assert prep.as_of == date(2011, 12, 10)
    heavy = messages(prep.warnings)["cancel_heavy_customers"]
    assert "16446" in heavy and "12346" in heavy
    net = prepare(uci_parquet, Config(clean=CleanRules(cancellations="net")))
    net.ledger.check()
    assert net.table.loc["16446", "monetary"] == 2.90 and "12346" not in net.table.index


def test_cluster_config_flags_override_the_config_section_which_overrides_defaults():
    assert cluster_config(RunParams()).k_range == (3, 8)
    assert cluster_config(RunParams()).k is None
    opts = ClusterOptions(k_range=(4, 6), k=5, min_share=0.05, dbcv_threshold=0.3)
    from_cfg = cluster_config(RunParams(), opts)
    assert (from_cfg.k_range, from_cfg.k, from_cfg.min_share) == ((4, 6), 5, 0.05)
    assert from_cfg.dbcv_threshold == 0.3
    flags = cluster_config(RunParams(k=7, k_range=(5, 9)), opts)
    assert (flags.k_range, flags.k, flags.min_share) == ((5, 9), 7, 0.05)


def test_duckdb_is_idle_while_the_clusters_are_fitted(tmp_path, monkeypatch):
    """The frames of clustering get the memory the ledger's DuckDB held (store.idle)."""
    from segwork import pipeline
    from segwork.store import IDLE_MEMORY_MB, size_bytes

    seen = []
    real = pipeline.cluster

    def spy(prep, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        seen.append(prep.store.rows("SELECT current_setting('memory_limit')")[0][0])
        return real(prep, *a, **k)

    monkeypatch.setattr(pipeline, "cluster", spy)
    monkeypatch.setenv("SEGWORK_MEMORY_LIMIT", "900MB")
    params = RunParams(
        synth_customers=300, data_cache=str(tmp_path / "data"), report=False, predict=False
    )
    pipeline.compute(params)
    assert len(seen) == 1
    assert size_bytes(str(seen[0])) == pytest.approx(IDLE_MEMORY_MB * 2**20, rel=0.01)
