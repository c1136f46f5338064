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

from segwork.features import FeatureBuilder
from segwork.rfm import RFMSegmenter
from segwork.segmenters import (
    HDBSCANSegmenter,
    KMeansSegmenter,
    WardSegmenter,
    fast_silhouettes,
    grid_stratified_sample,
    nearest_centroid,
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
    assert len(seg.selection_["scores"]["silhouette"]) == 9


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
    "rfm": lambda: RFMSegmenter(),
}
CLUSTERERS = ("kmeans", "ward", "hdbscan")  # the ones built on a FeatureBuilder


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
