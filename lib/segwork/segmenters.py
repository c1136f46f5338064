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

import itertools
from collections.abc import Callable, Sequence
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
    calinski_harabasz_score,
    davies_bouldin_score,
)
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from segwork.config import (
    BIC_MARGIN,
    CURVE_MIN_K,
    DBCV_THRESHOLD,
    HDBSCAN_MAX_NOISE,
    K2_MARGIN,
    K_RANGE,
    KMEANS_SELECTION_SAMPLE,
    MAX_FIT_SIZE,
    MIN_SHARE,
    SELECTION_STABILITY_SAMPLE,
    SILHOUETTE_SAMPLE,
    SILHOUETTE_TIE,
    STABILITY_FLOOR,
)
from segwork.errors import SegworkInputError
from segwork.features import FeatureBuilder
from segwork.tally import adjusted_rand
from segwork.text import make_note

HDBSCAN_MCS_GRID = (0.01, 0.02, 0.05)  # min_cluster_size as a share of the customers fitted
HDBSCAN_MS_GRID = (5, 15, 50)  # min_samples: from fine to smooth density on skewed RFM
#: Customers placed per block by HDBSCAN's nearest-neighbour assignment (bounds its memory).
ASSIGN_BLOCK = 100_000
HDBSCAN_SEARCH_SAMPLE = 5_000  # customers the grid is scored on; the winner is refit on more

#: ``selection_["rule"]`` of a k chosen by :func:`choose_k`.
RULE = "in_range_min_share_stable_best"
RULE_BIC = "in_range_min_share_stable_lowest_bic"  # the same rule with -BIC as the score

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


def curve_ks(
    k_range: Sequence[int], curve_min_k: int, n_distinct: int, fixed: int | None = None
) -> list[int]:
    """k values scored for the curves: ``curve_min_k`` to the top of the range (and a fixed k)."""
    hi = max(int(k_range[1]), fixed or 0)
    ks = _k_candidates((min(curve_min_k, int(k_range[0])), hi), n_distinct)
    if fixed is not None and fixed not in ks and fixed <= n_distinct:
        ks = sorted({*ks, int(fixed)})
    return ks


def smallest_share(labels: np.ndarray) -> float:
    """Share of the rows in the smallest non-empty cluster (noise, -1, is not a cluster)."""
    lab = np.asarray(labels)
    counts = np.bincount(lab[lab >= 0])
    counts = counts[counts > 0]
    return float(counts.min() / len(lab)) if len(counts) else 0.0


def choose_k(
    ks: Sequence[int],
    score: Sequence[float | None],
    stability: Sequence[float | None],
    shares: Sequence[float],
    k_range: Sequence[int],
    min_share: float = MIN_SHARE,
    *,
    stability_floor: float = STABILITY_FLOOR,
    tie: float = SILHOUETTE_TIE,
    k2_margin: float = K2_MARGIN,
    score_name: str = "silhouette",
) -> tuple[int, list[tuple[str, dict[str, Any]]]]:
    """The k to use, from per-k scores (higher is better), stability and smallest cluster share.

    The rule (``selection.rule = "in_range_min_share_stable_best"``):

    1. Only k inside ``k_range`` (inclusive) whose smallest cluster holds at least ``min_share``
       of the customers are eligible: a k with a cluster below ``min_share`` is never chosen.
    2. Of those, the k whose bootstrap stability (mean ARI of refits) reaches ``stability_floor``
       are kept; when none does, all eligible k stay (note ``no_stable_k``).
    3. The best ``score`` wins (silhouette; -BIC for the Gaussian mixture); scores within ``tie``
       of the best count as equal, and then the more stable k wins, then the smaller k.

    Notes (code, values) say what a reader must know: ``k2_best_statistically`` when k = 2 lies
    below the range and beats every k in it by ``k2_margin``; ``score_win_small_cluster`` when
    the best score of the whole curve comes from a k with a cluster under ``min_share`` (that win
    is not counted); ``min_share_unmet`` when no k in range qualifies (the k with the largest
    smallest cluster is used); ``k_range_unreachable`` when the data allow no k in range.
    """
    lo, hi = int(k_range[0]), int(k_range[1])

    def val(v: float | None) -> float:
        """A comparable score: undefined (None, NaN) ranks last."""
        return float(v) if v is not None and np.isfinite(v) else -np.inf

    rows = [
        (int(k), val(sc), val(st), float(sh))
        for k, sc, st, sh in zip(ks, score, stability, shares, strict=True)
    ]
    notes: list[tuple[str, dict[str, Any]]] = []
    inside = [r for r in rows if lo <= r[0] <= hi]
    if not inside:
        notes.append(("k_range_unreachable", {"k_min": lo, "k_max": hi, "k_max_possible": max(ks)}))
        inside = rows
    eligible = [r for r in inside if r[3] >= min_share]
    if not eligible:
        pick = max(inside, key=lambda r: (r[3], -r[0]))
        notes.append(
            (
                "min_share_unmet",
                {"chosen_k": pick[0], "smallest_share": pick[3], "min_share": min_share},
            )
        )
        return pick[0], notes
    stable = [r for r in eligible if r[2] >= stability_floor]
    if not stable:
        stable = eligible
        notes.append(("no_stable_k", {"stability_floor": stability_floor}))
    best = max(r[1] for r in stable)
    near = [r for r in stable if r[1] >= best - tie]
    pick = max(near, key=lambda r: (r[2], -r[0]))
    top = max(rows, key=lambda r: (r[1], -r[0]))
    if top[1] > pick[1] and top[3] < min_share:
        notes.append(
            (
                "score_win_small_cluster",
                {
                    "score": score_name,
                    "k": top[0],
                    "value": round(top[1], 3),
                    "smallest_share": top[3],
                    "min_share": min_share,
                },
            )
        )
    two = [r for r in rows if r[0] == 2]
    in_range_best = max(r[1] for r in inside)
    if two and lo > 2 and two[0][1] >= in_range_best + k2_margin and two[0][3] >= min_share:
        notes.append(
            (
                "k2_best_statistically",
                {
                    "score": score_name,
                    "value_k2": round(two[0][1], 3),
                    "chosen_k": pick[0],
                    "value_chosen": round(pick[1], 3),
                    "k_min": lo,
                    "k_max": hi,
                },
            )
        )
    return pick[0], notes


def subsample_stability(
    x: np.ndarray,
    label_fn: Callable[[np.ndarray, Sequence[int]], dict[int, np.ndarray]],
    ks: Sequence[int],
    repeats: int,
    size: int,
    seed: int | None,
    fraction: float = 0.8,
) -> list[float | None]:
    """Per k: mean pairwise ARI of ``label_fn(rows, ks) -> {k: labels}`` on overlapping subsamples.

    A pool of at most ``size`` rows is drawn once; each repeat labels ``fraction`` of it for every
    k at once (so a Ward tree is built once per repeat); pairs are compared on shared rows.
    """
    pool = sample_indices(len(x), size, seed)
    rng = np.random.default_rng(None if seed is None else seed + 1)
    m = max(2, int(round(fraction * len(pool))))
    runs = []
    for _ in range(max(repeats, 2)):
        idx = np.sort(rng.choice(pool, size=min(m, len(pool)), replace=False))
        runs.append((idx, label_fn(x[idx], ks)))
    out: list[float | None] = []
    for k in ks:
        pairs = []
        for (ia, la), (ib, lb) in itertools.combinations(runs, 2):
            common, pa, pb = np.intersect1d(ia, ib, assume_unique=True, return_indices=True)
            if len(common) > 1:
                pairs.append(adjusted_rand(la[k][pa], lb[k][pb]))
        out.append(float(np.mean(pairs)) if pairs else None)
    return out


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

    def _note_fixed(self, k: int, share: float) -> None:
        """A fixed k is used as given; a cluster under min_share is said, not hidden."""
        if share < self.min_share:
            self._note(
                "fixed_k_small_cluster",
                method=self._method_name,
                k=k,
                smallest_share=share,
                min_share=self.min_share,
            )

    def _curve_stability(
        self, xs: np.ndarray, ks: list[int], scores: dict[str, Any], label_many: Any
    ) -> list[float | None]:
        """Bootstrap stability per candidate k (when curves are scored), kept in ``scores``."""
        stab: list[float | None] = [None] * len(ks)
        if self.score_curves and len(ks) > 1:
            stab = subsample_stability(
                xs,
                label_many,
                ks,
                self.stability_repeats,
                self.stability_sample_size,
                self.random_state,
            )
            scores["stability"] = stab
        return stab

    def _fixed(self, fixed: int | None, ks: list[int], shares: list[float]) -> int | None:
        """The fixed k (the largest candidate when it is out of reach), noted when it is small."""
        if fixed is None:
            return None
        k = int(fixed) if int(fixed) in ks else ks[-1]
        self._note_fixed(k, shares[ks.index(k)])
        return k

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
    """K-Means with k chosen for use in ``k_range``; selection on a sample, final fit on everyone.

    Every k from ``curve_min_k`` to the top of ``k_range`` is scored on the selection sample:
    silhouette (on a ``silhouette_sample_size`` subsample), Calinski-Harabasz, Davies-Bouldin,
    inertia (elbow curve), the smallest cluster's share and bootstrap stability (refits on
    ``stability_sample_size`` customers); :func:`choose_k` picks k inside ``k_range`` (no cluster
    under ``min_share``, stable, best silhouette). ``n_clusters`` fixes k (the curves are still
    scored unless ``score_curves=False``, which the bootstrap refits use). The final model is fit on all customers starting from the sample's
    centres (``n_init=1``), which is why it scales to 1M customers in seconds.
    """

    _method_name = "K-Means"

    def __init__(
        self,
        features: FeatureBuilder | None = None,
        n_clusters: int | None = None,
        k_range: tuple[int, int] = K_RANGE,
        min_share: float = MIN_SHARE,
        curve_min_k: int = CURVE_MIN_K,
        selection_sample_size: int = KMEANS_SELECTION_SAMPLE,
        silhouette_sample_size: int = SILHOUETTE_SAMPLE,
        stability_sample_size: int = SELECTION_STABILITY_SAMPLE,
        stability_repeats: int = 3,
        score_curves: bool = True,
        n_init: int = 3,
        max_iter: int = 300,
        random_state: int | None = 0,
        n_threads: int | None = 1,
    ) -> None:
        self.features = features
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.min_share = min_share
        self.curve_min_k = curve_min_k
        self.selection_sample_size = selection_sample_size
        self.silhouette_sample_size = silhouette_sample_size
        self.stability_sample_size = stability_sample_size
        self.stability_repeats = stability_repeats
        self.score_curves = score_curves
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
        nd = n_distinct_rows(xs)
        if fixed and not self.score_curves:
            cands = [k for k in [int(self.n_clusters)] if k <= nd]
        else:
            cands = curve_ks(self.k_range, self.curve_min_k, nd, self.n_clusters)
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
        self.selection_ = to_jsonable(
            {
                "rule": "fixed_k" if fixed else RULE,
                "chosen_k": k,
                "k_range": list(self.k_range),
                "min_share": self.min_share,
                "n_selection_sample": len(sel),
                "scores": scores,
            }
        )
        return self

    def _label_many(self, rows: np.ndarray, ks: Sequence[int]) -> dict[int, np.ndarray]:
        """K-Means labels of ``rows`` for every k (the per-k bootstrap refits)."""
        return {k: self._kmeans(k, self.n_init).fit(rows).labels_ for k in ks}

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
        shares = [smallest_share(fits[k].labels_) for k in ks]
        scores["smallest_share"] = shares
        stab = self._curve_stability(xs, ks, scores, self._label_many)
        if (fixed := self._fixed(self.n_clusters, ks, shares)) is not None:
            return fixed, scores
        k, notes = choose_k(ks, sils, stab, shares, self.k_range, self.min_share)
        for code, params in notes:
            self._note(code, method=self._method_name, **params)
        return k, scores

    def _predict_matrix(self, x: np.ndarray) -> np.ndarray:
        """Nearest fitted centre."""
        return nearest_centroid(x, self.cluster_centers_)


# --------------------------------------------------------------------------- Ward


class WardSegmenter(_RFMSegmenter):
    """Ward hierarchical clustering via fastcluster (linear memory), sampled above a size.

    Above ``max_fit_size`` customers the tree is built on a sample stratified by a coarse
    quantile grid of the features (see :func:`grid_stratified_sample`); the other customers go to
    the nearest Ward cluster centroid. The tree is cut at ``distance_threshold`` when given,
    else at ``n_clusters``, else at the k :func:`choose_k` picks in ``k_range`` (``cut="rule"``)
    or at the largest gap between merge heights among the eligible k in range (``cut="gap"``).
    Shares per k are measured on a uniform sample of all customers (the tree's sample is
    stratified); stability per k comes from trees on overlapping subsamples. ``linkage_``
    keeps the sample's tree.
    """

    _method_name = "Ward"

    def __init__(
        self,
        features: FeatureBuilder | None = None,
        n_clusters: int | None = None,
        k_range: tuple[int, int] = K_RANGE,
        distance_threshold: float | None = None,
        cut: str = "rule",
        min_share: float = MIN_SHARE,
        curve_min_k: int = CURVE_MIN_K,
        max_fit_size: int = MAX_FIT_SIZE,
        silhouette_sample_size: int = SILHOUETTE_SAMPLE,
        stability_sample_size: int = SELECTION_STABILITY_SAMPLE,
        stability_repeats: int = 3,
        score_curves: bool = True,
        strata_bins: int = 4,
        random_state: int | None = 0,
        n_threads: int | None = 1,
    ) -> None:
        self.features = features
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.distance_threshold = distance_threshold
        self.cut = cut
        self.min_share = min_share
        self.curve_min_k = curve_min_k
        self.max_fit_size = max_fit_size
        self.silhouette_sample_size = silhouette_sample_size
        self.stability_sample_size = stability_sample_size
        self.stability_repeats = stability_repeats
        self.score_curves = score_curves
        self.strata_bins = strata_bins
        self.random_state = random_state
        self.n_threads = n_threads

    def fit(self, rfm: pd.DataFrame, y: object = None) -> WardSegmenter:
        """Build the tree on (a stratified sample of) customers, cut it, assign the rest."""
        with threadpool_limits(self.n_threads):
            return self._fit(rfm)

    def _fit(self, rfm: pd.DataFrame) -> WardSegmenter:
        """The body of :meth:`fit`, run under the thread limit."""
        if self.cut not in ("rule", "gap"):
            raise SegworkInputError(f"WardSegmenter.cut must be 'rule' or 'gap', not {self.cut!r}")
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
        sample_labels, info = self._cut(xs, x)
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

    def _cut(self, xs: np.ndarray, x: np.ndarray) -> tuple[np.ndarray | None, dict[str, Any]]:
        """Cut the tree by threshold, fixed k, or the k :func:`choose_k` (or the largest gap) picks.

        Shares per k are measured on all customers (a uniform sample of them placed at the
        nearest cut centroid), since the tree's sample is stratified, not uniform.
        """
        z = self.linkage_
        if self.distance_threshold is not None:
            lab = fcluster(z, t=float(self.distance_threshold), criterion="distance") - 1
            return lab, {
                "rule": "distance_threshold",
                "distance_threshold": self.distance_threshold,
                "chosen_k": int(lab.max()) + 1,
            }
        fixed = self.n_clusters is not None
        nd = n_distinct_rows(xs)
        if fixed and not self.score_curves:
            k = min(int(self.n_clusters), nd)
            lab = fcluster(z, t=k, criterion="maxclust") - 1
            return lab, {"rule": "fixed_k", "chosen_k": int(lab.max()) + 1}
        ks = curve_ks(self.k_range, self.curve_min_k, nd, self.n_clusters)
        if not ks:
            return None, {"reason": "too_few_distinct"}
        cuts = [fcluster(z, t=k, criterion="maxclust") - 1 for k in ks]
        sil_idx = sample_indices(len(xs), self.silhouette_sample_size, self.random_state)
        sils = fast_silhouettes(xs[sil_idx], [c[sil_idx] for c in cuts])
        heights = z[:, 2]
        top = heights[
            ::-1
        ]  # merge heights, top of the tree first: cutting at k sits below top[k-2]
        gaps = [float(top[k - 2] - top[k - 1]) if k - 1 < len(top) else None for k in ks]
        if len(xs) == len(x):  # the tree holds everyone: the cut is the final labelling
            shares = [smallest_share(c) for c in cuts]
        else:
            uni = x[sample_indices(len(x), self.silhouette_sample_size, self.random_state)]
            shares = [smallest_share(nearest_centroid(uni, _centroids(xs, c))) for c in cuts]
        stab: list[float | None] = [None] * len(ks)
        if self.score_curves and len(ks) > 1:
            stab = subsample_stability(
                xs,
                _ward_cuts,
                ks,
                self.stability_repeats,
                self.stability_sample_size,
                self.random_state,
            )
        scores = {
            "k": ks,
            "silhouette": sils,
            "n_silhouette_sample": len(sil_idx),
            "smallest_share": shares,
            "merge_gap": gaps,
        }
        if self.score_curves and len(ks) > 1:
            scores["stability"] = stab
        gap_k, _ = choose_k(ks, gaps, stab, shares, self.k_range, self.min_share, tie=0.0)
        if fixed:
            best = int(self.n_clusters) if int(self.n_clusters) in ks else ks[-1]
            self._note_fixed(best, shares[ks.index(best)])
            rule = "fixed_k"
        elif self.cut == "gap":
            best, rule = gap_k, "largest_gap_in_range"
        else:
            best, notes = choose_k(ks, sils, stab, shares, self.k_range, self.min_share)
            for code, params in notes:
                self._note(code, method=self._method_name, **params)
            rule = RULE
        return cuts[ks.index(best)], {
            "rule": rule,
            "chosen_k": best,
            "k_range": list(self.k_range),
            "min_share": self.min_share,
            "gap_k": gap_k,
            "scores": scores,
            "top_merge_heights": top[: max(ks)].tolist(),
        }

    def _predict_matrix(self, x: np.ndarray) -> np.ndarray:
        """Nearest Ward cluster centroid."""
        return nearest_centroid(x, self.centroids_)


def _mcs_ms(m: float, ms: int, n: int) -> tuple[int, int]:
    """Absolute (min_cluster_size, min_samples) for n rows; a min_cluster_size below 1 is a share."""
    mcs = int(round(m * n)) if m < 1 else int(m)
    return max(2, min(mcs, n - 1)), max(1, min(int(ms), n - 1))


def _centroids(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean feature row of each cluster 0..k-1."""
    k = int(labels.max()) + 1
    sums = np.zeros((k, x.shape[1]))
    np.add.at(sums, labels, x)
    return sums / np.bincount(labels, minlength=k)[:, None]


def _ward_cuts(rows: np.ndarray, ks: Sequence[int]) -> dict[int, np.ndarray]:
    """One Ward tree on ``rows`` cut at every k (the per-k bootstrap refits)."""
    z = fastcluster.linkage_vector(rows, method="ward")
    return {k: fcluster(z, t=k, criterion="maxclust") - 1 for k in ks}


# --------------------------------------------------------------------------- HDBSCAN


class HDBSCANSegmenter(_RFMSegmenter):
    """HDBSCAN with (min_cluster_size, min_samples, selection method) chosen on a grid by DBCV.

    Each grid point (``cluster_selection_method`` "eom" and "leaf": leaf finds the smaller dense
    groups skewed RFM tends to have) is fit on a uniform ``search_sample_size`` sample with
    ``gen_min_span_tree=True`` and scored by ``relative_validity_`` (the fast DBCV of the hdbscan
    package); candidates with >= 2 clusters win over fewer, then those leaving at most
    ``max_noise_share`` as outliers, then highest DBCV, then least noise. The winner is refit on
    (a uniform sample of at most ``max_fit_size``) customers; ``min_cluster_size`` values below 1
    are shares of the fitted rows. ``structure_`` = {verdict, dbcv, threshold}: "found" when the
    refit's DBCV reaches ``dbcv_threshold`` with >= 2 clusters, else "none". Noise stays -1. Customers outside
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
        min_cluster_size_grid: tuple[float, ...] = HDBSCAN_MCS_GRID,
        min_samples_grid: tuple[int, ...] = HDBSCAN_MS_GRID,
        cluster_selection_method: str | None = None,
        cluster_selection_method_grid: tuple[str, ...] = ("eom", "leaf"),
        max_noise_share: float = HDBSCAN_MAX_NOISE,
        dbcv_threshold: float = DBCV_THRESHOLD,
        search_sample_size: int = HDBSCAN_SEARCH_SAMPLE,
        max_fit_size: int = MAX_FIT_SIZE,
        assignment: str = "nearest",
        agreement_sample_size: int = 5_000,
        random_state: int | None = 0,
    ) -> None:
        self.features = features
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.min_cluster_size_grid = min_cluster_size_grid
        self.min_samples_grid = min_samples_grid
        self.cluster_selection_method = cluster_selection_method
        self.cluster_selection_method_grid = cluster_selection_method_grid
        self.max_noise_share = max_noise_share
        self.dbcv_threshold = dbcv_threshold
        self.search_sample_size = search_sample_size
        self.max_fit_size = max_fit_size
        self.assignment = assignment
        self.agreement_sample_size = agreement_sample_size
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
        self.structure_ = {"verdict": "none", "dbcv": None, "threshold": self.dbcv_threshold}
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
        one_point = len(self._grid(len(xs))) == 1  # fixed settings: nothing to search
        size = len(xs) if one_point else self.search_sample_size
        search = sample_indices(len(xs), size, self.random_state)
        best, grid = self._search(xs[search])
        if best is not None and len(search) < len(xs):  # refit the winner on the fit sample
            best = self._hdbscan(*self._scaled(len(xs)), self._chosen_method).fit(xs)
            best.generate_prediction_data()
        self.selection_ = {
            "rule": "hdbscan_grid_noise_cap",
            "grid": grid,
            "n_search_sample": len(search),
            "n_fit_sample": len(idx),
            "max_noise_share": self.max_noise_share,
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
            chosen_cluster_selection_method=self._chosen_method,
            noise_share=float(np.mean(labels < 0)),
        )
        dbcv = float(best.relative_validity_)
        found = np.isfinite(dbcv) and dbcv >= self.dbcv_threshold and self.n_clusters_ >= 2
        self.structure_ = {
            "verdict": "found" if found else "none",
            "dbcv": dbcv if np.isfinite(dbcv) else None,
            "threshold": self.dbcv_threshold,
        }
        self.selection_ = to_jsonable(self.selection_)
        return self

    def _grid(self, n: int) -> list[tuple[float, int, int, str]]:
        """(mcs param, absolute min_cluster_size, min_samples, selection method) for n rows."""
        mcs_opts = (
            [self.min_cluster_size]
            if self.min_cluster_size is not None
            else self.min_cluster_size_grid
        )
        ms_opts = [self.min_samples] if self.min_samples is not None else self.min_samples_grid
        methods = (
            [self.cluster_selection_method]
            if self.cluster_selection_method is not None
            else self.cluster_selection_method_grid
        )
        out = []
        for how in methods:
            if how not in ("eom", "leaf"):
                raise SegworkInputError(
                    f"HDBSCANSegmenter.cluster_selection_method must be 'eom' or 'leaf', not {how!r}"
                )
            for m in mcs_opts:
                for ms in ms_opts:
                    cand = (float(m), *_mcs_ms(m, ms, n), how)
                    if cand not in out:
                        out.append(cand)
        return out

    def _scaled(self, n: int) -> tuple[int, int]:
        """The chosen (min_cluster_size, min_samples) for n rows (a share scales with n)."""
        return _mcs_ms(self._chosen_mcs_param, self._chosen_ms, n)

    def _hdbscan(self, mcs: int, ms: int, how: str) -> hdbscan.HDBSCAN:
        """A configured hdbscan.HDBSCAN that scores itself (DBCV)."""
        return hdbscan.HDBSCAN(
            min_cluster_size=mcs,
            min_samples=ms,
            gen_min_span_tree=True,
            cluster_selection_method=how,
            core_dist_n_jobs=1,  # 2 spawns worker processes: ~9 s on a busy 2-core box
        )

    def _search(self, xs: np.ndarray) -> tuple[hdbscan.HDBSCAN | None, list[dict[str, Any]]]:
        """Fit every grid point and score it by DBCV (``relative_validity_``); return the winner.

        Ranking: at least 2 clusters, then noise share at most ``max_noise_share`` (a setting
        that calls most customers outliers describes little), then highest DBCV, then least noise.
        """
        grid, best, best_key = [], None, None
        for m, mcs, ms, how in self._grid(len(xs)):
            model = self._hdbscan(mcs, ms, how).fit(xs)
            k = int(model.labels_.max()) + 1
            noise = float(np.mean(model.labels_ < 0))
            dbcv = float(model.relative_validity_) if k >= 1 else float("nan")
            grid.append(
                {
                    "min_cluster_size": mcs,
                    "min_cluster_size_param": m,
                    "min_samples": ms,
                    "cluster_selection_method": how,
                    "n_clusters": k,
                    "noise_share": noise,
                    "dbcv": dbcv,
                }
            )
            key = (
                min(k, 2),
                noise <= self.max_noise_share,
                dbcv if np.isfinite(dbcv) else -np.inf,
                -noise,
            )
            if k >= 1 and (best_key is None or key > best_key):
                best, best_key = model, key
                self._chosen_mcs_param, self._chosen_ms, self._chosen_method = m, ms, how
        if best is not None:
            best.generate_prediction_data()
        return best, grid

    def _assign(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels and strengths for customers outside the fit sample (mapped to our ids).

        In blocks of :data:`ASSIGN_BLOCK` rows: the neighbour arrays of a million customers at
        once took ~2 GB; block by block they take a tenth of it, with the same result."""
        if self.assignment == "approximate_predict":
            return self._approximate(x)
        parts = [
            self._assign_block(x[i : i + ASSIGN_BLOCK]) for i in range(0, len(x), ASSIGN_BLOCK)
        ]
        if not parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _assign_block(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_assign` for one block of customers."""
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
            "ari_with_approximate_predict": adjusted_rand(ref, fast),
        }

    def _predict_matrix(self, x: np.ndarray) -> np.ndarray:
        """Place new customers exactly as out-of-sample customers were placed in fit."""
        return self._assign(x)[0]

    def membership(self, rfm: pd.DataFrame) -> np.ndarray:
        """Membership strength of (new) customers, as ``probabilities_`` holds it (0 for noise)."""
        check_is_fitted(self)
        if self.status_ == "degenerate":
            return np.zeros(len(rfm), dtype=np.float64)
        return self._assign(self.builder_.transform(rfm))[1]

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


# --------------------------------------------------------------------------- Gaussian mixture


class GaussianMixtureSegmenter(_RFMSegmenter):
    """Gaussian mixture with the number of components chosen by BIC in ``k_range``; soft membership.

    Every k from ``curve_min_k`` to the top of ``k_range`` is fit on (a uniform sample of at most
    ``max_fit_size``) customers and scored: BIC, silhouette of the hard labels, the smallest
    cluster's share and bootstrap stability. :func:`choose_k` picks k with -BIC as the score (no
    tie band; k = 2 is noted when its BIC is lower than every k in range by ``BIC_MARGIN``). The
    chosen mixture labels every customer by the most probable component (ids by size);
    ``probabilities_`` keeps that component's posterior probability per customer (soft
    membership, like HDBSCAN's membership strength) and :meth:`predict_proba` the whole matrix.
    Components that hold no customer are dropped, so ``n_clusters_`` can be below the chosen k.
    ``reg_covar`` (1e-3 on standardised features) keeps a component from collapsing onto one
    value of an integer feature such as frequency, which would lower BIC without a real group.
    """

    _method_name = "GMM"

    def __init__(
        self,
        features: FeatureBuilder | None = None,
        n_components: int | None = None,
        k_range: tuple[int, int] = K_RANGE,
        min_share: float = MIN_SHARE,
        curve_min_k: int = CURVE_MIN_K,
        covariance_type: str = "full",
        reg_covar: float = 1e-3,
        n_init: int = 1,
        max_iter: int = 200,
        max_fit_size: int = MAX_FIT_SIZE,
        silhouette_sample_size: int = SILHOUETTE_SAMPLE,
        stability_sample_size: int = SELECTION_STABILITY_SAMPLE,
        stability_repeats: int = 3,
        score_curves: bool = True,
        random_state: int | None = 0,
        n_threads: int | None = 1,
    ) -> None:
        self.features = features
        self.n_components = n_components
        self.k_range = k_range
        self.min_share = min_share
        self.curve_min_k = curve_min_k
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.n_init = n_init
        self.max_iter = max_iter
        self.max_fit_size = max_fit_size
        self.silhouette_sample_size = silhouette_sample_size
        self.stability_sample_size = stability_sample_size
        self.stability_repeats = stability_repeats
        self.score_curves = score_curves
        self.random_state = random_state
        self.n_threads = n_threads

    def fit(self, rfm: pd.DataFrame, y: object = None) -> GaussianMixtureSegmenter:
        """Score every k on (a sample of) customers, keep the BIC choice, label everyone."""
        with threadpool_limits(self.n_threads):
            return self._fit(rfm)

    def _gmm(self, k: int) -> GaussianMixture:
        """A configured sklearn GaussianMixture."""
        return GaussianMixture(
            n_components=k,
            covariance_type=self.covariance_type,
            reg_covar=self.reg_covar,
            n_init=self.n_init,
            max_iter=self.max_iter,
            random_state=self.random_state,
        )

    def _label_many(self, rows: np.ndarray, ks: Sequence[int]) -> dict[int, np.ndarray]:
        """Hard mixture labels of ``rows`` for every k (the per-k bootstrap refits)."""
        return {k: self._gmm(k).fit(rows).predict(rows) for k in ks}

    def _fit(self, rfm: pd.DataFrame) -> GaussianMixtureSegmenter:
        """The body of :meth:`fit`, run under the thread limit."""
        x = self._start(rfm)
        n = len(x)
        self.probabilities_ = np.zeros(n, dtype=np.float64)
        self.model_ = None
        if not self._check_basic(x, 2):
            return self
        idx = sample_indices(n, self.max_fit_size, self.random_state)
        xs = x[idx]
        if len(idx) < n:
            self.sampled_ = True
            self._note("gmm_sampled", sample=len(idx), n=n)
        fixed = self.n_components is not None
        nd = n_distinct_rows(xs)
        if fixed and not self.score_curves:
            ks = [k for k in [int(self.n_components)] if k <= nd]
        else:
            ks = curve_ks(self.k_range, self.curve_min_k, nd, self.n_components)
        if not ks:
            self._degenerate(n, "too_few_distinct", ks=list(self.k_range))
            return self
        fits = {k: self._gmm(k).fit(xs) for k in ks}
        k, scores = self._select(xs, fits)
        self.model_ = fits[k]
        full = self.model_.predict_proba(x)  # one pass over all customers
        _, self.component_map_ = relabel_by_size(np.argmax(full, axis=1))
        self.components_ = np.asarray(sorted(self.component_map_, key=self.component_map_.get))
        proba = self._posterior(x, full)
        self.labels_ = np.argmax(proba, axis=1).astype(np.int64)
        self.probabilities_ = proba[np.arange(n), self.labels_]
        self.n_clusters_ = len(self.components_)
        self.selection_ = to_jsonable(
            {
                "rule": "fixed_k" if fixed else RULE_BIC,
                "chosen_k": k,
                "k_range": list(self.k_range),
                "min_share": self.min_share,
                "n_fit_sample": len(idx),
                "covariance_type": self.covariance_type,
                "scores": scores,
            }
        )
        return self

    def _select(
        self, xs: np.ndarray, fits: dict[int, GaussianMixture]
    ) -> tuple[int, dict[str, Any]]:
        """BIC, silhouette, smallest share and stability per k; the k of the rule (or the fixed one)."""
        ks = sorted(fits)
        labs = [fits[k].predict(xs) for k in ks]
        bic = [float(fits[k].bic(xs)) for k in ks]
        sil_idx = sample_indices(len(xs), self.silhouette_sample_size, self.random_state)
        sils = fast_silhouettes(xs[sil_idx], [lab[sil_idx] for lab in labs])
        shares = [smallest_share(lab) for lab in labs]
        scores: dict[str, Any] = {
            "k": ks,
            "bic": bic,
            "silhouette": sils,
            "n_silhouette_sample": len(sil_idx),
            "smallest_share": shares,
        }
        stab = self._curve_stability(xs, ks, scores, self._label_many)
        if (fixed := self._fixed(self.n_components, ks, shares)) is not None:
            return fixed, scores
        k, notes = choose_k(
            ks,
            [-b for b in bic],
            stab,
            shares,
            self.k_range,
            self.min_share,
            tie=0.0,
            k2_margin=BIC_MARGIN,
            score_name="bic",
        )
        for code, params in notes:
            if params.get("score") == "bic":  # worded as BIC (lower is better), not -BIC
                params = {
                    key: int(round(-v)) if key in ("value", "value_k2", "value_chosen") else v
                    for key, v in params.items()
                }
            self._note(code, method=self._method_name, **params)
        top = int(np.nanargmax(np.asarray(sils, dtype=float))) if np.isfinite(sils).any() else None
        if top is not None and shares[top] < self.min_share and ks[top] != k:
            self._note(
                "score_win_small_cluster",
                method=self._method_name,
                score="silhouette",
                k=ks[top],
                value=round(sils[top], 3),
                smallest_share=shares[top],
                min_share=self.min_share,
            )
        return k, scores

    def _posterior(self, x: np.ndarray, full: np.ndarray | None = None) -> np.ndarray:
        """Posterior over the components that hold customers, columns in cluster-id order."""
        full = self.model_.predict_proba(x) if full is None else full
        proba = full[:, self.components_]
        total = proba.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(total > 0, proba / total, 1.0 / proba.shape[1])
        return out

    def predict_proba(self, rfm: pd.DataFrame) -> np.ndarray:
        """Soft membership: each customer's probability of every cluster (rows sum to 1)."""
        check_is_fitted(self)
        x = self.builder_.transform(rfm)
        if self.model_ is None:
            return np.ones((len(x), 1))
        return self._posterior(x)

    def membership(self, rfm: pd.DataFrame) -> np.ndarray:
        """Each customer's probability of its most probable cluster, as ``probabilities_``."""
        return self.predict_proba(rfm).max(axis=1)

    def _predict_matrix(self, x: np.ndarray) -> np.ndarray:
        """The most probable cluster."""
        return np.argmax(self._posterior(x), axis=1).astype(np.int64)
