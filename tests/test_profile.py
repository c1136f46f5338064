"""profile.py: group statistics and cards on small hand-built frames with known answers."""

import pandas as pd
import pytest

from segwork import profile

SEGMAP = {
    "segments": [
        {"id": "vip", "ko": "VIP", "en": "VIP", "stage": "retention",
         "kpi": {"ko": "재구매율", "en": "Repeat rate"}, "actions": {"ko": ["감사"], "en": ["Thank them"]}},
        {"id": "new", "ko": "신규 고객", "en": "New customers", "stage": "acquisition",
         "kpi": {"ko": "두 번째 구매", "en": "Second order"}, "actions": {"ko": ["쿠폰"], "en": ["Coupon"]}},
        {"id": "lost", "ko": "이탈", "en": "Lost", "stage": "retention", "kpi": {}, "actions": {}},
    ]
}  # fmt: skip


@pytest.fixture
def customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "recency_days": [1, 3, 100, 200],
            "frequency": [10, 6, 1, 1],
            "monetary": [600.0, 200.0, 150.0, 50.0],
            "rfm_segment_id": ["vip", "vip", "new", "new"],
            "kmeans_cluster": [1, 1, 0, 0],
        },
        index=pd.Index(["a", "b", "c", "d"], name="customer_id"),
    )


@pytest.fixture
def top() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "scope": ["rfm", "rfm", "rfm", "kmeans"],
            "group": ["vip", "vip", "new", "1"],
            "kind": ["country", "country", "product", "country"],
            "rank": [2, 1, 1, 1],
            "name": ["France", "UK", "<img src=x onerror=alert(1)>", "UK"],
            "revenue": [10.0, 700.0, 5.0, 800.0],
            "customers": [1, 2, 1, 2],
        }
    )


def test_group_stats_known_answers(customers):
    s = profile.group_stats(customers, "rfm_segment_id")
    assert list(s.index) == ["vip", "new"]  # equal sizes: higher revenue first
    assert s.loc["vip", "customers"] == 2 and s.loc["vip", "revenue"] == 800.0
    assert s.loc["vip", "customer_share"] == 0.5
    assert s.loc["vip", "revenue_share"] == pytest.approx(0.8)
    assert s.loc["new", "median_recency_days"] == 150.0
    assert s.loc["vip", "median_frequency"] == 8.0
    assert s.loc["new", "median_monetary"] == 100.0


def test_segment_cards_carry_stage_kpi_actions_and_top_items(customers, top):
    cards = profile.segment_cards(customers, top, SEGMAP, "en")
    assert [c.group for c in cards] == ["vip", "new"]  # empty 'lost' has no card
    vip = cards[0]
    assert vip.name == "VIP" and vip.stage == "Retention" and vip.kpi == "Repeat rate"
    assert vip.actions == ("Thank them",)
    assert vip.top_countries == ("UK", "France")  # by rank
    assert cards[1].top_products == ("<img src=x onerror=alert(1)>",)
    ko = profile.segment_cards(customers, top, SEGMAP, "ko")
    assert ko[1].name == "신규 고객" and ko[1].stage == "획득"


def test_segment_table_lists_empty_groups_too(customers):
    t = profile.segment_table(customers, SEGMAP, "en")
    assert list(t["name"]) == ["VIP", "New customers", "Lost"]
    assert list(t["customers"]) == [2, 2, 0]
    assert list(t["revenue_share"]) == [80.0, 20.0, 0.0]
    assert "Customers" in profile.localise(t, "en").columns


def test_cluster_cards_use_dominant_group_name_rules_and_actions(customers, top):
    summary = {
        "status": "ok",
        "dominant_groups": {"rfm": [{"cluster": 0, "dominant": "new", "share": 1.0},
                                    {"cluster": 1, "dominant": "vip", "share": 1.0}]},
        "rules": {"rules": {"1": [{"rule": "frequency >= 6", "precision": 1.0, "coverage": 1.0}]}},
        "names": {"0": "new (100%)", "1": "vip (100%)"},
    }  # fmt: skip
    cards = profile.cluster_cards(customers, top, "kmeans", summary, SEGMAP, "ko")
    assert [c.group for c in cards] == ["0", "1"]
    assert cards[1].name == "VIP (100%)" and cards[1].rules == ("frequency >= 6",)
    assert cards[1].actions == ("감사",) and cards[1].top_countries == ("UK",)
    assert (
        profile.cluster_cards(customers, top, "kmeans", {"status": "degenerate"}, SEGMAP, "ko")
        == []
    )


def test_card_html_escapes_data(customers, top):
    cards = profile.segment_cards(customers, top, SEGMAP, "en")
    text = profile.cards_html(cards, "en")
    assert "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "2 customers (50.0%)" in text
    assert "VIP: 2 customers" in repr(profile.CardsView(cards, "en"))


def test_contingency_and_medians(customers):
    labels = {"vip": "VIP", "new": "New", "lost": "Lost"}
    tab = profile.contingency_table(customers, "kmeans_cluster", labels)
    assert (
        tab.loc["1", "VIP"] == 2
        and tab.loc["0", "New"] == 2
        and list(tab.columns) == ["VIP", "New"]
    )
    med = profile.cluster_medians(customers, "kmeans_cluster")
    assert med.loc["1", "monetary"] == 400.0
