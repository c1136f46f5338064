"""Segmenters: selection, sampled assignment, determinism, degenerate input, scikit-learn conventions."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.utils.estimator_checks import (
    check_do_not_raise_errors_in_init_or_set_params,
    check_estimator_cloneable,
    check_estimator_repr,
    check_estimators_unfitted,
    check_get_params_invariance,
    check_mixin_order,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from segwork.errors import SegworkInputError
from segwork.features import FeatureBuilder
from segwork.rfm import RFMSegmenter
from segwork.segmenters import (
    GaussianMixtureSegmenter,
    HDBSCANSegmenter,
    KMeansSegmenter,
    WardSegmenter,
    choose_k,
    fast_silhouettes,
    grid_stratified_sample,
    nearest_centroid,
    smallest_share,
)

CENTERS = np.array([[3, 30, 9000.0], [30, 8, 900.0], [200, 2, 60.0], [600, 15, 3000.0]])


def blobs(n: int = 1200, seed: int = 0, spread: float = 0.08) -> tuple[pd.DataFrame, np.ndarray]:
    """An RFM table with 4 well-separated groups in log space; returns (rfm, planted labels)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(CENTERS), n)
    z = np.log1p(CENTERS[truth]) + rng.normal(scale=spread, size=(n, 3))
    v = np.expm1(z)
    rfm = pd.DataFrame(
        {
            "recency_days": np.maximum(v[:, 0], 0).round().astype("int64"),
            "frequency": np.maximum(v[:, 1].round(), 1).astype("int64"),
            "monetary": v[:, 2],
            "tenure_days": (v[:, 0] + 100).astype("int64"),
        },
        index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"),
    )
    return rfm, truth


def fast_hdbscan(**kw: object) -> HDBSCANSegmenter:
    """A small-grid HDBSCAN for tests."""
    params = {"min_cluster_size_grid": (0.05, 0.1), "min_samples_grid": (5,)}
    params.update(kw)
    return HDBSCANSegmenter(**params)


@pytest.mark.parametrize("cls", [KMeansSegmenter, WardSegmenter])
def test_selection_finds_planted_k(cls: type) -> None:
    rfm, truth = blobs()
    seg = cls().fit(rfm)
    assert seg.selection_["chosen_k"] == 4
    assert seg.n_clusters_ == 4 and seg.status_ == "ok"
    assert adjusted_rand_score(truth, seg.labels_) > 0.99
    assert seg.selection_["scores"]["k"] == [
        2,
        3,
        4,
        5,
        6,
        7,
        8,
    ]  # curves from k = 2 to the top of 3-8


def test_kmeans_records_every_score() -> None:
    seg = KMeansSegmenter(k_range=(2, 6)).fit(blobs()[0])
    scores = seg.selection_["scores"]
    for key in ("silhouette", "calinski_harabasz", "davies_bouldin", "inertia"):
        assert len(scores[key]) == 5
    assert np.argmax(scores["silhouette"]) == 2  # k = 4


def test_hdbscan_finds_blobs_and_keeps_strengths() -> None:
    rfm, truth = blobs()
    seg = fast_hdbscan().fit(rfm)
    assert seg.n_clusters_ == 4
    assert adjusted_rand_score(truth[seg.labels_ >= 0], seg.labels_[seg.labels_ >= 0]) > 0.99
    assert seg.probabilities_.shape == (len(rfm),)
    assert ((seg.probabilities_ >= 0) & (seg.probabilities_ <= 1)).all()
    assert {"dbcv", "min_cluster_size", "min_samples"} <= set(seg.selection_["grid"][0])


def test_ward_sampled_fit_assigns_rest_to_nearest_centroid() -> None:
    rfm, truth = blobs(1500)
    seg = WardSegmenter(max_fit_size=400).fit(rfm)
    assert seg.sampled_ and any("400 of 1,500" in n["message"] for n in seg.notes_)
    idx = seg.sample_index_
    np.testing.assert_array_equal(seg.labels_[idx], seg.sample_labels_)
    rest = np.setdiff1d(np.arange(len(rfm)), idx)
    x = seg.builder_.transform(rfm)
    np.testing.assert_array_equal(seg.labels_[rest], nearest_centroid(x[rest], seg.centroids_))
    np.testing.assert_array_equal(seg.predict(rfm.iloc[rest]), seg.labels_[rest])
    assert seg.linkage_.shape == (399, 4)
    assert adjusted_rand_score(truth, seg.labels_) > 0.99


def test_kmeans_sampled_selection_final_fit_on_all() -> None:
    rfm, truth = blobs(1500)
    seg = KMeansSegmenter(selection_sample_size=500, silhouette_sample_size=300).fit(rfm)
    assert seg.sampled_ and seg.selection_["n_selection_sample"] == 500
    np.testing.assert_array_equal(seg.predict(rfm), seg.labels_)


def test_hdbscan_sampled_fit_matches_sample_and_reports_agreement() -> None:
    rfm, truth = blobs(1500)
    seg = fast_hdbscan(max_fit_size=600).fit(rfm)
    np.testing.assert_array_equal(seg.labels_[seg.sample_index_], seg.sample_labels_)
    agree = seg.selection_["assignment"]
    assert agree["n_checked"] == 900
    assert agree["agreement_with_approximate_predict"] >= 0.95
    rest = np.setdiff1d(np.arange(len(rfm)), seg.sample_index_)
    np.testing.assert_array_equal(seg.predict(rfm.iloc[rest]), seg.labels_[rest])
    exact = fast_hdbscan(max_fit_size=600, assignment="approximate_predict").fit(rfm)
    np.testing.assert_array_equal(exact.labels_[exact.sample_index_], seg.sample_labels_)


@pytest.mark.parametrize(
    "make",
    [
        lambda: KMeansSegmenter(selection_sample_size=500),
        lambda: WardSegmenter(max_fit_size=500),
        lambda: fast_hdbscan(max_fit_size=500),
    ],
)
def test_same_seed_same_labels(make: Callable[[], object]) -> None:
    rfm = blobs(1200, spread=0.3)[0]
    np.testing.assert_array_equal(make().fit(rfm).labels_, make().fit(rfm).labels_)


def test_fast_silhouette_matches_sklearn() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 3))
    labs = [rng.integers(0, k, 400) for k in (2, 3, 7)]
    ours = fast_silhouettes(x, labs)
    for lab, s in zip(labs, ours, strict=True):
        assert s == pytest.approx(silhouette_score(x, lab), abs=1e-5)


def test_grid_stratified_sample_covers_every_cell() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(size=5000)
    x = np.column_stack([a, a + rng.normal(scale=0.05, size=5000)])
    x = np.vstack([x, [[-3.0, 3.0]]])  # the only customer in its (low, high) grid cell
    idx = grid_stratified_sample(x, 300, seed=0, bins=4)
    assert len(idx) == 300 and len(np.unique(idx)) == 300
    assert 5000 in idx
    low = x[:, 0] < np.quantile(x[:, 0], 0.25)
    assert abs(low[idx].mean() - 0.25) < 0.02  # proportional allocation


def test_get_params_and_clone() -> None:
    seg = KMeansSegmenter(k_range=(3, 5), random_state=7)
    assert seg.get_params()["k_range"] == (3, 5)
    twin = clone(seg)
    assert twin.get_params() == seg.get_params() and twin is not seg
    for est in (WardSegmenter(distance_threshold=2.0), HDBSCANSegmenter(min_samples=3)):
        assert clone(est).get_params() == est.get_params()


def _tiny(values: list[list[float]]) -> pd.DataFrame:
    """An RFM table from explicit (recency, frequency, monetary) rows."""
    arr = np.asarray(values, dtype=float)
    return pd.DataFrame(
        {
            "recency_days": arr[:, 0].astype(int),
            "frequency": arr[:, 1].astype(int),
            "monetary": arr[:, 2],
        },
        index=pd.Index([f"c{i}" for i in range(len(arr))], name="customer_id"),
    )


@pytest.mark.parametrize(
    "rows",
    [
        [[5, 2, 100.0]],
        [[5, 2, 100.0], [9, 1, 10.0], [300, 7, 900.0]],
        [[5, 2, 100.0]] * 30,
    ],
    ids=["one-customer", "three-customers-k-up-to-10", "identical-values"],
)
@pytest.mark.parametrize("cls", [KMeansSegmenter, WardSegmenter, HDBSCANSegmenter])
def test_degenerate_input_labels_everyone_and_explains(rows: list, cls: type) -> None:
    rfm = _tiny(rows)
    seg = cls().fit(rfm)
    fallback = -1 if cls is HDBSCANSegmenter else 0
    if seg.status_ == "degenerate":
        assert (seg.labels_ == fallback).all() and seg.notes_
        assert (seg.predict(rfm) == fallback).all()
    else:  # three distinct customers: k=2 is the only valid candidate
        assert len(rows) == 3 and cls is not HDBSCANSegmenter
        assert seg.selection_["chosen_k"] == 2
    assert len(seg.labels_) == len(rows)


def test_hdbscan_all_noise_is_degenerate_not_an_error() -> None:
    rng = np.random.default_rng(3)
    rfm = _tiny(
        np.column_stack(
            [rng.uniform(1, 400, 60), rng.integers(1, 30, 60), rng.uniform(10, 5000, 60)]
        ).tolist()
    )
    seg = HDBSCANSegmenter(min_cluster_size=59, min_samples=5).fit(rfm)
    assert seg.status_ == "degenerate"
    assert (seg.labels_ == -1).all()
    assert any("noise" in n["message"] for n in seg.notes_)


# --------------------------------------------------------------------------- scikit-learn conventions

#: Every segmenter, unfitted, as a test would build it (HDBSCAN with a small grid for speed).
SEGMENTERS: dict[str, Callable[[], Any]] = {
    "kmeans": lambda: KMeansSegmenter(k_range=(2, 5)),
    "ward": lambda: WardSegmenter(k_range=(2, 5)),
    "hdbscan": lambda: fast_hdbscan(),
    "gmm": lambda: GaussianMixtureSegmenter(k_range=(2, 5)),
    "rfm": lambda: RFMSegmenter(),
}
CLUSTERERS = ("kmeans", "ward", "hdbscan", "gmm")  # the ones built on a FeatureBuilder


@pytest.mark.parametrize("name", SEGMENTERS)
def test_predict_before_fit_raises_not_fitted(name: str) -> None:
    seg = SEGMENTERS[name]()
    with pytest.raises(NotFittedError):
        seg.predict(blobs(50)[0])
    with pytest.raises(NotFittedError):  # a clone of a fitted segmenter is unfitted again
        clone(seg.fit(blobs(300)[0])).predict(blobs(50)[0])


@pytest.mark.parametrize("name", SEGMENTERS)
def test_fit_returns_self_keeps_params_and_learns_only_underscore_state(name: str) -> None:
    rfm = blobs(400)[0]
    seg = SEGMENTERS[name]()
    params = joblib.hash(seg.get_params(deep=True))
    before = set(vars(seg))
    assert seg.fit(rfm) is seg
    assert joblib.hash(seg.get_params(deep=True)) == params  # fit never edits a parameter
    learned = {a for a in set(vars(seg)) - before if not a.startswith("_")}
    assert learned and all(a.endswith("_") for a in learned), learned
    assert len(seg.labels_) == len(rfm)
    np.testing.assert_array_equal(SEGMENTERS[name]().fit_predict(rfm), seg.labels_)


@pytest.mark.parametrize("name", SEGMENTERS)
def test_predict_is_subset_invariant_and_survives_pickle(name: str) -> None:
    rfm = blobs(400, spread=0.3)[0]
    seg = SEGMENTERS[name]().fit(rfm)
    full = seg.predict(rfm)
    np.testing.assert_array_equal(seg.predict(rfm.iloc[:37]), full[:37])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(seg)).predict(rfm), full)


@pytest.mark.parametrize("name", SEGMENTERS)
def test_clone_keeps_every_param_deep(name: str) -> None:
    seg = SEGMENTERS[name]()
    if name in CLUSTERERS:
        seg.set_params(features=FeatureBuilder(columns=("monetary", "frequency"), scale="robust"))
    twin = clone(seg)
    assert twin is not seg
    assert twin.get_params(deep=True).keys() == seg.get_params(deep=True).keys()
    assert joblib.hash(twin.get_params(deep=True)) == joblib.hash(seg.get_params(deep=True))


@pytest.mark.parametrize("name", CLUSTERERS)
def test_nested_feature_params_reach_the_fit(name: str) -> None:
    rfm = blobs(400)[0]
    given = FeatureBuilder()
    seg = SEGMENTERS[name]().set_params(features=given)
    seg.set_params(features__transformation="yeo-johnson", features__scale="robust")
    assert seg.get_params()["features__transformation"] == "yeo-johnson"
    seg.fit(rfm)
    assert seg.builder_ is not given and not hasattr(given, "scaler_")  # the param stays unfitted
    assert seg.builder_.transformation == "yeo-johnson" and seg.builder_.power_ is not None
    assert type(seg.builder_.scaler_).__name__ == "RobustScaler"
    # features=None (the default) accepts the nested form too: it edits a default builder
    plain = SEGMENTERS[name]().set_params(features__columns=("recency_days", "monetary"))
    assert plain.get_params()["features"].get_params()["columns"] == ("recency_days", "monetary")
    assert list(plain.fit(rfm).builder_.get_feature_names_out()) == ["recency_days", "monetary"]


def test_features_default_and_explicit_builder_give_identical_labels() -> None:
    rfm = blobs(600, spread=0.3)[0]
    a = KMeansSegmenter().fit(rfm).labels_
    b = KMeansSegmenter(features=FeatureBuilder()).fit(rfm).labels_
    np.testing.assert_array_equal(a, b)


def _silhouette(est: Any, rfm: pd.DataFrame, y: object = None) -> float:
    """Scorer for a grid search over segmenters: silhouette of predicted labels on held-out rows."""
    x = est.builder_.transform(rfm)
    lab = est.predict(rfm)
    return float(silhouette_score(x, lab)) if len(np.unique(lab)) > 1 else -1.0


def test_grid_search_over_feature_and_model_params() -> None:
    rfm = blobs(600)[0]
    grid = {"n_clusters": [2, 4], "features__scale": ["standard", "robust"]}
    search = GridSearchCV(
        KMeansSegmenter(features=FeatureBuilder()),
        grid,
        scoring=_silhouette,
        cv=KFold(2, shuffle=True, random_state=0),
    ).fit(rfm)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_["n_clusters"] == 4
    assert search.best_estimator_.n_clusters_ == 4
    assert search.best_estimator_.builder_.scale == search.best_params_["features__scale"]


@pytest.mark.parametrize(
    "check",
    [
        check_parameters_default_constructible,
        check_no_attributes_set_in_init,
        check_get_params_invariance,
        check_set_params,
        check_estimator_cloneable,
        check_estimator_repr,
        check_do_not_raise_errors_in_init_or_set_params,
        check_estimators_unfitted,
        check_mixin_order,
    ],
    ids=lambda c: c.__name__,
)
@pytest.mark.parametrize("name", SEGMENTERS)
def test_sklearn_estimator_checks(name: str, check: Callable[[str, Any], None]) -> None:
    """The checks of sklearn.utils.estimator_checks that need no numeric-array fit.

    The others fit on random numpy arrays; these segmenters take the RFM table (a DataFrame
    with named columns), so the fit-based behaviour is checked above on RFM tables instead.
    """
    seg = SEGMENTERS[name]()
    check(type(seg).__name__, seg)


# --------------------------------------------------------------------------- choosing k for use


def test_choose_k_refuses_a_k_with_a_cluster_below_min_share() -> None:
    # k = 5 has the best silhouette but a cluster of 1% of customers: refused, k = 4 wins
    ks = [2, 3, 4, 5, 6]
    sil = [0.50, 0.40, 0.45, 0.60, 0.30]
    stab = [0.9] * 5
    shares = [0.40, 0.20, 0.10, 0.01, 0.05]
    k, notes = choose_k(ks, sil, stab, shares, (3, 6), min_share=0.02)
    assert k == 4
    codes = {c: p for c, p in notes}
    assert codes["score_win_small_cluster"]["k"] == 5
    assert codes["score_win_small_cluster"]["smallest_share"] == 0.01
    # k = 2 (0.50) is not best statistically: k = 5 (0.60) beats it, though it is refused
    assert "k2_best_statistically" not in codes
    # with a lower min_share, k = 5 is allowed
    assert choose_k(ks, sil, stab, shares, (3, 6), min_share=0.005)[0] == 5


def test_choose_k_honours_the_range_and_says_when_k2_is_best() -> None:
    ks = [2, 3, 4, 5]
    sil = [0.43, 0.34, 0.33, 0.32]
    stab = [0.98, 0.95, 0.90, 0.97]
    shares = [0.38, 0.17, 0.16, 0.09]
    k, notes = choose_k(ks, sil, stab, shares, (3, 5))
    assert k == 3
    (code, params), *_ = [n for n in notes if n[0] == "k2_best_statistically"]
    assert params["value_k2"] == 0.43 and params["value_chosen"] == 0.34
    assert (params["k_min"], params["k_max"]) == (3, 5)
    # k = 2 inside the range is simply chosen, with no note
    k, notes = choose_k(ks, sil, stab, shares, (2, 5))
    assert k == 2 and not [c for c, _ in notes if c == "k2_best_statistically"]
    # a k = 2 lead below the margin is not noted
    _, notes = choose_k(ks, [0.35, 0.34, 0.33, 0.32], stab, shares, (3, 5))
    assert "k2_best_statistically" not in {c for c, _ in notes}


def test_choose_k_prefers_stable_k_and_breaks_near_ties_by_stability() -> None:
    ks = [3, 4, 5]
    shares = [0.2, 0.1, 0.05]
    # k = 3 is best but unstable (0.5 < 0.75): k = 4 wins
    assert choose_k(ks, [0.50, 0.40, 0.30], [0.5, 0.9, 0.9], shares, (3, 5))[0] == 4
    # silhouettes within 0.01: the stabler k wins
    assert choose_k(ks, [0.400, 0.395, 0.30], [0.8, 0.95, 0.9], shares, (3, 5))[0] == 4
    # none stable: all eligible stay, and the note says so
    k, notes = choose_k(ks, [0.50, 0.40, 0.30], [0.5, 0.5, 0.5], shares, (3, 5))
    assert k == 3 and ("no_stable_k", {"stability_floor": 0.75}) in notes


def test_choose_k_when_no_k_in_range_keeps_every_cluster_large_enough() -> None:
    k, notes = choose_k([3, 4], [0.5, 0.4], [0.9, 0.9], [0.005, 0.015], (3, 4), min_share=0.02)
    assert k == 4  # the largest smallest cluster
    assert notes[0][0] == "min_share_unmet" and notes[0][1]["chosen_k"] == 4


def test_smallest_share_ignores_noise_and_empty_ids() -> None:
    assert smallest_share(np.array([0, 0, 0, 2, -1])) == pytest.approx(0.2)
    assert smallest_share(np.array([-1, -1])) == 0.0


def with_tiny_group(n: int = 1500, tiny: int = 15, seed: int = 0) -> pd.DataFrame:
    """Three large planted groups plus ``tiny`` far-away customers (1% at the defaults)."""
    rng = np.random.default_rng(seed)
    big = CENTERS[:3][rng.integers(0, 3, n - tiny)]
    far = np.tile([[1.0, 400.0, 900_000.0]], (tiny, 1))
    z = np.log1p(np.vstack([big, far])) + rng.normal(scale=0.08, size=(n, 3))
    v = np.expm1(z)
    return pd.DataFrame(
        {
            "recency_days": np.maximum(v[:, 0], 0).round().astype("int64"),
            "frequency": np.maximum(v[:, 1].round(), 1).astype("int64"),
            "monetary": v[:, 2],
        },
        index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"),
    )


@pytest.mark.parametrize("cls", [KMeansSegmenter, WardSegmenter])
def test_fit_never_chooses_a_k_with_a_cluster_below_min_share(cls: type) -> None:
    rfm = with_tiny_group()
    allowed = cls(min_share=0.005).fit(rfm)
    assert allowed.selection_["chosen_k"] == 4  # the 1% group is its own cluster
    assert np.bincount(allowed.labels_).min() == 15
    seg = cls().fit(rfm)  # default min_share 2%
    assert seg.selection_["chosen_k"] != 4
    assert np.bincount(seg.labels_).min() / len(rfm) >= 0.02
    sc = seg.selection_["scores"]
    assert sc["smallest_share"][sc["k"].index(4)] < 0.02


@pytest.mark.parametrize("cls", [KMeansSegmenter, WardSegmenter, GaussianMixtureSegmenter])
def test_k_stays_in_the_range_and_curves_start_at_2(cls: type) -> None:
    rfm = blobs(600)[0]  # 4 planted groups, outside the range 5-7
    seg = cls(k_range=(5, 7)).fit(rfm)
    sc = seg.selection_["scores"]
    assert 5 <= seg.selection_["chosen_k"] <= 7
    assert sc["k"] == [2, 3, 4, 5, 6, 7] and len(sc["stability"]) == 6
    assert seg.selection_["k_range"] == [5, 7]


@pytest.mark.parametrize(
    ("cls", "param"),
    [
        (KMeansSegmenter, "n_clusters"),
        (WardSegmenter, "n_clusters"),
        (GaussianMixtureSegmenter, "n_components"),
    ],
)
def test_fixed_k_is_used_and_the_curves_are_kept(cls: type, param: str) -> None:
    rfm = blobs(600)[0]
    seg = cls(**{param: 6}).fit(rfm)
    assert seg.selection_["rule"] == "fixed_k" and seg.selection_["chosen_k"] == 6
    assert seg.selection_["scores"]["k"] == [2, 3, 4, 5, 6, 7, 8]


def test_ward_gap_cut_finds_the_planted_groups() -> None:
    rfm, truth = blobs(800)
    seg = WardSegmenter(cut="gap").fit(rfm)
    assert seg.selection_["rule"] == "largest_gap_in_range"
    assert seg.selection_["chosen_k"] == seg.selection_["gap_k"] == 4
    assert adjusted_rand_score(truth, seg.labels_) > 0.99
    with pytest.raises(SegworkInputError, match="cut"):
        WardSegmenter(cut="widest").fit(rfm)


# --------------------------------------------------------------------------- Gaussian mixture


def test_gmm_chooses_planted_components_by_bic_and_keeps_soft_membership() -> None:
    rfm, truth = blobs(900)
    seg = GaussianMixtureSegmenter().fit(rfm)
    sel = seg.selection_
    assert sel["rule"] == "in_range_min_share_stable_lowest_bic" and sel["chosen_k"] == 4
    bic = dict(zip(sel["scores"]["k"], sel["scores"]["bic"], strict=True))
    assert min(bic[k] for k in range(3, 9)) == bic[4]
    assert adjusted_rand_score(truth, seg.labels_) > 0.99
    proba = seg.predict_proba(rfm)
    assert proba.shape == (900, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(proba.argmax(axis=1), seg.labels_)
    np.testing.assert_allclose(seg.probabilities_, proba.max(axis=1))
    assert seg.probabilities_.min() > 0.9  # well-separated blobs: confident membership
    assert np.bincount(seg.labels_).tolist() == sorted(np.bincount(seg.labels_), reverse=True)


def test_gmm_fit_on_a_sample_labels_everyone() -> None:
    rfm, truth = blobs(1500)
    seg = GaussianMixtureSegmenter(max_fit_size=500).fit(rfm)
    assert seg.sampled_ and any("500 of 1,500" in n["message"] for n in seg.notes_)
    assert adjusted_rand_score(truth, seg.labels_) > 0.99
    assert len(seg.probabilities_) == 1500


# --------------------------------------------------------------------------- HDBSCAN verdict


def test_hdbscan_verdict_found_on_blobs_and_none_on_uniform_noise() -> None:
    rfm, _ = blobs(1200)
    found = HDBSCANSegmenter().fit(rfm)
    assert found.structure_["verdict"] == "found"
    assert found.structure_["dbcv"] >= found.structure_["threshold"] == 0.25
    rng = np.random.default_rng(5)
    n = 1200
    noise = pd.DataFrame(
        {
            "recency_days": rng.uniform(0, 365, n).round().astype("int64"),
            "frequency": rng.uniform(1, 40, n).round().astype("int64"),
            "monetary": rng.uniform(10, 5000, n),
        },
        index=pd.Index([f"u{i}" for i in range(n)], name="customer_id"),
    )
    none = HDBSCANSegmenter(features=FeatureBuilder(transformation="none")).fit(noise)
    assert none.structure_["verdict"] == "none"
    assert none.structure_["dbcv"] is None or none.structure_["dbcv"] < 0.25
    grid = none.selection_.get("grid") or []
    assert {g["cluster_selection_method"] for g in grid} <= {"eom", "leaf"}


def test_hdbscan_places_customers_block_by_block_with_the_same_result(monkeypatch) -> None:
    from segwork import segmenters

    rfm, _ = blobs(n=3000, seed=4)
    seg = fast_hdbscan(max_fit_size=1000).fit(rfm)
    whole = seg.predict(rfm), seg.membership(rfm)
    monkeypatch.setattr(segmenters, "ASSIGN_BLOCK", 7)  # many blocks, the last a partial one
    blocked = seg.predict(rfm), seg.membership(rfm)
    np.testing.assert_array_equal(whole[0], blocked[0])
    np.testing.assert_array_equal(whole[1], blocked[1])
    assert len(set(whole[0])) > 1
