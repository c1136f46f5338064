"""evaluate.py: agreement, contingency, dominant groups, names, rules and stability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

from segwork.evaluate import (
    agreement,
    bootstrap_stability,
    cluster_rules,
    contingency,
    describe_outliers,
    dominant_groups,
    profile_code,
    seed_sensitivity,
    suggest_names,
    truth_agreement,
)
from segwork.segmenters import HDBSCANSegmenter, KMeansSegmenter, WardSegmenter
from tests.test_segmenters import blobs


def test_agreement_matches_sklearn_on_known_contingency() -> None:
    # A: 4 customers in cluster 0, 4 in cluster 1. B splits cluster 0 as 3 vip + 1 new.
    a = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    b = np.array(["vip", "vip", "vip", "new", "new", "new", "new", "new"])
    table = contingency(a, b)
    assert table.loc[0, "vip"] == 3 and table.loc[0, "new"] == 1 and table.loc[1, "new"] == 4
    ari, ami = agreement({"a": a, "b": b, "c": a[::-1].copy()})
    assert ari.loc["a", "b"] == pytest.approx(adjusted_rand_score(a, b))
    assert ami.loc["b", "a"] == pytest.approx(adjusted_mutual_info_score(a, b))
    assert ari.loc["a", "c"] == pytest.approx(adjusted_rand_score(a, a[::-1]))
    assert ari.loc["a", "a"] == 1.0
    dom = dominant_groups(a, b)
    assert dom[0] == {"cluster": 0, "size": 4, "dominant": "vip", "share": 0.75}
    assert dom[1] == {"cluster": 1, "size": 4, "dominant": "new", "share": 1.0}
    # names are ids (display text is the report's job); noise stays "noise"
    assert suggest_names(pd.DataFrame(), a, b) == {"0": "vip", "1": "new"}
    assert suggest_names(pd.DataFrame(), a - 1, b) == {"-1": "noise", "0": "new"}


def test_profile_codes_without_a_reference() -> None:
    rfm = pd.DataFrame(
        {
            "recency_days": [1, 2, 300, 400],
            "frequency": [9, 8, 1, 1],
            "monetary": [900.0, 800.0, 10.0, 20.0],
        }
    )
    labels = np.array([0, 0, 1, -1])
    assert profile_code(rfm, labels, 0) == "recent+frequent+high_spend"
    assert profile_code(rfm, labels, 1) == "lapsed+infrequent+low_spend"
    assert suggest_names(rfm, labels) == {
        "-1": "noise",
        "0": "recent+frequent+high_spend",
        "1": "lapsed+infrequent+low_spend",
    }


def test_truth_agreement_scores_only_known_customers() -> None:
    idx = pd.Index(["a", "b", "c", "d", "e"])
    truth = pd.Series(["x", "x", "y", "y"], index=["a", "b", "c", "d"])  # e has no persona
    labels = {"kmeans": np.array([0, 0, 1, 1, 1]), "ref": np.array([0, 1, 0, 1, 0])}
    out = truth_agreement(labels, idx, truth, ("kmeans",))
    assert out["ari_vs_truth"]["kmeans"] == 1.0 and out["n_matched"] == 4
    assert out["ari_vs_truth"]["ref"] == pytest.approx(
        adjusted_rand_score([0, 0, 1, 1], [0, 1, 0, 1])
    )
    assert out["best_method"] == "kmeans" and out["any_reaches_0_8"]


def test_cluster_rules_recover_a_known_rule() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    rfm = pd.DataFrame(
        {
            "recency_days": rng.integers(0, 365, n),
            "frequency": rng.integers(1, 15, n),
            "monetary": rng.uniform(10, 5000, n),
        }
    )
    labels = ((rfm.recency_days <= 30) & (rfm.frequency >= 6)).astype(int).to_numpy()
    out = cluster_rules(rfm, labels, max_depth=2)
    assert out["fidelity"] == 1.0
    best = out["rules"]["1"][0]
    assert best["rule"] == "recency_days <= 30 and frequency >= 6"
    assert best["precision"] == 1.0 and best["coverage"] == 1.0


def test_stability_is_high_on_clear_blobs() -> None:
    rfm, _ = blobs(1000)
    for seg in (
        KMeansSegmenter(),
        WardSegmenter(),
        HDBSCANSegmenter(min_cluster_size_grid=(0.05,)),
    ):
        seg.fit(rfm)
        stab = bootstrap_stability(seg, rfm, repeats=3, pool_size=800)
        assert stab["mean_ari"] > 0.95 and len(stab["pairwise_ari"]) == 3
    km = KMeansSegmenter().fit(rfm)
    assert seed_sensitivity(km, rfm, seeds=(0, 1, 2), pool_size=800)["mean_ari"] > 0.99


def _spenders(n_small: int, n_big: int) -> pd.DataFrame:
    """n_small customers spending 100 (5 orders) and n_big spending 10,000 (60 orders)."""
    n = n_small + n_big
    return pd.DataFrame(
        {
            "recency_days": [30] * n_small + [3] * n_big,
            "frequency": [5] * n_small + [60] * n_big,
            "monetary": [100.0] * n_small + [10_000.0] * n_big,
        },
        index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"),
    )


def test_outliers_that_are_few_big_buyers_are_described_as_such() -> None:
    rfm = _spenders(95, 5)
    labels = np.array([0] * 95 + [-1] * 5)
    o = describe_outliers(rfm, labels)
    assert o["code"] == "outliers_big_buyers"
    assert o["count"] == 5 and o["share"] == pytest.approx(0.05)
    assert o["revenue_share"] == pytest.approx(50_000 / 59_500)
    assert o["median"] == {"recency_days": 3.0, "frequency": 60.0, "monetary": 10_000.0}
    assert o["overall_median"]["monetary"] == 100.0
    assert o["profile"] == "recent+frequent+high_spend"
    assert o["top_spenders_share"] == 1.0  # the top 1% of spenders are all outliers


def test_outliers_small_buyers_mixed_and_none() -> None:
    rfm = _spenders(95, 5)
    small = describe_outliers(rfm, np.array([-1] * 20 + [0] * 75 + [1] * 5))
    assert small["code"] == "outliers_small_buyers" and small["count"] == 20
    mixed = describe_outliers(rfm, np.array([-1] * 80 + [0] * 15 + [-1] * 5))
    assert mixed["code"] == "outliers_mixed"
    none = describe_outliers(rfm, np.zeros(100, dtype=int))
    assert none["code"] == "outliers_none" and none["profile"] is None
    assert none["median"]["monetary"] is None
