"""The clustering stage: fit every segmenter in one loop and summarise the comparison.

The metrics themselves (agreement, contingency, stability, rules, suggested names) are pure
functions in :mod:`segwork.evaluate`; this module runs the methods and assembles
``summary["clustering"]``, which holds ids only: reference (RFM) labels are segment ids, and a
reference segmenter asked for display names (``label_lang``) is fitted without them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from segwork.config import (
    CURVE_MIN_K,
    DBCV_THRESHOLD,
    HDBSCAN_MAX_NOISE,
    K_RANGE,
    KMEANS_SELECTION_SAMPLE,
    MAX_FIT_SIZE,
    MIN_SHARE,
    PUBLISHED_GMM_SILHOUETTE,
    SELECTION_STABILITY_SAMPLE,
    SILHOUETTE_SAMPLE,
    STABILITY_POOL,
    STABILITY_REPEATS,
)
from segwork.evaluate import (
    RULE_COLUMNS,
    agreement,
    bootstrap_stability,
    cluster_rules,
    contingency,
    describe_outliers,
    dominant_groups,
    seed_sensitivity,
    suggest_names,
    truth_agreement,
)
from segwork.features import FeatureBuilder, build_features
from segwork.segmenters import (
    HDBSCAN_MCS_GRID,
    HDBSCAN_MS_GRID,
    HDBSCAN_SEARCH_SAMPLE,
    GaussianMixtureSegmenter,
    HDBSCANSegmenter,
    KMeansSegmenter,
    WardSegmenter,
    fast_silhouettes,
    make_note,
    sample_indices,
    smallest_share,
    to_jsonable,
)

METHOD_COLUMNS = {
    "kmeans": "kmeans_cluster",
    "ward": "ward_cluster",
    "hdbscan": "hdbscan_cluster",
    "gmm": "gmm_cluster",
}
#: Soft membership per customer: HDBSCAN's membership strength, the mixture's posterior.
PROBABILITY_COLUMNS = {"hdbscan": "hdbscan_probability", "gmm": "gmm_probability"}
#: The published figure the mixture's silhouette is reported beside.
PUBLISHED_GMM = {"silhouette": PUBLISHED_GMM_SILHOUETTE, "source": "john_shobayo_ogunleye_2023"}
#: Threads for the per-method diagnostics (stability refits, rules, names) and the agreement
#: matrix: independent of each other, each seeded on its own, so the summary is the same as
#: run one by one; much of the work (hdbscan, fastcluster, BLAS) leaves the GIL, and two
#: threads took 4.0-4.4 s against 6.5-6.8 s at 1M customers. BLAS keeps one thread while
#: they run: its thread count is one setting for the whole process, which the refits' own
#: ``threadpool_limits`` would otherwise leave changed when they exit out of order.
DIAGNOSTIC_THREADS = 2
#: The methods' diagnostics, costliest first, so the two threads finish close together.
DIAGNOSTIC_ORDER = ("hdbscan", "ward", "gmm", "kmeans")

# --------------------------------------------------------------------------- fit loop


def fit_all(segmenters: Mapping[str, Any], rfm: pd.DataFrame) -> dict[str, np.ndarray]:
    """Fit every segmenter on the same RFM table, in one loop, and collect ``labels_``."""
    labels: dict[str, np.ndarray] = {}
    for name, seg in segmenters.items():
        labels[name] = np.asarray(seg.fit(rfm).labels_)
    return labels


# --------------------------------------------------------------------------- the stage


@dataclass(frozen=True)
class ClusterConfig:
    """Everything the clustering stage needs besides the data (defaults sized for 1M in ~1 min)."""

    features: FeatureBuilder = field(default_factory=FeatureBuilder)
    k_range: tuple[int, int] = K_RANGE  # k is chosen in this range (curves start at curve_min_k)
    k: int | None = None  # a fixed k for K-Means, Ward and the mixture
    min_share: float = MIN_SHARE
    curve_min_k: int = CURVE_MIN_K
    selection_stability_sample: int = SELECTION_STABILITY_SAMPLE
    kmeans_selection_sample: int = KMEANS_SELECTION_SAMPLE
    silhouette_sample: int = SILHOUETTE_SAMPLE
    ward_max_fit_size: int = MAX_FIT_SIZE
    ward_cut: str = "rule"  # or "gap": the largest dendrogram gap in range
    hdbscan_max_fit_size: int = MAX_FIT_SIZE
    hdbscan_min_cluster_size_grid: tuple[float, ...] = HDBSCAN_MCS_GRID
    hdbscan_min_samples_grid: tuple[int, ...] = HDBSCAN_MS_GRID
    hdbscan_selection_methods: tuple[str, ...] = ("eom", "leaf")
    hdbscan_search_sample: int = HDBSCAN_SEARCH_SAMPLE
    hdbscan_max_noise: float = HDBSCAN_MAX_NOISE
    dbcv_threshold: float = DBCV_THRESHOLD
    gmm_max_fit_size: int = MAX_FIT_SIZE
    gmm_covariance_type: str = "full"
    stability_repeats: int = STABILITY_REPEATS
    stability_pool: int = STABILITY_POOL
    stability_fraction: float = 0.8
    kmeans_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    rules_max_depth: int = 3
    rules_sample: int = 50_000
    ami_sample: int = 200_000
    seed: int = 0


@dataclass
class ClusteringResult:
    """Labels per customer, the fitted segmenters, and a JSON-serialisable summary."""

    labels: pd.DataFrame
    segmenters: dict[str, Any]
    summary: dict[str, Any]
    ari: pd.DataFrame
    ami: pd.DataFrame
    contingency: dict[str, pd.DataFrame]


def default_segmenters(cfg: ClusterConfig) -> dict[str, Any]:
    """The four clustering methods configured from ``cfg`` (same features for all)."""
    shared = {
        "k_range": tuple(cfg.k_range),
        "min_share": cfg.min_share,
        "curve_min_k": cfg.curve_min_k,
        "silhouette_sample_size": cfg.silhouette_sample,
        "stability_sample_size": cfg.selection_stability_sample,
        "random_state": cfg.seed,
    }
    return {
        "kmeans": KMeansSegmenter(
            features=clone(cfg.features),
            n_clusters=cfg.k,
            selection_sample_size=cfg.kmeans_selection_sample,
            **shared,
        ),
        "ward": WardSegmenter(
            features=clone(cfg.features),
            n_clusters=cfg.k,
            cut=cfg.ward_cut,
            max_fit_size=cfg.ward_max_fit_size,
            **shared,
        ),
        "hdbscan": HDBSCANSegmenter(
            features=clone(cfg.features),
            min_cluster_size_grid=cfg.hdbscan_min_cluster_size_grid,
            min_samples_grid=cfg.hdbscan_min_samples_grid,
            cluster_selection_method_grid=cfg.hdbscan_selection_methods,
            max_noise_share=cfg.hdbscan_max_noise,
            dbcv_threshold=cfg.dbcv_threshold,
            search_sample_size=cfg.hdbscan_search_sample,
            max_fit_size=cfg.hdbscan_max_fit_size,
            random_state=cfg.seed,
        ),
        "gmm": GaussianMixtureSegmenter(
            features=clone(cfg.features),
            n_components=cfg.k,
            covariance_type=cfg.gmm_covariance_type,
            max_fit_size=cfg.gmm_max_fit_size,
            **shared,
        ),
    }


def ids_only(seg: Any) -> Any:
    """The segmenter itself, or an unfitted clone labelling with ids when it was set to display names."""
    params = seg.get_params(deep=False) if hasattr(seg, "get_params") else {}
    if params.get("label_lang") is not None:
        return clone(seg).set_params(label_lang=None)
    return seg


def config_dict(cfg: ClusterConfig) -> dict[str, Any]:
    """``cfg`` as plain JSON values (the feature builder as its parameters)."""
    out = {f.name: getattr(cfg, f.name) for f in fields(cfg)}
    out["features"] = cfg.features.get_params(deep=False)
    return to_jsonable(out)


def run_clustering(
    rfm: pd.DataFrame,
    cfg: ClusterConfig | None = None,
    reference: Mapping[str, Any] | None = None,
    truth: pd.Series | None = None,
    progress: Callable[[str], None] | None = None,
) -> ClusteringResult:
    """Fit K-Means, Ward, HDBSCAN, the Gaussian mixture (+ references) and compare them.

    ``reference`` segmenters (e.g. the RFM segmenter) are fitted in the same loop; one with a
    ``label_lang`` parameter set is replaced by a clone with ``label_lang=None``, so reference
    labels, contingency tables, dominant groups and suggested names are segment ids.
    """
    cfg = cfg or ClusterConfig()
    say = progress or (lambda _msg: None)
    refs_in = {name: ids_only(seg) for name, seg in (reference or {}).items()}
    segs: dict[str, Any] = {**default_segmenters(cfg), **refs_in}
    labels, seconds, errors = _fit_each(segs, rfm, say)
    ok = {k: v for k, v in labels.items() if v is not None}
    say("comparing segmentations")
    refs = [r for r in refs_in if r in ok]
    order = [m for m in DIAGNOSTIC_ORDER if m in ok] + [m for m in METHOD_COLUMNS if m in ok]
    with (
        threadpool_limits(limits=1, user_api="blas"),
        ThreadPoolExecutor(DIAGNOSTIC_THREADS, thread_name_prefix="segwork-diag") as pool,
    ):
        pending = {
            name: pool.submit(_method_summary, name, segs[name], rfm, ok, refs, cfg, say)
            for name in dict.fromkeys(order)
        }
        agreed = pool.submit(agreement, ok, cfg.ami_sample, cfg.seed)
        methods = {name: pending[name].result() for name in METHOD_COLUMNS if name in ok}
        ari, ami = agreed.result()
    tables = {
        f"{m}~{r}": contingency(ok[m], ok[r]) for m in METHOD_COLUMNS if m in ok for r in refs
    }
    summary: dict[str, Any] = {
        "n_customers": len(rfm),
        "config": config_dict(cfg),
        "seconds": seconds,
        "agreement": {"ari": _frame_dict(ari), "ami": _frame_dict(ami)},
        "methods": methods,
        "errors": errors,
    }
    summary.update(_silhouettes(rfm, ok, summary["methods"], cfg))
    summary["segment_methods"] = [
        m
        for m, block in summary["methods"].items()
        if block["status"] == "ok" and block.get("structure", {}).get("verdict") != "none"
    ]
    summary["references"] = {r: _counts(ok[r]) for r in refs}
    if truth is not None:
        summary["truth"] = truth_agreement(ok, rfm.index, truth, tuple(METHOD_COLUMNS))
    say("clustering stage done")
    return ClusteringResult(
        labels=_label_frame(rfm, segs, ok),
        segmenters=segs,
        summary=to_jsonable(summary),
        ari=ari,
        ami=ami,
        contingency=tables,
    )


def _fit_each(
    segs: Mapping[str, Any], rfm: pd.DataFrame, say: Callable[[str], None]
) -> tuple[dict[str, np.ndarray | None], dict[str, float], dict[str, str]]:
    """The single fit loop, timed; one method failing is recorded and the others still run."""
    labels: dict[str, np.ndarray | None] = {}
    seconds: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name, seg in segs.items():
        say(f"fitting {name}")
        t0 = time.perf_counter()
        try:
            labels[name] = np.asarray(seg.fit(rfm).labels_)
        except Exception as exc:  # noqa: BLE001 - a method must not sink the whole stage
            labels[name] = None
            errors[name] = f"{type(exc).__name__}: {exc}"
            say(f"{name} failed: {errors[name]}")
        seconds[name] = time.perf_counter() - t0
        for note in getattr(seg, "notes_", []):
            say(note["message"])
    return labels, seconds, errors


def _method_summary(
    name: str,
    seg: Any,
    rfm: pd.DataFrame,
    labels: Mapping[str, np.ndarray],
    refs: Sequence[str],
    cfg: ClusterConfig,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Counts, selection evidence, notes, stability, rules, names and contingency for a method."""
    lab = labels[name]
    out: dict[str, Any] = {
        "status": seg.status_,
        "n_clusters": int(seg.n_clusters_),
        "counts": _counts(lab),
        "selection": seg.selection_,
        "sampled": bool(seg.sampled_),
        "notes": list(seg.notes_),
    }
    if seg.status_ != "ok":
        return out
    say(f"stability of {name}")
    try:
        out.update(_stability_block(name, seg, rfm, cfg))
        out["rules"] = cluster_rules(
            rfm, lab, RULE_COLUMNS, cfg.rules_max_depth, cfg.rules_sample, cfg.seed
        )
    except Exception as exc:  # noqa: BLE001 - diagnostics must not sink the labels
        out["notes"].append(
            make_note("diagnostics_skipped", method=name, error=f"{type(exc).__name__}: {exc}")
        )
    ref = labels[refs[0]] if refs else None
    out["names"] = suggest_names(rfm, lab, ref)
    out["dominant_groups"] = {r: dominant_groups(lab, labels[r]) for r in refs}
    if name == "hdbscan":
        out["noise"] = {"count": int(np.sum(lab == -1)), "share": float(np.mean(lab == -1))}
        out["structure"] = dict(seg.structure_)
        out["outliers"] = describe_outliers(rfm, lab)
    if name == "gmm":
        out["published"] = dict(PUBLISHED_GMM)
    return out


def _silhouettes(
    rfm: pd.DataFrame,
    labels: Mapping[str, np.ndarray],
    methods: Mapping[str, dict[str, Any]],
    cfg: ClusterConfig,
) -> dict[str, Any]:
    """Each method's silhouette on the same customers (HDBSCAN: its clustered ones), and the best.

    A silhouette counts only when every cluster holds at least ``min_share`` of the customers
    (and, for HDBSCAN, when it found density structure): a win that rests on a tiny cluster of
    extreme customers is reported but not counted.
    """
    x = build_features(rfm, cfg.features)
    idx = sample_indices(len(x), cfg.silhouette_sample, cfg.seed)
    xs = x[idx]
    values: dict[str, float] = {}
    hard = [m for m in methods if not (labels[m] < 0).any()]  # every customer in a cluster
    for name, v in zip(hard, fast_silhouettes(xs, [labels[m][idx] for m in hard]), strict=True):
        values[name] = v  # one distance pass for all of them
    sizes: dict[str, int] = {name: len(idx) for name in hard}
    for name in (m for m in methods if m not in values):  # HDBSCAN: its clustered customers
        lab = labels[name][idx]
        keep = lab >= 0
        values[name] = fast_silhouettes(xs[keep], [lab[keep]])[0] if keep.sum() > 2 else np.nan
        sizes[name] = int(keep.sum())
    best: tuple[float, str] | None = None
    for name, block in methods.items():
        value = values[name]
        share = smallest_share(labels[name])
        counted = (
            block["status"] == "ok"
            and np.isfinite(value)
            and share >= cfg.min_share
            and block.get("structure", {}).get("verdict") != "none"
        )
        block["silhouette"] = {
            "value": value,
            "smallest_share": share,
            "counted": bool(counted),
            "n_sample": sizes[name],
        }
        if counted and (best is None or value > best[0]):
            best = (value, name)
    return {"best_silhouette": {"method": best[1], "value": best[0]} if best else None}


def _stability_block(name: str, seg: Any, rfm: pd.DataFrame, cfg: ClusterConfig) -> dict[str, Any]:
    """Bootstrap stability (+ K-Means seed sensitivity), timed."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {
        "stability": bootstrap_stability(
            seg, rfm, cfg.stability_repeats, cfg.stability_pool, cfg.stability_fraction, cfg.seed
        )
    }
    if name == "kmeans":
        out["seed_sensitivity"] = seed_sensitivity(
            seg, rfm, cfg.kmeans_seeds, cfg.stability_pool, cfg.seed
        )
    out["stability"]["seconds"] = time.perf_counter() - t0
    return out


def _counts(labels: np.ndarray) -> dict[str, int]:
    """Customers per label, noise reported as 'noise'."""
    vals, counts = np.unique(np.asarray(labels), return_counts=True)
    return {("noise" if v == -1 else str(v)): int(c) for v, c in zip(vals, counts, strict=True)}


def _frame_dict(df: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Square metric DataFrame -> nested dict."""
    return {str(i): {str(c): float(df.loc[i, c]) for c in df.columns} for i in df.index}


def _label_frame(
    rfm: pd.DataFrame, segs: Mapping[str, Any], labels: Mapping[str, np.ndarray]
) -> pd.DataFrame:
    """Per-customer labels: one column per method, each soft membership right after its labels
    (``hdbscan_probability``, ``gmm_probability``), then the references."""
    out = pd.DataFrame(index=rfm.index)
    for name, col in METHOD_COLUMNS.items():
        fill = -1 if name == "hdbscan" else 0
        out[col] = labels[name].astype(np.int64) if name in labels else fill
        if name in PROBABILITY_COLUMNS:
            probs = getattr(segs.get(name), "probabilities_", None)
            out[PROBABILITY_COLUMNS[name]] = probs if probs is not None and name in labels else 0.0
    for name, lab in labels.items():
        if name not in METHOD_COLUMNS:
            out[f"{name}_segment"] = lab
    return out
