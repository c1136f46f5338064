"""Tests for the seeded synthetic shop: determinism, schema, realism, faults and separability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from segwork.synth import PERSONAS, EventSpec, SynthSpec, generate, generate_events, write_synthetic

SPEC = SynthSpec(n_customers=3_000, seed=0)
NON_PRODUCT = ("POST", "M", "BANK CHARGES")


@pytest.fixture(scope="module")
def shop() -> tuple[pd.DataFrame, pd.DataFrame]:
    """One 3,000-customer shop shared by the read-only tests."""
    return generate(SPEC)


def _cancelled(t: pd.DataFrame) -> pd.Series:
    """Lines on cancellation invoices."""
    return t["invoice_id"].str.startswith("C")


def _clean(t: pd.DataFrame) -> pd.DataFrame:
    """The four textbook rules: customer present, not cancelled, quantity > 0, price > 0."""
    keep = t["customer_id"].notna() & ~_cancelled(t) & (t["quantity"] > 0) & (t["unit_price"] > 0)
    out = t[keep]
    return out.assign(amount=out["quantity"] * out["unit_price"])


def _rfm(t: pd.DataFrame, end: str) -> pd.DataFrame:
    """Recency (days to the as-of date), frequency (invoices), monetary per customer."""
    c = _clean(t)
    g = c.groupby("customer_id").agg(
        last=("invoice_date", "max"),
        frequency=("invoice_id", "nunique"),
        monetary=("amount", "sum"),
    )
    asof = pd.Timestamp(end) + pd.Timedelta(days=1)
    g["recency"] = (asof - g["last"]).dt.days
    return g[["recency", "frequency", "monetary"]]


def test_same_seed_same_frames_different_seed_differs() -> None:
    spec = SynthSpec(n_customers=1_200, seed=7)
    t1, p1 = generate(spec)
    t2, p2 = generate(spec)
    pd.testing.assert_frame_equal(t1, t2)
    pd.testing.assert_frame_equal(p1, p2)
    t3, _ = generate(SynthSpec(n_customers=1_200, seed=8))
    assert len(t3) != len(t1) or not t3.equals(t1)


def test_schema_and_dtypes(shop: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path) -> None:
    t, p = shop
    assert list(t.columns) == [
        "invoice_id",
        "customer_id",
        "invoice_date",
        "quantity",
        "unit_price",
        "product_id",
        "product_name",
        "country",
    ]
    assert str(t["invoice_date"].dtype) == "datetime64[us]"
    assert t["quantity"].dtype == np.int64 and t["unit_price"].dtype == np.float64
    for col in ("invoice_id", "customer_id", "product_id", "product_name", "country"):
        assert pd.api.types.is_string_dtype(t[col]), col
    assert {"customer_id", "persona", "first_purchase", "last_purchase"} <= set(p.columns)
    t_path, _ = write_synthetic(tmp_path, SynthSpec(n_customers=300))
    schema = pq.read_schema(t_path)
    assert schema.field("invoice_date").type == pa.timestamp("us")
    assert schema.field("customer_id").type == pa.string()
    assert schema.field("unit_price").type == pa.float64()


def test_dates_within_start_end_and_shop_hours(shop: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    t, p = shop
    assert t["invoice_date"].min() >= pd.Timestamp(SPEC.start)
    assert t["invoice_date"].max() < pd.Timestamp(SPEC.end) + pd.Timedelta(days=1)
    assert t["invoice_date"].dt.hour.between(8, 21).all()
    quarters = p["first_purchase"].dt.to_period("Q").value_counts()
    assert len(quarters) == 8 and quarters.min() >= 0.03 * len(p)  # arrivals all along


def test_fault_rates_near_stated(shop: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    t, _ = shop
    cancelled = _cancelled(t)
    assert t["customer_id"].isna().mean() == pytest.approx(SPEC.missing_customer_rate, abs=0.005)
    assert t.duplicated().mean() == pytest.approx(SPEC.duplicate_rate, abs=0.0015)
    assert t["product_id"].isin(NON_PRODUCT).mean() == pytest.approx(
        SPEC.non_product_rate, abs=0.002
    )
    assert set(t.loc[t["product_id"].isin(NON_PRODUCT), "product_id"]) == set(NON_PRODUCT)
    assert (t["unit_price"] == 0).mean() == pytest.approx(
        SPEC.zero_price_rate + SPEC.adjustment_rate, abs=0.0007
    )
    odd = t[(t["quantity"] < 0) & ~cancelled]
    assert 5 <= len(odd) <= 0.001 * len(t)
    assert odd["customer_id"].isna().all() and (odd["unit_price"] == 0).all()
    assert cancelled.mean() == pytest.approx(0.012, abs=0.006)


def test_cancellations_return_what_the_customer_bought(
    shop: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    t, _ = shop
    cancelled = _cancelled(t)
    c = t[cancelled]
    assert len(c) > 100 and (c["quantity"] < 0).all()
    bought = t[~cancelled & (t["quantity"] > 0)]
    first_buy = bought.groupby(["customer_id", "product_id"])["invoice_date"].min()
    named = c[c["customer_id"].notna()]
    keys = pd.MultiIndex.from_frame(named[["customer_id", "product_id"]])
    assert keys.isin(first_buy.index).all()
    assert (named["invoice_date"].to_numpy() > first_buy.loc[keys].to_numpy()).all()


def test_persona_proportions_and_realism(shop: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    t, p = shop
    shares = p["persona"].value_counts(normalize=True)
    for name, share in zip(PERSONAS, SPEC.persona_shares, strict=True):
        assert shares[name] == pytest.approx(share, abs=0.002)
    assert p["customer_id"].is_unique
    assert t["country"].value_counts(normalize=True).iloc[0] > 0.8
    assert t["country"].value_counts().index[0] == SPEC.home_country
    lines = t[~_cancelled(t)].groupby("invoice_id").size()
    assert lines.mean() > 4 and (lines > 1).mean() > 0.8
    products = t.loc[~t["product_id"].isin(NON_PRODUCT), "product_id"].value_counts()
    assert 500 <= len(products) <= 2_000
    assert products.iloc[:20].sum() / products.sum() > 0.2  # Zipf-like popularity


def test_heavy_tail_and_seasonality(shop: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    t, _ = shop
    c = _clean(t)
    revenue = c.groupby("customer_id")["amount"].sum().sort_values(ascending=False)
    assert revenue.iloc[: len(revenue) // 10].sum() / revenue.sum() >= 0.4
    by_month = c.groupby(c["invoice_date"].dt.month)["amount"].sum()
    assert by_month.loc[[11, 12]].sum() / by_month.sum() > 1.3 * 2 / 12
    weekday = c.groupby(c["invoice_date"].dt.day_of_week)["amount"].sum()
    assert weekday.loc[5] < 0.5 * weekday.loc[:4].mean()  # quiet Saturdays


def test_write_synthetic_small_chunks_equals_generate(tmp_path: Path) -> None:
    spec = SynthSpec(n_customers=2_500, seed=5)
    calls: list[tuple[int, int]] = []
    t_path, p_path = write_synthetic(
        tmp_path / "a", spec, chunk_customers=1_000, progress=lambda d, n: calls.append((d, n))
    )
    assert calls == [(1_000, 2_500), (2_000, 2_500), (2_500, 2_500)]
    t, p = generate(spec)
    pd.testing.assert_frame_equal(pd.read_parquet(t_path), t)
    pd.testing.assert_frame_equal(pd.read_parquet(p_path), p)
    t_big, _ = write_synthetic(tmp_path / "b", spec, chunk_customers=3_000)
    assert pq.read_table(t_big).equals(pq.read_table(t_path))  # chunk size does not matter


def test_personas_separable_in_rfm(shop: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    t, p = shop
    rfm = _rfm(t, SPEC.end)
    assert len(rfm) >= 0.99 * len(p)
    truth = p.set_index("customer_id").loc[rfm.index, "persona"]
    x = StandardScaler().fit_transform(np.log1p(rfm.to_numpy(dtype=float)))
    labels = KMeans(n_clusters=6, n_init=10, random_state=0).fit_predict(x)
    assert adjusted_rand_score(truth, labels) >= 0.85


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_customers": 0},
        {"persona_shares": (0.5, 0.5)},
        {"persona_shares": (0.2, 0.2, 0.2, 0.2, 0.2, 0.2)},
        {"start": "2025-06-01"},
        {"duplicate_rate": 0.5},
    ],
)
def test_bad_spec_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SynthSpec(**kwargs)


# --------------------------------------------------------------------------- behaviour events


def test_events_leave_the_transactions_unchanged(tmp_path: Path) -> None:
    spec = SynthSpec(n_customers=1_500, seed=4, block_customers=500)
    write_synthetic(tmp_path / "a", spec, chunk_customers=500, events=EventSpec())
    write_synthetic(tmp_path / "b", spec, chunk_customers=1_500)
    a = pq.read_table(tmp_path / "a" / "transactions.parquet")
    b = pq.read_table(tmp_path / "b" / "transactions.parquet")
    assert a.equals(b)
    assert not (tmp_path / "b" / "events.parquet").exists()
    written = pq.read_table(tmp_path / "a" / "events.parquet").to_pandas()
    events, planted = generate_events(spec)  # chunking does not change the events either
    pd.testing.assert_frame_equal(written, events)
    assert list(pq.read_table(tmp_path / "a" / "event_personas.parquet").to_pandas().columns) == [
        "customer_id",
        "persona",
    ]


def test_events_plant_their_personas_and_faults() -> None:
    spec = SynthSpec(n_customers=1_000, seed=2)
    events, planted = generate_events(spec)
    trans, personas = generate(spec)
    assert planted["persona"].value_counts().to_dict() == {
        "browser": 100,
        "cart_abandoner": 60,
        "newcomer": 40,
    }
    assert not set(planted["customer_id"]) & set(trans["customer_id"].dropna())  # never buy
    mine = events[events["customer_id"].isin(planted["customer_id"])]
    assert "purchase" not in set(mine["event_type"])
    abandoners = planted.loc[planted["persona"] == "cart_abandoner", "customer_id"]
    carts = mine[mine["event_type"] == "cart"]["customer_id"]
    assert set(abandoners) <= set(carts)
    # loyal and vip customers visit more often than they buy
    visits = events[events["event_type"] == "visit"].groupby("customer_id").size()
    loyal = personas[personas["persona"].isin(["vip", "loyal"])].set_index("customer_id")
    assert (visits.reindex(loyal.index) > 2 * loyal["n_orders"]).mean() > 0.9
    # faults: one bot per block, broken clocks, lost IDs and doubled rows
    bot = (events["customer_id"] == "BOT00000").sum()  # a few lose their ID or are doubled
    assert abs(bot - EventSpec().bot_events) < 0.01 * EventSpec().bot_events
    assert (events["timestamp"].dt.year == 2099).sum() == EventSpec().future_per_block
    assert 0.001 < events["customer_id"].isna().mean() < 0.004
    assert events.duplicated().sum() > 0
