"""The journey-stage KPIs' current values per segment, computed from the customer table."""

from __future__ import annotations

import pandas as pd
import pytest

from segwork.kpi import STAGE_KPIS, kpi_table


def test_kpis_per_segment_on_a_hand_built_table():
    customers = pd.DataFrame(
        {
            "rfm_segment_id": ["vip", "vip", "vip", "new", "new"],
            "frequency": [4, 2, 1, 1, 1],
            "monetary": [400.0, 100.0, 50.0, 30.0, 10.0],
            "recency_days": [5, 15, 40, 3, 9],
        }
    )
    k = kpi_table(customers)
    assert k.loc["vip", "repeat_rate"] == pytest.approx(2 / 3)
    assert k.loc["vip", "avg_order_value"] == pytest.approx(550 / 7)
    assert k.loc["vip", "median_days_since_last_order"] == 15
    assert k.loc["new", "repeat_rate"] == 0.0
    assert k.loc["new", "revenue_per_customer"] == 20.0


def test_every_stage_has_kpis_that_are_computed():
    customers = pd.DataFrame(
        {"rfm_segment_id": ["a"], "frequency": [2], "monetary": [5.0], "recency_days": [1]}
    )
    columns = set(kpi_table(customers).columns)
    assert all(kpis and set(kpis) <= columns for kpis in STAGE_KPIS.values())
