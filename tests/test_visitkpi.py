"""Stage KPIs on the visits basis, on a hand-built customer table."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from segwork.maps import load_map
from segwork.visitkpi import KPIS, STAGE_KPIS, kpi_values, segment_kpis, stage_kpis


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "orders": [0, 0, 0, 1, 2, 3],
            "visits": [2, 1, 0, 4, 6, 9],
            "carts_abandoned": [1, 0, 0, 1, 0, 0],
            "carts_decided": [1, 0, 0, 2, 1, 0],
            "last_order_days": [math.nan, math.nan, math.nan, 40, 10, 200],
            "monetary": [0.0, 0.0, 0.0, 50.0, 300.0, 900.0],
            "rfm_segment_id": ["win_now", "new", "new", "needs_attention", "vip", "churned_repeat"],
        },
        index=["a", "b", "c", "d", "e", "f"],
    )


def test_kpi_values(table):
    v = kpi_values(table, repeat_window_days=90)
    assert v == {
        "visit_to_first_order": 0.6,  # 3 of the 5 visitors ordered ('c' never visited)
        "second_order_rate": 0.6667,  # 2 of 3 buyers ordered twice
        "cart_recovery": 0.5,  # 4 decided carts, 2 abandoned
        "recent_repeat_rate": 0.5,  # of 2 repeat buyers, 'e' ordered within 90 days
        "revenue_per_repeat_customer": 600.0,  # (300 + 900) / 2
    }


def test_stage_kpis_group_by_stage(table):
    got = stage_kpis(table, 90)
    assert list(got) == ["acquisition", "conversion", "retention"]
    assert {s: list(k) for s, k in got.items()} == {s: list(k) for s, k in STAGE_KPIS.items()}
    assert got["conversion"]["cart_recovery"] == 0.5
    assert set(KPIS) == {k for ks in STAGE_KPIS.values() for k in ks}


def test_segment_kpis_use_each_segments_stage_and_members(table):
    got = segment_kpis(table, load_map("ko_crm_visits"), 90)
    assert got["vip"] == {"recent_repeat_rate": 1.0, "revenue_per_repeat_customer": 300.0}
    assert got["churned_repeat"] == {
        "recent_repeat_rate": 0.0,
        "revenue_per_repeat_customer": 900.0,
    }
    assert got["win_now"] == {"visit_to_first_order": 0.0}
    assert got["needs_attention"] == {"second_order_rate": 0.0, "cart_recovery": 0.5}
    # an empty segment has no value, not 0
    assert got["potential_vip"] == {"second_order_rate": None, "cart_recovery": None}
    assert got["cart_abandoners"] == {"visit_to_first_order": None}


def test_kpis_need_the_visit_columns():
    with pytest.raises(ValueError, match="run with --events"):
        kpi_values(pd.DataFrame({"orders": [1]}))


def test_segment_kpis_from_the_artefact_dict(table):
    smap = load_map("ko_crm_visits")
    as_dict = {"segments": [{"id": s.id, "stage": s.stage} for s in smap.segments]}
    assert segment_kpis(table, as_dict, 90) == segment_kpis(table, smap, 90)
