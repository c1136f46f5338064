"""Orders + visits -> one customer table, on the orders or the visits basis."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from segwork.errors import SegworkInputError
from segwork.visitbasis import customer_table, map_for_basis, resolve_basis

AS_OF = dt.date(2024, 4, 1)


def _orders() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "recency_days": [10, 40],
            "frequency": [3, 1],
            "monetary": [300.0, 20.0],
            "tenure_days": [60, 40],
            "avg_order_value": [100.0, 20.0],
            "mean_interpurchase_days": [25.0, float("nan")],
            "first_purchase": pd.to_datetime(["2024-02-01 10:00", "2024-02-21 09:00"]),
            "last_purchase": pd.to_datetime(["2024-03-22 10:00", "2024-02-21 09:00"]),
            "country": ["UK", "UK"],
        },
        index=pd.Index(["b1", "b2"], name="customer_id"),
    )


def _visits() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "visits": [8, 3],
            "views": [20, 4],
            "carts": [2, 1],
            "carts_abandoned": [0, 1],
            "carts_decided": [2, 1],
            "first_visit": pd.to_datetime(["2024-01-20 08:00", "2024-03-25 12:00"]),
            "last_visit": pd.to_datetime(["2024-03-30 08:00", "2024-03-29 12:00"]),
            "signup": pd.to_datetime([None, "2024-03-25 12:00"]),
        },
        index=pd.Index(["b1", "v1"], name="customer_id"),
    )


def test_visits_basis_keeps_everyone_and_counts_visits():
    t = customer_table(_orders(), _visits(), "visits", AS_OF, dt.date(2024, 1, 1))
    assert list(t.index) == ["b1", "b2", "v1"]
    assert t["orders"].tolist() == [3, 1, 0] and t["monetary"].tolist() == [300.0, 20.0, 0.0]
    assert t["recency_days"].tolist() == [2, 40, 3]  # last visit, else the last order
    assert t["frequency"].tolist() == [8, 1, 3]  # visits, at least the orders
    assert t["first_visit_days"].tolist() == [72, 40, 7]  # first visit, sign-up or order
    assert t.loc["b1", "days_to_first_order"] == 12  # 2024-01-20 -> 2024-02-01
    assert pd.isna(t.loc["b2", "days_to_first_order"]) and pd.isna(
        t.loc["v1", "days_to_first_order"]
    )
    assert t.loc["b1", "visit_conversion"] == pytest.approx(3 / 8)
    assert t["last_order_days"].tolist()[:2] == [10.0, 40.0] and pd.isna(
        t.loc["v1", "last_order_days"]
    )
    assert t.loc["v1", "tenure_days"] == 7 and t.loc["v1", "avg_order_value"] == 0.0


def test_orders_basis_gives_non_buyers_the_whole_window():
    t = customer_table(_orders(), _visits(), "orders", AS_OF, dt.date(2024, 1, 1))
    assert t["recency_days"].tolist() == [10, 40, 91] and t["frequency"].tolist() == [3, 1, 0]


def test_basis_defaults_and_refusals():
    assert resolve_basis(None, has_events=False) == "orders"
    assert resolve_basis(None, has_events=True) == "visits"
    assert resolve_basis("orders", has_events=True) == "orders"
    with pytest.raises(SegworkInputError, match="rfm.basis is visits but no events"):
        resolve_basis("visits", has_events=False)
    assert map_for_basis("ko_crm10", "visits") == "ko_crm_visits"
    assert map_for_basis("classic11", "visits") == "classic11"
    assert map_for_basis("ko_crm10", "orders") == "ko_crm10"
