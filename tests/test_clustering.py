"""The clustering stage: fit_all and run_clustering (the metrics are tested in test_evaluate.py)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from segwork.clustering import ClusterConfig, fit_all, run_clustering
from segwork.features import FeatureBuilder
from segwork.rfm import RFMSegmenter
from segwork.segmenters import KMeansSegmenter
from tests.test_segmenters import blobs

FAST = ClusterConfig(
    hdbscan_min_cluster_size_grid=(0.05, 0.1),
    hdbscan_min_samples_grid=(5,),
    stability_repeats=2,
    stability_pool=600,
    kmeans_seeds=(0, 1),
)


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
    assert {d["dominant"] for d in km["dominant_groups"]["ref"]} <= {"active", "lapsed"}
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


def test_reference_asked_for_display_names_is_summarised_by_ids() -> None:
    # run.py passes clone(segmenter).set_params(label_lang=lang): the summary must still hold ids
    rfm, _ = blobs(600)
    ref = RFMSegmenter(label_lang="ko")
    res = run_clustering(rfm, FAST, reference={"rfm": ref})
    ids = {s.id for s in ref.fit(rfm).map_.segments}
    s = res.summary
    assert set(s["references"]["rfm"]) <= ids
    for name in ("kmeans", "ward"):
        method = s["methods"][name]
        assert {d["dominant"] for d in method["dominant_groups"]["rfm"]} <= ids
        assert set(method["names"].values()) <= ids
    assert set(res.contingency["kmeans~rfm"].columns) <= ids
    assert set(res.labels["rfm_segment"]) <= ids
    assert ref.label_lang == "ko"  # the caller's segmenter is left as it was


def test_stage_config_holds_a_feature_builder_and_summarises_its_params() -> None:
    rfm, _ = blobs(400)
    cfg = ClusterConfig(
        features=FeatureBuilder(columns=("recency_days", "monetary"), scale="robust"),
        hdbscan_min_cluster_size_grid=(0.1,),
        hdbscan_min_samples_grid=(5,),
        stability_repeats=2,
        stability_pool=300,
        kmeans_seeds=(0, 1),
    )
    res = run_clustering(rfm, cfg)
    assert res.summary["config"]["features"] == {
        "columns": ["recency_days", "monetary"],
        "scale": "robust",
        "transformation": "log1p",
    }
    for seg in res.segmenters.values():
        assert seg.features is not cfg.features  # each method gets its own copy
        assert list(seg.builder_.get_feature_names_out()) == ["recency_days", "monetary"]
    assert not hasattr(cfg.features, "scaler_")
    json.dumps(res.summary)
