"""profile.py: group statistics and cards on small hand-built frames, and on a real run's output."""

import json

import pandas as pd
import pytest

from segwork import profile
from segwork.report.cards import CardsView, cards_html
from segwork.summary import Method, dump

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
    summary = Method(
        status="ok", n_clusters=2, counts={"0": 2, "1": 2}, selection={}, sampled=False, notes=[],
        dominant_groups={"rfm": [{"cluster": "0", "size": 2, "dominant": "new", "share": 1.0},
                                 {"cluster": "1", "size": 2, "dominant": "vip", "share": 1.0}]},
        rules={"fidelity": 1.0, "max_depth": 3, "n_sample": 4,
               "rules": {"1": [{"rule": "frequency >= 6", "precision": 1.0, "coverage": 1.0, "n": 2}]}},
        names={"0": "new", "1": "vip"},
    )  # fmt: skip
    cards = profile.cluster_cards(customers, top, "kmeans", summary, SEGMAP, "ko")
    assert [c.group for c in cards] == ["1", "0"]  # by revenue share, like every segment list
    vip, new = cards
    assert vip.name == "군집 1: VIP (100%)" and vip.rules == ("frequency >= 6",) and not vip.note
    assert vip.actions == ("감사",) and vip.top_countries == ("UK",)
    assert new.name == "군집 0: 신규 고객 (100%)" and "짧은 규칙이 없습니다" in new.note  # no rule
    assert len({c.name for c in cards}) == len(cards)  # names unique within a method
    degenerate = summary.model_copy(update={"status": "degenerate"})
    assert profile.cluster_cards(customers, top, "kmeans", degenerate, SEGMAP, "ko") == []
    assert profile.cluster_cards(customers, top, "kmeans", None, SEGMAP, "ko") == []


def test_card_html_escapes_data(customers, top):
    cards = profile.segment_cards(customers, top, SEGMAP, "en")
    text = cards_html(cards, "en")
    assert "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "2 customers (50.0%)" in text
    assert repr(CardsView(cards, "en")).splitlines()[0] == "VIP: 2 · 50.0% · 80.0%"


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


def _without_timings(obj):
    """A clustering summary without 'seconds' and with floats to 10 digits (BLAS noise differs)."""
    if isinstance(obj, dict):
        return {k: _without_timings(v) for k, v in obj.items() if k != "seconds"}
    if isinstance(obj, list):
        return [_without_timings(v) for v in obj]
    if isinstance(obj, float):
        return float(f"{obj:.10g}")
    return obj


def test_cluster_cards_from_the_real_stage_carry_stage_kpi_and_actions(tmp_path):
    # The live path: pipeline.compute -> run_clustering with the RFM reference run.py builds (with
    # label_lang set), summary through JSON, then the cards the report shows.
    from segwork.artifacts import customers_frame, segment_map_dict, top_items
    from segwork.config import RunParams
    from segwork.pipeline import compute

    summaries = {}
    for lang in ("ko", "en"):
        params = RunParams(synth_customers=600, data_cache=str(tmp_path), lang=lang, report=False)
        res = compute(params)
        prep, clus, summary = res.prep, res.clusters, res.summary
        summary = json.loads(dump(summary))
        clustering = summary["clustering"]
        summaries[lang] = _without_timings(clustering)
        customers = customers_frame(prep, clus)
        top = top_items(prep, customers)
        segmap = segment_map_dict(prep)
        by_id = {s["id"]: s for s in segmap["segments"]}
        checked = 0
        for method in ("kmeans", "ward", "hdbscan"):
            ms = clustering["methods"][method]
            if ms["status"] != "ok":
                continue
            typed = Method.model_validate(ms)
            cards = profile.cluster_cards(customers, top, method, typed, segmap, lang)
            assert cards
            for card in cards:
                if card.group == "-1":
                    assert not card.actions
                    continue
                assert card.stage and card.kpi and card.actions, (method, card)
            dominant = {d["cluster"]: d["dominant"] for d in ms["dominant_groups"]["rfm"]}
            assert set(dominant.values()) <= set(by_id)  # ids, never display names
            for card in cards:
                if card.group == "-1":
                    continue
                seg = by_id[dominant[card.group]]
                assert card.stage == profile._t(seg["stage"], lang)
                assert card.kpi == seg["kpi"][lang]
                assert card.actions == tuple(seg["actions"][lang])
                assert card.name.split(": ", 1)[1].startswith(seg[lang] + " (")
                checked += 1
        assert checked >= 4
    assert summaries["ko"] == summaries["en"]  # computed results do not depend on the language


def test_cluster_name_turns_stored_ids_and_codes_into_words():
    labels = {"vip": "VIP", "new": "신규 고객"}
    summary = Method(
        status="ok", n_clusters=3, counts={}, selection={}, sampled=False, notes=[],
        names={"0": "new", "1": "recent+frequent+high_spend", "2": "legacy text"},
    )  # fmt: skip
    assert profile.cluster_name(summary, "0", labels, "ko") == "신규 고객"
    assert profile.cluster_name(summary, "1", labels, "en") == "recent, frequent, high-spend"
    assert profile.cluster_name(summary, "1", labels, "ko") == "최근 구매, 자주 구매, 고액"
    assert profile.cluster_name(summary, "2", labels, "en") == "legacy text"
    assert profile.cluster_name(summary, "-1", labels, "en") == "Unclustered (outliers)"
