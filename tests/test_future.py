"""report/future.py: the future-state sentences and the back-test table, in both languages."""

from __future__ import annotations

import pytest

from segwork.report import future
from segwork.summary import Prediction

SCORES = {
    "customers": 4_000,
    "buyers": 1_600,
    "auc": 0.7412,
    "brier": 0.2131,
    "mae_orders": 1.04,
    "mae_revenue": 562.8,
    "total_orders_ratio": 0.79,
    "total_revenue_ratio": 0.69,
    "top_n": 400,
    "top_hits": 330,
    "calibration": [
        {"lower": 0.0, "upper": 0.1, "customers": 900, "predicted": 0.05, "observed": 0.06},
        {"lower": 0.9, "upper": 1.0, "customers": 300, "predicted": 0.95, "observed": 0.93},
    ],
}
STATE = {
    "customers": 1_203,
    "mean_p_purchase": 0.64,
    "expected_orders": 2_100.4,
    "expected_revenue": 310_000.0,
    "at_risk": 212,
    "at_risk_revenue": 48_000.4,
}


def prediction(backtest: bool = True) -> Prediction:
    """A validated prediction block with one segment and one cluster."""
    return Prediction.model_validate(
        {
            "horizon_days": 90,
            "at_risk_below": 0.3,
            "model": "gradient_boosting" if backtest else "bgnbd",
            "features": ["recency_days"],
            "customers": 4_324,
            "backtest": {
                "train_as_of": "2011-06-13",
                "score_as_of": "2011-09-11",
                "model": SCORES,
                "baselines": {"recency": {**SCORES, "auc": 0.68, "top_hits": 264}},
            }
            if backtest
            else None,
            "segments": {"vip": STATE, "new": {**STATE, "customers": 10, "at_risk": 0}},
            "clusters": {"kmeans": {"0": STATE}},
            "seconds": {"features": 1.0},
        }
    )


def test_segment_sentence_in_english_and_korean() -> None:
    """The issue's example sentence, word for word, and its Korean twin with the same figures."""
    state = prediction().segments["vip"]
    assert future.future_sentence("VIP", state, 90, "en") == (
        "VIP: 1,203 customers, 64% likely to buy in 90 days, 212 at risk holding 48,000 of "
        "the last 90 days' revenue"
    )
    ko = future.future_sentence("VIP", state, 90, "ko")
    assert ko.startswith("VIP: 고객 1,203명") and "64%" in ko and "212명" in ko and "48,000" in ko


def test_segment_table_follows_map_order_and_names() -> None:
    """Rows in segment-map order, display names from the map, figures per column."""
    table = future.segment_future_table(prediction(), {"new": "New", "vip": "VIP"}, "en")
    assert table["Segment"].tolist() == ["New", "VIP"]
    vip = table.set_index("Segment").loc["VIP"]
    assert vip["Customers"] == 1_203 and vip["Likely to buy"] == "64%"
    assert vip["At risk"] == 212 and vip["Last-window revenue of those at risk"] == "48,000"
    assert future.cluster_future_table(prediction(), "kmeans", "ko")["군집"].tolist() == ["0"]
    assert future.cluster_future_table(prediction(), "ward", "en").empty


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_backtest_table_and_sentence(lang: str) -> None:
    """Model first, then baselines, with the top-N hits in words; the sentence quotes the model."""
    table = future.backtest_table(prediction(), lang)
    assert len(table) == 2
    first = table.iloc[0].tolist()
    assert "330" in first[1] and "400" in first[1] and "82%" in first[1]
    assert first[2] == 0.741 and first[3] == 0.213
    sentence = future.backtest_sentence(prediction(), "2011-12-10", lang)
    assert "400" in sentence and "330" in sentence and "40%" in sentence  # base rate 1,600/4,000
    assert "2011-06-13" in sentence and "2011-12-10" in sentence


def test_without_backtest_says_so() -> None:
    """Short history: no table, and a sentence naming the fallback instead of a figure."""
    pred = prediction(backtest=False)
    assert future.backtest_table(pred, "en").empty
    assert future.calibration_frame(pred).empty
    assert future.backtest_sentence(pred, "2011-12-10", "en") == (
        "Not back-tested: too little history for a 90-day horizon; the predictions use "
        "BG/NBD + Gamma-Gamma."
    )
    assert future.calibration_frame(prediction())["customers"].tolist() == [900, 300]
