"""fit_all, agreement metrics, contingency, stability, cluster rules and run_clustering."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

from segwork.cluster import HDBSCANSegmenter, KMeansSegmenter, WardSegmenter
from segwork.compare import (
    ClusterConfig,
    agreement,
    bootstrap_stability,
    cluster_rules,
    contingency,
    dominant_groups,
    fit_all,
    run_clustering,
    seed_sensitivity,
    suggest_names,
)
from tests.test_cluster import blobs

FAST = ClusterConfig(
    hdbscan_min_cluster_size_grid=(0.05, 0.1),
    hdbscan_min_samples_grid=(5,),
    stability_repeats=2,
    stability_pool=600,
    kmeans_seeds=(0, 1),
)


def test_agreement_matches_sklearn_on_known_contingency() -> None:
    # A: 4 customers in cluster 0, 4 in cluster 1. B splits cluster 0 as 3 VIP + 1 new.
    a = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    b = np.array(["VIP", "VIP", "VIP", "new", "new", "new", "new", "new"])
    table = contingency(a, b)
    assert table.loc[0, "VIP"] == 3 and table.loc[0, "new"] == 1 and table.loc[1, "new"] == 4
    ari, ami = agreement({"a": a, "b": b, "c": a[::-1].copy()})
    assert ari.loc["a", "b"] == pytest.approx(adjusted_rand_score(a, b))
    assert ami.loc["b", "a"] == pytest.approx(adjusted_mutual_info_score(a, b))
    assert ari.loc["a", "c"] == pytest.approx(adjusted_rand_score(a, a[::-1]))
    assert ari.loc["a", "a"] == 1.0
    dom = dominant_groups(a, b)
    assert dom[0]["dominant"] == "VIP" and dom[0]["share"] == 0.75
    assert dom[0]["text"] == "cluster 0 = 75% VIP"
    assert suggest_names(pd.DataFrame(), a, b) == {"0": "VIP (75%)", "1": "new (100%)"}


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


class _StringSegmenter:
    """A stand-in reference segmenter with string labels (RFMSegmenter's convention)."""

    def fit(self, rfm: pd.DataFrame) -> _StringSegmenter:
        self.labels_ = np.where(rfm.recency_days.to_numpy() < 100, "active", "lapsed")
        return self


def test_fit_all_runs_everything_through_one_loop() -> None:
    rfm, _ = blobs(600)
    segs = {"kmeans": KMeansSegmenter(), "ref": _StringSegmenter()}
    labels = fit_all(segs, rfm)
    assert set(labels) == {"kmeans", "ref"} and labels["ref"].dtype.kind == "U"
    assert len(labels["kmeans"]) == 600


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


def test_run_clustering_summary_is_complete_and_json() -> None:
    rfm, truth = blobs(800)
    messages: list[str] = []
    truth_s = pd.Series(truth, index=rfm.index)
    res = run_clustering(
        rfm, FAST, reference={"ref": _StringSegmenter()}, truth=truth_s, progress=messages.append
    )
    assert list(res.labels.columns[:4]) == [
        "kmeans_cluster", "ward_cluster", "hdbscan_cluster", "hdbscan_probability",
    ]  # fmt: skip
    assert res.labels.index.equals(rfm.index)
    s = res.summary
    json.dumps(s)
    assert set(s["methods"]) == {"kmeans", "ward", "hdbscan"}
    assert "ref" in s["agreement"]["ari"]["kmeans"]
    km = s["methods"]["kmeans"]
    assert km["selection"]["chosen_k"] == 4 and km["stability"]["mean_ari"] > 0.95
    assert "seed_sensitivity" in km and km["rules"]["fidelity"] > 0.9
    assert km["dominant_groups"]["ref"][0]["text"].startswith("cluster 0 = ")
    assert s["truth"]["any_reaches_0_8"] and s["truth"]["best_ari"] > 0.99
    assert "kmeans~ref" in res.contingency
    assert any("fitting hdbscan" in m for m in messages)


def test_run_clustering_survives_degenerate_input() -> None:
    rfm = blobs(3)[0]
    messages: list[str] = []
    res = run_clustering(rfm, FAST, progress=messages.append)
    methods = res.summary["methods"]
    assert methods["hdbscan"]["status"] == "degenerate"
    assert (res.labels["hdbscan_cluster"] == -1).all()
    assert any("HDBSCAN" in m for m in messages)
    assert methods["kmeans"]["status"] in ("ok", "degenerate")


def _rfm_from_transactions(tr: pd.DataFrame) -> pd.DataFrame:
    """The textbook RFM table (4 cleaning rules) from raw synthetic lines."""
    keep = (
        tr.customer_id.notna()
        & ~tr.invoice_id.astype(str).str.startswith("C")
        & (tr.quantity > 0)
        & (tr.unit_price > 0)
    )
    t = tr[keep].assign(amount=lambda d: d.quantity * d.unit_price)
    as_of = t.invoice_date.max().normalize() + pd.Timedelta(days=1)
    g = t.groupby("customer_id")
    first, last = g.invoice_date.min(), g.invoice_date.max()
    out = pd.DataFrame(
        {
            "recency_days": (as_of - last.dt.normalize()).dt.days.astype("int64"),
            "frequency": g.invoice_id.nunique().astype("int64"),
            "monetary": g.amount.sum(),
            "tenure_days": (as_of - first.dt.normalize()).dt.days.astype("int64"),
        }
    )
    out.index = out.index.astype(str)
    return out


def test_synthetic_personas_recovered_by_at_least_one_method() -> None:
    synth = pytest.importorskip("segwork.synth")
    tr, personas = synth.generate(synth.SynthSpec(n_customers=3000, seed=11))
    rfm = _rfm_from_transactions(tr)
    truth = personas.set_index(personas.customer_id.astype(str)).persona
    res = run_clustering(rfm, FAST, truth=truth)
    assert res.summary["truth"]["any_reaches_0_8"], res.summary["truth"]
