"""K-Means, Ward and HDBSCAN segmenters that fit on the RFM table and record why they chose k.

Conventions shared by the three estimators (scikit-learn style):

* ``fit(rfm)`` takes the RFM table, builds features with a clone of the ``features``
  :class:`~segwork.features.FeatureBuilder` (default ``FeatureBuilder()``: the same matrix for
  every method), keeps it as ``builder_`` and returns ``self``; ``predict(rfm)`` labels new
  customers and raises ``NotFittedError`` before ``fit``.
* ``features`` is an ordinary estimator parameter: ``clone``, ``get_params(deep=True)`` and
  nested ``set_params(features__transformation="yeo-johnson")`` work (on a segmenter built with
  ``features=None`` the nested form first puts a default ``FeatureBuilder()`` there).
* Learned state ends in ``_``: ``labels_``, ``selection_`` (JSON-serialisable model-selection
  evidence), ``sampled_`` (True when any step ran on a sample), ``notes_`` ({code, params, message}
  messages), ``status_`` (``"ok"`` or ``"degenerate"``).
* Cluster ids are renumbered by size (0 = largest); HDBSCAN noise stays ``-1``.
* A fixed ``random_state`` gives identical labels on every run.
* ``n_threads`` (K-Means, Ward) caps BLAS/OpenMP threads during fit; 1 is the default because
  on 3-D features thread overhead dominates (measured 2-10x slower with 2 threads on the
  2-core CI box). ``None`` leaves the libraries' defaults.
* Degenerate input (too few customers, identical features, all noise) never raises: everyone is
  labelled 0 (HDBSCAN: -1), ``status_ = "degenerate"`` and the reason is in ``notes_``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import fastcluster
import hdbscan
import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster
from scipy.spatial import cKDTree
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.cluster import KMeans
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
)
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from segwork.config import KMEANS_SELECTION_SAMPLE, MAX_FIT_SIZE, SILHOUETTE_SAMPLE
from segwork.errors import SegworkInputError
from segwork.features import FeatureBuilder
from segwork.text import make_note

# --------------------------------------------------------------------------- helpers


def sample_indices(n: int, size: int, seed: int | None) -> np.ndarray:
    """Sorted positions of a uniform sample without replacement (all rows when n <= size)."""
    if n <= size:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=size, replace=False))


def grid_stratified_sample(x: np.ndarray, size: int, seed: int | None, bins: int = 4) -> np.ndarray:
    """Sorted positions of a sample stratified by a coarse quantile grid of the features.

    Each feature is cut into ``bins`` quantile bins; every non-empty grid cell gets a share of the
    sample proportional to its size (largest remainder) and at least one row, so small extreme
    groups (e.g. very high spenders) are always represented in the hierarchical fit.
    """
    n = len(x)
    if n <= size:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    cell = np.zeros(n, dtype=np.int64)
    for j in range(x.shape[1]):
        edges = np.unique(np.quantile(x[:, j], np.linspace(0, 1, bins + 1)[1:-1]))
        cell = cell * (bins + 1) + np.searchsorted(edges, x[:, j], side="right")
    cells, inverse, counts = np.unique(cell, return_inverse=True, return_counts=True)
    quota = _allocate(counts, size)
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    picked = [
        rng.choice(order[s : s + c], size=q, replace=False)
        for s, c, q in zip(starts, counts, quota, strict=True)
        if q > 0
    ]
    return np.sort(np.concatenate(picked))


def _allocate(counts: np.ndarray, size: int) -> np.ndarray:
    """Proportional integer quotas summing to ``size``, each >= 1 and <= its cell count."""
    quota = np.minimum(counts, 1)
    rest = size - int(quota.sum())
    if rest <= 0:
        return quota
    share = (counts - quota) * rest / max(int((counts - quota).sum()), 1)
    extra = np.floor(share).astype(np.int64)
    left = rest - int(extra.sum())
    if left > 0:
        extra[np.argsort(-(share - extra), kind="stable")[:left]] += 1
    return np.minimum(quota + extra, counts)


def fast_silhouettes(
    x: np.ndarray, labelings: Sequence[np.ndarray], chunk: int = 1024
) -> list[float]:
    """Mean silhouette of several labelings of the same rows, computing distances only once.

    Equal to ``sklearn.metrics.silhouette_score`` (euclidean, to ~1e-5: distances in float32):
    per-cluster distance sums come from a chunked distance block times a one-hot matrix, so
    scoring k = 2..10 costs about one silhouette instead of nine. Labelings with < 2 or > n-1 clusters score NaN.
    """
    n = len(x)
    codes, onehots, sizes = [], [], []
    for lab in labelings:
        _, code = np.unique(lab, return_inverse=True)
        k = int(code.max()) + 1 if n else 0
        codes.append(code)
        onehots.append(np.eye(k, dtype=np.float64)[code])
        sizes.append(np.bincount(code, minlength=k).astype(np.float64))
    big = (np.hstack(onehots) if onehots else np.zeros((n, 0))).astype(np.float32)
    offsets = np.cumsum([0] + [o.shape[1] for o in onehots])
    sums = np.empty((n, big.shape[1]), dtype=np.float64)
    xf = np.asarray(x, dtype=np.float32)
    sq = np.einsum("ij,ij->i", xf, xf)
    xt = np.ascontiguousarray(-2.0 * xf.T)
    buf = np.empty((min(chunk, n), n), dtype=np.float32)  # reused: page faults are costly
    for s in range(0, n, chunk):
        block = buf[: len(xf[s : s + chunk])]
        np.matmul(xf[s : s + chunk], xt, out=block)
        block += sq[s : s + chunk, None]
        block += sq[None, :]
        np.maximum(block, 0.0, out=block)
        np.sqrt(block, out=block)
        sums[s : s + chunk] = block @ big
    out = []
    for i, code in enumerate(codes):
        k = len(sizes[i])
        if not 2 <= k <= n - 1:
            out.append(float("nan"))
            continue
        part = sums[:, offsets[i] : offsets[i + 1]]
        own = sizes[i][code]
        rows = np.arange(n)
        a = part[rows, code] / np.maximum(own - 1.0, 1.0)
        means = part / sizes[i][None, :]
        means[rows, code] = np.inf
        b = means.min(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            s_i = np.where(own > 1, (b - a) / np.maximum(a, b), 0.0)
        out.append(float(np.nan_to_num(s_i).mean()))
    return out


def relabel_by_size(labels: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """Renumber clusters 0..k-1 by decreasing size (ties: smaller old id first); -1 stays -1."""
    lab = np.asarray(labels, dtype=np.int64)
    ids, counts = np.unique(lab[lab >= 0], return_counts=True)
    order = np.lexsort((ids, -counts))
    mapping = {int(ids[o]): new for new, o in enumerate(order)}
    lut = np.full(int(lab.max()) + 2 if lab.size else 1, -1, dtype=np.int64)
    for old, new in mapping.items():
        lut[old + 1] = new
    return lut[lab + 1], mapping


def nearest_centroid(x: np.ndarray, centers: np.ndarray, chunk: int = 200_000) -> np.ndarray:
    """Index of the nearest centre (euclidean) for every row, in chunks to bound memory."""
    out = np.empty(len(x), dtype=np.int64)
    c2 = np.einsum("ij,ij->i", centers, centers)
    for s in range(0, len(x), chunk):
        block = x[s : s + chunk]
        out[s : s + chunk] = np.argmin(c2[None, :] - 2.0 * block @ centers.T, axis=1)
    return out


def n_distinct_rows(x: np.ndarray, cap: int = 50_000, seed: int | None = 0) -> int:
    """Distinct feature rows, counted on at most ``cap`` rows (enough to spot degenerate input)."""
    if len(x) == 0:
        return 0
    idx = sample_indices(len(x), cap, seed)
    return int(len(np.unique(np.round(x[idx], 12), axis=0)))


def _k_candidates(k_range: Sequence[int], n_distinct: int) -> list[int]:
    """k values to try: inside ``k_range`` (inclusive) and < the number of distinct rows."""
    lo, hi = int(k_range[0]), int(k_range[1])
    return [k for k in range(max(lo, 2), hi + 1) if k <= n_distinct - 1]


def to_jsonable(obj: Any) -> Any:
    """Recursively turn numpy scalars/arrays and tuples into plain JSON types (NaN/inf -> None)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        v = float(obj)
        return v if np.isfinite(v) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


# --------------------------------------------------------------------------- base


class _RFMSegmenter(ClusterMixin, BaseEstimator):
    """Shared plumbing: features from the RFM table, degenerate handling, predict."""

    _noise_label = 0

    def _start(self, rfm: pd.DataFrame) -> np.ndarray:
        """Reset learned state, fit the feature builder and return the feature matrix."""
        if not isinstance(rfm, pd.DataFrame):
            raise SegworkInputError(
                f"{type(self).__name__}.fit expects the RFM table (a pandas DataFrame), "
                f"not {type(rfm).__name__}"
            )
        self.notes_: list[dict[str, Any]] = []
        self.sampled_ = False
        self.status_ = "ok"
        self.selection_: dict[str, Any] = {}
        template = self.features if self.features is not None else FeatureBuilder()
        self.builder_ = clone(template).fit(rfm)
        x = self.builder_.transform(rfm)
        self.n_features_in_ = self.builder_.n_features_in_
        self.feature_names_in_ = self.builder_.feature_names_in_
        return x

    def _note(self, code: str, /, **params: Any) -> None:
        """Record a note as a code and its values (worded per language only on the page)."""
        self.notes_.append(make_note(code, **params))

    def _degenerate(self, n_rows: int, reason: str, /, **params: Any) -> None:
        """Label everyone with the fallback label and record why (a reason code), not raising."""
        self.status_ = "degenerate"
        self._note(
            "degenerate", method=self._method_name, reason=reason, label=self._noise_label, **params
        )
        self.labels_ = np.full(n_rows, self._noise_label, dtype=np.int64)
        self.n_clusters_ = 0 if self._noise_label < 0 else 1
        self.selection_ = {"status": "degenerate", "reason": reason}

    def _check_basic(self, x: np.ndarray, min_rows: int) -> bool:
        """True when input is usable; otherwise mark the fit degenerate."""
        n = len(x)
        if n < min_rows:
            self._degenerate(n, "too_few_customers", n=n, need=min_rows)
            return False
        if n_distinct_rows(x) < 2:
            self._degenerate(n, "identical_features")
            return False
        return True

    def set_params(self, **params: Any) -> _RFMSegmenter:
        """scikit-learn's set_params; ``features__x`` on ``features=None`` edits a default builder."""
        nested = any(k.startswith("features__") for k in params)
        if nested and self.features is None and "features" not in params:
            self.features = FeatureBuilder()
        return super().set_params(**params)

    def predict(self, rfm: pd.DataFrame) -> np.ndarray:
        """Cluster labels for (new) customers, using the fitted features and model."""
        check_is_fitted(self)
        x = self.builder_.transform(rfm)
        if self.status_ == "degenerate":
            return np.full(len(x), self._noise_label, dtype=np.int64)
        return self._predict_matrix(x)

    def _predict_matrix(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


# --------------------------------------------------------------------------- K-Means


class KMeansSegmenter(_RFMSegmenter):
    """K-Means with k chosen by best silhouette; selection on a sample, final fit on everyone.

    Rule: among ``k_range`` (inclusive), pick the k with the highest silhouette (computed on a
    ``silhouette_sample_size`` sample of the selection sample); ties go to the smaller k.
    Calinski-Harabasz, Davies-Bouldin (on the selection sample) and inertia (elbow curve) are
    recorded alongside. The final model is fit on all customers starting from the sample's
    centres (``n_init=1``), which is why it scales to 1M customers in seconds.
    """

    _method_name = "K-Means"

    def __init__(
        self,
        features: FeatureBuilder | None = None,
        n_clusters: int | None = None,
        k_range: tuple[int, int] = (2, 10),
        selection_sample_size: int = KMEANS_SELECTION_SAMPLE,
        silhouette_sample_size: int = SILHOUETTE_SAMPLE,
        n_init: int = 3,
        max_iter: int = 300,
        random_state: int | None = 0,
        n_threads: int | None = 1,
    ) -> None:
        self.features = features
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.selection_sample_size = selection_sample_size
        self.silhouette_sample_size = silhouette_sample_size
        self.n_init = n_init
        self.max_iter = max_iter
        self.random_state = random_state
        self.n_threads = n_threads

    def fit(self, rfm: pd.DataFrame, y: object = None) -> KMeansSegmenter:
        """Choose k on a sample, fit on all customers, keep every score."""
        with threadpool_limits(self.n_threads):
            return self._fit(rfm)

    def _fit(self, rfm: pd.DataFrame) -> KMeansSegmenter:
        """The body of :meth:`fit`, run under the thread limit."""
        x = self._start(rfm)
        if not self._check_basic(x, 2):
            self.cluster_centers_ = x[:1].copy() if len(x) else np.zeros((0, x.shape[1]))
            return self
        n = len(x)
        sel = sample_indices(n, self.selection_sample_size, self.random_state)
        xs = x[sel]
        if len(sel) < n:
            self.sampled_ = True
            self._note("kmeans_sampled", sample=len(sel), n=n)
        fixed = self.n_clusters is not None
        cands = (
            [int(self.n_clusters)] if fixed else _k_candidates(self.k_range, n_distinct_rows(xs))
        )
        cands = [k for k in cands if k <= n_distinct_rows(xs)]
        if not cands:
            self._degenerate(n, "too_few_distinct", ks=list(self.k_range))
            self.cluster_centers_ = xs.mean(axis=0, keepdims=True)
            return self
        fits = {k: self._kmeans(k, self.n_init).fit(xs) for k in cands}
        k, scores = self._select(xs, fits)
        centers = fits[k].cluster_centers_
        if len(sel) < n:
            final = self._kmeans(k, 1, init=centers).fit(x)
            centers, labels = final.cluster_centers_, final.labels_
        else:
            labels = fits[k].labels_
        labels, mapping = relabel_by_size(np.asarray(labels))
        inv = sorted(mapping, key=mapping.get)
        self.cluster_centers_ = np.asarray(centers)[inv]
        self.labels_ = labels
        self.n_clusters_ = int(len(inv))
        rule = "fixed_k" if fixed else "highest_silhouette"
        self.selection_ = to_jsonable(
            {"rule": rule, "chosen_k": k, "n_selection_sample": len(sel), "scores": scores}
        )
        return self

    def _kmeans(self, k: int, n_init: int, init: Any = "k-means++") -> KMeans:
        """A configured sklearn KMeans."""
        return KMeans(
            n_clusters=k,
            init=init,
            n_init=n_init,
            max_iter=self.max_iter,
            random_state=self.random_state,
        )

    def _select(self, xs: np.ndarray, fits: dict[int, KMeans]) -> tuple[int, dict[str, Any]]:
        """Score every candidate k and apply the silhouette rule."""
        ks = sorted(fits)
        sil_idx = sample_indices(len(xs), self.silhouette_sample_size, self.random_state)
        sils = fast_silhouettes(xs[sil_idx], [fits[k].labels_[sil_idx] for k in ks])
        scores: dict[str, Any] = {
            "k": ks,
            "silhouette": sils,
            "calinski_harabasz": [],
            "davies_bouldin": [],
            "inertia": [],
        }
        for k in ks:
            lab = fits[k].labels_
            ok = 2 <= len(np.unique(lab)) <= len(xs) - 1
            scores["calinski_harabasz"].append(calinski_harabasz_score(xs, lab) if ok else None)
            scores["davies_bouldin"].append(davies_bouldin_score(xs, lab) if ok else None)
            scores["inertia"].append(float(fits[k].inertia_))
        scores["n_silhouette_sample"] = len(sil_idx)
        finite = [(s, -k) for s, k in zip(sils, ks, strict=True) if np.isfinite(s)]
        best = -max(finite)[1] if finite else ks[0]
        return best, scores

    def _predict_matrix(self, x: np.ndarray) -> np.ndarray:
        """Nearest fitted centre."""
        return nearest_centroid(x, self.cluster_centers_)


# --------------------------------------------------------------------------- Ward


class WardSegmenter(_RFMSegmenter):
    """Ward hierarchical clustering via fastcluster (linear memory), sampled above a size.

    Above ``max_fit_size`` customers the tree is built on a sample stratified by a coarse
    quantile grid of the features (see :func:`grid_stratified_sample`); the other customers go to
    the nearest Ward cluster centroid. The tree is cut at ``distance_threshold`` when given,
    else at ``n_clusters``, else at the k in ``k_range`` with the best silhouette (ties -> smaller
    k) on a ``silhouette_sample_size`` subsample. ``linkage_`` keeps the sample's tree.
    """

    _method_name = "Ward"

    def __init__(
        self,
        features: FeatureBuilder | None = None,
        n_clusters: int | None = None,
        k_range: tuple[int, int] = (2, 10),
        distance_threshold: float | None = None,
        max_fit_size: int = MAX_FIT_SIZE,
        silhouette_sample_size: int = SILHOUETTE_SAMPLE,
        strata_bins: int = 4,
        random_state: int | None = 0,
        n_threads: int | None = 1,
    ) -> None:
        self.features = features
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.distance_threshold = distance_threshold
        self.max_fit_size = max_fit_size
        self.silhouette_sample_size = silhouette_sample_size
        self.strata_bins = strata_bins
        self.random_state = random_state
        self.n_threads = n_threads

    def fit(self, rfm: pd.DataFrame, y: object = None) -> WardSegmenter:
        """Build the tree on (a stratified sample of) customers, cut it, assign the rest."""
        with threadpool_limits(self.n_threads):
            return self._fit(rfm)

    def _fit(self, rfm: pd.DataFrame) -> WardSegmenter:
        """The body of :meth:`fit`, run under the thread limit."""
        x = self._start(rfm)
        self.linkage_ = np.zeros((0, 4))
        if not self._check_basic(x, 2):
            self.centroids_ = x.mean(axis=0, keepdims=True) if len(x) else np.zeros((1, x.shape[1]))
            self.sample_index_ = np.arange(len(x))
            return self
        n = len(x)
        idx = grid_stratified_sample(x, self.max_fit_size, self.random_state, self.strata_bins)
        xs = x[idx]
        if len(idx) < n:
            self.sampled_ = True
            self._note("ward_sampled", sample=len(idx), n=n, bins=self.strata_bins)
        self.linkage_ = fastcluster.linkage_vector(xs, method="ward")
        sample_labels, info = self._cut(xs)
        if sample_labels is None:
            self._degenerate(n, info["reason"], ks=list(self.k_range))
            self.centroids_ = xs.mean(axis=0, keepdims=True)
            self.sample_index_ = idx
            return self
        sample_labels, _ = relabel_by_size(sample_labels)
        k = int(sample_labels.max()) + 1
        self.centroids_ = np.vstack([xs[sample_labels == c].mean(axis=0) for c in range(k)])
        labels = np.empty(n, dtype=np.int64)
        rest = np.ones(n, dtype=bool)
        rest[idx] = False
        labels[idx] = sample_labels
        if rest.any():
            labels[rest] = nearest_centroid(x[rest], self.centroids_)
        self.sample_index_ = idx
        self.sample_labels_ = sample_labels
        self.labels_ = labels
        self.n_clusters_ = k
        info["n_fit_sample"] = len(idx)
        self.selection_ = to_jsonable(info)
        return self

    def _cut(self, xs: np.ndarray) -> tuple[np.ndarray | None, dict[str, Any]]:
        """Cut the tree by threshold, fixed k, or best-silhouette k."""
        z = self.linkage_
        if self.distance_threshold is not None:
            lab = fcluster(z, t=float(self.distance_threshold), criterion="distance") - 1
            return lab, {
                "rule": "distance_threshold",
                "distance_threshold": self.distance_threshold,
                "chosen_k": int(lab.max()) + 1,
            }
        if self.n_clusters is not None:
            k = min(int(self.n_clusters), n_distinct_rows(xs))
            lab = fcluster(z, t=k, criterion="maxclust") - 1
            return lab, {"rule": "fixed_k", "chosen_k": int(lab.max()) + 1}
        ks = _k_candidates(self.k_range, n_distinct_rows(xs))
        if not ks:
            return None, {"reason": "too_few_distinct"}
        cuts = [fcluster(z, t=k, criterion="maxclust") - 1 for k in ks]
        sil_idx = sample_indices(len(xs), self.silhouette_sample_size, self.random_state)
        sils = fast_silhouettes(xs[sil_idx], [c[sil_idx] for c in cuts])
        heights = z[-(max(ks)) :, 2][::-1].tolist()  # merge heights, top of the tree first
        finite = [(s, -k) for s, k in zip(sils, ks, strict=True) if np.isfinite(s)]
        best = -max(finite)[1] if finite else ks[0]
        lab = cuts[ks.index(best)]
        return lab, {
            "rule": "highest_silhouette",
            "chosen_k": best,
            "scores": {"k": ks, "silhouette": sils, "n_silhouette_sample": len(sil_idx)},
            "top_merge_heights": heights,
        }

    def _predict_matrix(self, x: np.ndarray) -> np.ndarray:
        """Nearest Ward cluster centroid."""
        return nearest_centroid(x, self.centroids_)


# --------------------------------------------------------------------------- HDBSCAN


class HDBSCANSegmenter(_RFMSegmenter):
    """HDBSCAN with (min_cluster_size, min_samples) chosen on a grid by DBCV; noise stays -1.

    Each grid point is fit on (a uniform sample of at most ``max_fit_size``) customers with
    ``gen_min_span_tree=True`` and scored by ``relative_validity_`` (the fast DBCV of the
    hdbscan package); candidates with >= 2 clusters win over fewer, then highest DBCV, then least
    noise. ``min_cluster_size`` values below 1 are fractions of the fitted rows. Customers outside
    the sample are placed by ``assignment``: ``"nearest"`` (default) takes the label of the
    sampled neighbour at the smallest mutual-reachability distance (one KD-tree query, vectorised);
    ``"approximate_predict"`` uses ``hdbscan.approximate_predict`` (exact but ~60 s per 1M).
    Agreement of ``"nearest"`` with ``approximate_predict`` is measured on
    ``agreement_sample_size`` customers and stored in ``selection_["assignment"]``.
    """

    _method_name = "HDBSCAN"
    _noise_label = -1

    def __init__(
        self,
        features: FeatureBuilder | None = None,
        min_cluster_size: float | None = None,
        min_samples: int | None = None,
        min_cluster_size_grid: tuple[float, ...] = (0.005, 0.01, 0.02),
        min_samples_grid: tuple[int, ...] = (5, 20),
        max_fit_size: int = MAX_FIT_SIZE,
        assignment: str = "nearest",
        agreement_sample_size: int = 5_000,
        cluster_selection_method: str = "eom",
        random_state: int | None = 0,
    ) -> None:
        self.features = features
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.min_cluster_size_grid = min_cluster_size_grid
        self.min_samples_grid = min_samples_grid
        self.max_fit_size = max_fit_size
        self.assignment = assignment
        self.agreement_sample_size = agreement_sample_size
        self.cluster_selection_method = cluster_selection_method
        self.random_state = random_state

    def fit(self, rfm: pd.DataFrame, y: object = None) -> HDBSCANSegmenter:
        """Grid-search on the fit sample by DBCV, keep the best model, place everyone else."""
        if self.assignment not in ("nearest", "approximate_predict"):
            raise SegworkInputError(
                f"HDBSCANSegmenter.assignment must be 'nearest' or 'approximate_predict', "
                f"not {self.assignment!r}"
            )
        x = self._start(rfm)
        n = len(x)
        self.probabilities_ = np.zeros(n, dtype=np.float64)
        self.model_ = None
        if not self._check_basic(x, 5):
            return self
        idx = sample_indices(n, self.max_fit_size, self.random_state)
        xs = x[idx]
        if len(idx) < n:
            self.sampled_ = True
            assignment = (
                "assignment_nearest" if self.assignment == "nearest" else "assignment_predict"
            )
            self._note("hdbscan_sampled", sample=len(idx), n=n, assignment=assignment)
        best, grid = self._search(xs)
        self.selection_ = {
            "rule": "hdbscan_grid",
            "grid": grid,
            "n_fit_sample": len(idx),
        }
        if best is None or best.labels_.max() < 0:
            self._degenerate(n, "no_dense_clusters")
            self.selection_["grid"] = to_jsonable(grid)
            return self
        self.model_ = best
        self.min_samples_used_ = int(best.min_samples)
        sample_labels, mapping = relabel_by_size(best.labels_)
        self.label_map_ = mapping
        self.sample_index_ = idx
        self.sample_labels_ = sample_labels
        self.sample_probabilities_ = np.asarray(best.probabilities_, dtype=np.float64)
        self._tree = cKDTree(xs)
        labels = np.empty(n, dtype=np.int64)
        labels[idx] = sample_labels
        self.probabilities_[idx] = self.sample_probabilities_
        rest = np.setdiff1d(np.arange(n), idx, assume_unique=True)
        if len(rest):
            labels[rest], self.probabilities_[rest] = self._assign(x[rest])
            self.selection_["assignment"] = self._agreement(x[rest])
        self.labels_ = labels
        self.n_clusters_ = int(sample_labels.max()) + 1
        self.selection_.update(
            chosen_min_cluster_size=int(best.min_cluster_size),
            chosen_min_cluster_size_param=self._chosen_mcs_param,
            chosen_min_samples=int(best.min_samples),
            noise_share=float(np.mean(labels < 0)),
        )
        self.selection_ = to_jsonable(self.selection_)
        return self

    def _grid(self, n: int) -> list[tuple[float, int, int]]:
        """(mcs param, absolute min_cluster_size, min_samples) candidates for n fitted rows."""
        mcs_opts = (
            [self.min_cluster_size]
            if self.min_cluster_size is not None
            else self.min_cluster_size_grid
        )
        ms_opts = [self.min_samples] if self.min_samples is not None else self.min_samples_grid
        out = []
        for m in mcs_opts:
            mcs = int(round(m * n)) if m < 1 else int(m)
            mcs = max(2, min(mcs, n - 1))
            for ms in ms_opts:
                cand = (float(m), mcs, max(1, min(int(ms), n - 1)))
                if cand not in out:
                    out.append(cand)
        return out

    def _search(self, xs: np.ndarray) -> tuple[hdbscan.HDBSCAN | None, list[dict[str, Any]]]:
        """Fit every grid point, score by DBCV (relative_validity_), return the winner."""
        grid, best, best_key = [], None, None
        for m, mcs, ms in self._grid(len(xs)):
            model = hdbscan.HDBSCAN(
                min_cluster_size=mcs,
                min_samples=ms,
                gen_min_span_tree=True,
                cluster_selection_method=self.cluster_selection_method,
                core_dist_n_jobs=2,
            ).fit(xs)
            k = int(model.labels_.max()) + 1
            noise = float(np.mean(model.labels_ < 0))
            dbcv = float(model.relative_validity_) if k >= 1 else float("nan")
            grid.append(
                {
                    "min_cluster_size": mcs,
                    "min_cluster_size_param": m,
                    "min_samples": ms,
                    "n_clusters": k,
                    "noise_share": noise,
                    "dbcv": dbcv,
                }
            )
            key = (min(k, 2), dbcv if np.isfinite(dbcv) else -np.inf, -noise)
            if k >= 1 and (best_key is None or key > best_key):
                best, best_key, self._chosen_mcs_param = model, key, m
        if best is not None:
            best.generate_prediction_data()
        return best, grid

    def _assign(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels and strengths for customers outside the fit sample (mapped to our ids)."""
        if self.assignment == "approximate_predict":
            return self._approximate(x)
        ms = self.min_samples_used_
        k = min(ms + 1, len(self.sample_labels_))
        dist, nb = self._tree.query(x, k=k, workers=2)
        dist, nb = dist.reshape(len(x), k), nb.reshape(len(x), k)
        core_pt = dist[:, -1:]
        core_nb = self.model_.prediction_data_.core_distances[nb]
        mr = np.maximum(np.maximum(dist, core_nb), core_pt)
        j = np.argmin(mr, axis=1)
        rows = np.arange(len(x))
        chosen = nb[rows, j]
        mr_best = mr[rows, j]
        with np.errstate(divide="ignore", invalid="ignore"):
            discount = np.where(mr_best > 0, np.minimum(1.0, core_nb[rows, j] / mr_best), 1.0)
        labels = self.sample_labels_[chosen]
        probs = np.where(labels >= 0, self.sample_probabilities_[chosen] * discount, 0.0)
        return labels, probs

    def _approximate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """hdbscan.approximate_predict, mapped to size-ordered ids."""
        lab, prob = hdbscan.approximate_predict(self.model_, x)
        lut = np.vectorize(lambda v: self.label_map_.get(int(v), -1), otypes=[np.int64])
        return (lut(lab) if len(lab) else lab.astype(np.int64)), np.asarray(prob, dtype=np.float64)

    def _agreement(self, x_rest: np.ndarray) -> dict[str, Any]:
        """How often the fast assignment matches approximate_predict, on a fixed subset."""
        pick = sample_indices(len(x_rest), self.agreement_sample_size, self.random_state)
        sub = x_rest[pick]
        ref, _ = self._approximate(sub)
        if self.assignment == "approximate_predict":
            fast = ref
        else:
            fast, _ = self._assign(sub)
        return {
            "method": self.assignment,
            "n_checked": len(pick),
            "agreement_with_approximate_predict": float(np.mean(fast == ref)),
            "ari_with_approximate_predict": float(adjusted_rand_score(ref, fast)),
        }

    def _predict_matrix(self, x: np.ndarray) -> np.ndarray:
        """Place new customers exactly as out-of-sample customers were placed in fit."""
        return self._assign(x)[0]

    def __getstate__(self) -> dict[str, Any]:
        """Drop the KD-tree cache from pickles; it is rebuilt on demand."""
        state = self.__dict__.copy()
        state.pop("_tree", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild the KD-tree over the fit sample after unpickling."""
        self.__dict__.update(state)
        if getattr(self, "model_", None) is not None:
            self._tree = cKDTree(self.model_.prediction_data_.raw_data)
