"""report/clusterwords.py: why each k, HDBSCAN's verdict and outliers, in both languages."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from segwork.clustering import ClusterConfig, run_clustering
from segwork.report import clusterwords as cw
from segwork.summary import clustering_block
from tests.test_segmenters import blobs

FAST = ClusterConfig(
    hdbscan_min_cluster_size_grid=(0.05, 0.1),
    hdbscan_min_samples_grid=(5,),
    stability_repeats=2,
    stability_pool=600,
    kmeans_seeds=(0, 1),
)


@pytest.fixture(scope="module")
def raw() -> dict:
    """The clustering summary of four planted groups (as run_clustering returns it)."""
    return run_clustering(blobs(800)[0], FAST).summary


def summary_of(raw: dict) -> SimpleNamespace:
    """What the helpers read: an object with a validated ``clustering`` block."""
    return SimpleNamespace(clustering=clustering_block(raw))


def with_k2_note_and_no_structure(raw: dict) -> dict:
    """The same summary as if k = 2 were best statistically and HDBSCAN found no structure."""
    out = {**raw, "methods": {k: dict(v) for k, v in raw["methods"].items()}}
    km = out["methods"]["kmeans"]
    note = {
        "code": "k2_best_statistically",
        "params": {"method": "K-Means", "score": "silhouette", "value_k2": 0.432, "chosen_k": 4,
                   "value_chosen": 0.339, "k_min": 3, "k_max": 8},
        "message": "",
    }  # fmt: skip
    km["notes"] = [*km["notes"], note]
    hd = out["methods"]["hdbscan"]
    hd["structure"] = {"verdict": "none", "dbcv": 0.02, "threshold": 0.25}
    hd["silhouette"] = {**hd["silhouette"], "counted": False}  # as run_clustering sets it
    hd["outliers"] = {
        **hd["outliers"],
        "code": "outliers_big_buyers",
        "count": 650,
        "share": 0.15,
        "revenue_share": 0.63,
        "median": {"recency_days": 10.0, "frequency": 12.0, "monetary": 5400.0},
        "overall_median": {"recency_days": 50.0, "frequency": 2.0, "monetary": 650.0},
        "top_spenders_share": 0.9,
    }
    out["segment_methods"] = ["kmeans", "ward", "gmm"]
    return out


def test_why_k_states_the_range_share_stability_and_score(raw: dict) -> None:
    s = summary_of(raw)
    (line,) = cw.why_k(s, "kmeans", "en")
    assert line.startswith("K-Means: k = 4, chosen in 3-8")
    assert "at least 2% of customers" in line and "silhouette 0.9" in line
    gmm = cw.why_k(s, "gmm", "en")[0]
    assert gmm.startswith("Gaussian mixture: k = 4") and "BIC " in gmm
    ko = cw.why_k(s, "kmeans", "ko")[0]
    assert "3~8 범위에서 고른 군집 수는 4개" in ko
    assert "3-8" in cw.rule_sentence(s, "en") and "2%" in cw.rule_sentence(s, "en")


def test_why_k_says_when_k2_is_best_statistically(raw: dict) -> None:
    s = summary_of(with_k2_note_and_no_structure(raw))
    lines = cw.why_k(s, "kmeans", "en")
    assert len(lines) == 2
    assert lines[1] == (
        "Statistically k = 2 fits best (silhouette 0.432 against 0.339 at k = 4), but two "
        "groups are too coarse for campaigns, so k = 4 is used."
    )
    assert "군집 2개가 가장 잘 맞지만" in cw.why_k(s, "kmeans", "ko")[1]
    raw2 = with_k2_note_and_no_structure(raw)
    raw2["methods"]["ward"]["notes"] = [
        {
            "code": "no_stable_k",
            "params": {"method": "Ward", "stability_floor": 0.75},
            "message": "",
        }
    ]
    (_, extra) = cw.why_k(summary_of(raw2), "ward", "en")
    assert extra.startswith("Ward: no k in range reached stability 0.75")


def test_structure_verdict_and_outliers_in_words(raw: dict) -> None:
    found = summary_of(raw)
    assert cw.structure_sentence(found, "en").startswith("HDBSCAN found clear density structure")
    none = summary_of(with_k2_note_and_no_structure(raw))
    assert cw.structure_sentence(none, "en") == (
        "No clear density structure in these features (DBCV 0.02 below 0.25): "
        "HDBSCAN's groups are not presented as segments."
    )
    assert "뚜렷한 밀도 구조가 없습니다" in cw.structure_sentence(none, "ko")
    text = cw.outliers_sentence(none, "en")
    assert text.startswith("650 customers (15%) are far from any dense group and hold 63%")
    assert "wholesale" in text and "median 12 orders and 5,400 spend" in text
    assert "도매" in cw.outliers_sentence(none, "ko")
    assert "noise" not in text.lower()
    assert cw.segment_methods(none) == ["kmeans", "ward", "gmm"]


def test_tables_mark_the_chosen_k_and_what_counts(raw: dict) -> None:
    s = summary_of(with_k2_note_and_no_structure(raw))
    table = cw.k_table(s, "kmeans", "en")
    assert list(table.index) == [2, 3, 4, 5, 6, 7, 8]
    assert table.loc[4, "Chosen"] == "yes" and (table["Chosen"] == "yes").sum() == 1
    assert table.loc[2, "Eligible"] == "no"  # below the range
    assert {"Silhouette", "Stability", "Smallest cluster"} <= set(table.columns)
    sil = cw.silhouette_table(s, "en").set_index("Method")
    assert sil.loc["HDBSCAN", "Counted"] == "not counted: no clear density structure"
    assert sil.loc["K-Means", "Counted"] == "yes"
    assert "0.80" in cw.published_sentence(s, "en") and "2023" in cw.published_sentence(s, "en")
    assert cw.best_sentence(s, "en").startswith("Best counted silhouette: ")


def test_nothing_to_say_without_clustering() -> None:
    s = SimpleNamespace(clustering=None)
    assert cw.why_k(s, "kmeans", "en") == [] and cw.structure_sentence(s, "en") is None
    assert cw.k_table(s, "kmeans", "en").empty and cw.silhouette_table(s, "ko").empty
    assert cw.rule_sentence(s, "en") is None and cw.outliers_sentence(s, "en") is None
