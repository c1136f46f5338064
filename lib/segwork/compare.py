"""Run every segmenter through one fit loop and compare them: agreement, stability, rules.

Everything here takes the RFM table plus fitted segmenters or label arrays, and returns plain
pandas objects or JSON-serialisable dicts, so the notebook and ``summary.json`` share one source.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score
from sklearn.tree import DecisionTreeClassifier

from segwork.cluster import (
    HDBSCANSegmenter,
    KMeansSegmenter,
    WardSegmenter,
    _jsonable,
    sample_indices,
)
from segwork.features import FeatureSpec

RULE_COLUMNS = ("recency_days", "frequency", "monetary")
METHOD_COLUMNS = {"kmeans": "kmeans_cluster", "ward": "ward_cluster", "hdbscan": "hdbscan_cluster"}

# --------------------------------------------------------------------------- fit loop


def fit_all(segmenters: Mapping[str, Any], rfm: pd.DataFrame) -> dict[str, np.ndarray]:
    """Fit every segmenter on the same RFM table, in one loop, and collect ``labels_``."""
    labels: dict[str, np.ndarray] = {}
    for name, seg in segmenters.items():
        labels[name] = np.asarray(seg.fit(rfm).labels_)
    return labels


# --------------------------------------------------------------------------- agreement


def agreement(
    labels: Mapping[str, np.ndarray], ami_sample_size: int | None = 200_000, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ARI and AMI for every pair of segmentations, as two symmetric DataFrames.

    ARI is exact on all customers. AMI's expected-MI term grows with n, so above
    ``ami_sample_size`` it is computed on a fixed random sample (None = always exact).
    """
    names = list(labels)
    ari = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    ami = ari.copy()
    n = len(next(iter(labels.values()))) if names else 0
    idx = sample_indices(n, ami_sample_size, seed) if ami_sample_size else np.arange(n)
    for a, b in itertools.combinations(names, 2):
        la, lb = _codes(labels[a]), _codes(labels[b])
        ari.loc[a, b] = ari.loc[b, a] = adjusted_rand_score(la, lb)
        ami.loc[a, b] = ami.loc[b, a] = adjusted_mutual_info_score(la[idx], lb[idx])
    return ari, ami


def _codes(labels: np.ndarray) -> np.ndarray:
    """Integer codes for any label array (strings included), for fast metric computation."""
    return pd.factorize(np.asarray(labels), sort=True)[0]


def contingency(labels_a: np.ndarray, labels_b: np.ndarray) -> pd.DataFrame:
    """Counts of customers per (cluster of A, group of B); rows A, columns B."""
    return pd.crosstab(pd.Series(labels_a, name="cluster"), pd.Series(labels_b, name="group"))


def dominant_groups(labels: np.ndarray, reference: np.ndarray) -> list[dict[str, Any]]:
    """Per cluster: its size, the reference group most of it falls in, and that share."""
    table = contingency(labels, reference)
    out = []
    for cluster, row in table.iterrows():
        size = int(row.sum())
        top = row.idxmax()
        share = float(row.max() / size) if size else 0.0
        name = "noise" if cluster == -1 else f"cluster {cluster}"
        out.append(
            {
                "cluster": _plain(cluster),
                "size": size,
                "dominant": _plain(top),
                "share": share,
                "text": f"{name} = {share:.0%} {top}",
            }
        )
    return out


def _plain(v: Any) -> Any:
    """numpy scalar -> Python scalar (JSON friendly)."""
    return v.item() if isinstance(v, np.generic) else v


# --------------------------------------------------------------------------- stability


def frozen_clone(seg: Any) -> Any:
    """An unfitted copy of a fitted segmenter with its selected parameters fixed (no re-search)."""
    new = clone(seg)
    if isinstance(seg, KMeansSegmenter | WardSegmenter) and getattr(seg, "n_clusters_", 0) >= 1:
        if isinstance(seg, WardSegmenter) and seg.distance_threshold is not None:
            return new
        new.set_params(n_clusters=int(seg.n_clusters_))
        if isinstance(seg, KMeansSegmenter):  # scores of a fixed k are not needed here
            new.set_params(silhouette_sample_size=min(seg.silhouette_sample_size, 1_000))
    elif isinstance(seg, HDBSCANSegmenter) and getattr(seg, "model_", None) is not None:
        sel = seg.selection_
        new.set_params(
            min_cluster_size=sel["chosen_min_cluster_size_param"],
            min_samples=sel["chosen_min_samples"],
        )
    return new


def bootstrap_stability(
    seg: Any,
    rfm: pd.DataFrame,
    repeats: int = 3,
    pool_size: int = 20_000,
    fraction: float = 0.8,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean pairwise ARI between fits on random subsamples, compared on the customers they share.

    A pool of ``pool_size`` customers is drawn once; each repeat fits a frozen clone (chosen k /
    HDBSCAN parameters fixed) on ``fraction`` of the pool, so two repeats overlap on about
    ``fraction**2`` of it. 1.0 = the same segmentation every time.
    """
    pool = sample_indices(len(rfm), pool_size, seed)
    rng = np.random.default_rng(seed + 1)
    m = max(2, int(round(fraction * len(pool))))
    fits = []
    for _ in range(repeats):
        idx = np.sort(rng.choice(pool, size=min(m, len(pool)), replace=False))
        est = frozen_clone(seg)
        fits.append(pd.Series(np.asarray(est.fit(rfm.iloc[idx]).labels_), index=idx))
    pairs = []
    for a, b in itertools.combinations(fits, 2):
        common = a.index.intersection(b.index)
        pairs.append(float(adjusted_rand_score(_codes(a[common]), _codes(b[common]))))
    return {
        "mean_ari": float(np.mean(pairs)) if pairs else None,
        "min_ari": float(np.min(pairs)) if pairs else None,
        "pairwise_ari": pairs,
        "repeats": repeats,
        "subsample_size": int(min(m, len(pool))),
        "pool_size": int(len(pool)),
    }


def seed_sensitivity(
    seg: KMeansSegmenter,
    rfm: pd.DataFrame,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    pool_size: int = 20_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean pairwise ARI of K-Means fits (k fixed) that differ only in ``random_state``."""
    pool = rfm.iloc[sample_indices(len(rfm), pool_size, seed)]
    runs = [frozen_clone(seg).set_params(random_state=s).fit(pool).labels_ for s in seeds]
    pairs = [float(adjusted_rand_score(a, b)) for a, b in itertools.combinations(runs, 2)]
    return {
        "mean_ari": float(np.mean(pairs)) if pairs else None,
        "min_ari": float(np.min(pairs)) if pairs else None,
        "seeds": list(seeds),
        "pool_size": int(len(pool)),
    }


# --------------------------------------------------------------------------- rules and names


def cluster_rules(
    rfm: pd.DataFrame,
    labels: np.ndarray,
    columns: Sequence[str] = RULE_COLUMNS,
    max_depth: int = 3,
    sample_size: int = 50_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Plain-language rules per cluster from one shallow multi-class tree on raw R, F, M.

    Each leaf becomes "a <= x and b >= y"; a cluster's rules are the leaves that predict it,
    largest first, with precision (share of the leaf in the cluster) and coverage (share of the
    cluster in the leaf). ``fidelity`` = the tree's accuracy against the cluster labels.
    """
    idx = sample_indices(len(rfm), sample_size, seed)
    x = rfm.iloc[idx][list(columns)].astype("float64").fillna(0.0).to_numpy()
    y = np.asarray(labels)[idx]
    if len(np.unique(y)) < 2:
        return {"fidelity": 1.0, "max_depth": max_depth, "n_sample": len(idx), "rules": {}}
    tree = DecisionTreeClassifier(max_depth=max_depth, random_state=seed).fit(x, y)
    fidelity = float(np.mean(tree.predict(x) == y))
    leaf_of = tree.apply(x)
    integer = [bool(pd.api.types.is_integer_dtype(rfm[c])) for c in columns]
    rules: dict[str, list[dict[str, Any]]] = {}
    for leaf, conds in _leaf_paths(tree).items():
        in_leaf = leaf_of == leaf
        values, counts = np.unique(y[in_leaf], return_counts=True)
        winner = values[np.argmax(counts)]
        hit = int(counts.max())
        rules.setdefault(str(_plain(winner)), []).append(
            {
                "rule": _rule_text(conds, columns, integer),
                "precision": hit / int(in_leaf.sum()),
                "coverage": hit / int(np.sum(y == winner)),
                "n": int(in_leaf.sum()),
            }
        )
    for items in rules.values():
        items.sort(key=lambda r: -r["coverage"])
    return {"fidelity": fidelity, "max_depth": max_depth, "n_sample": len(idx), "rules": rules}


def _leaf_paths(tree: DecisionTreeClassifier) -> dict[int, list[tuple[int, str, float]]]:
    """leaf node id -> list of (feature, '<=' or '>', threshold) on the path from the root."""
    t = tree.tree_
    out: dict[int, list[tuple[int, str, float]]] = {}
    stack: list[tuple[int, list[tuple[int, str, float]]]] = [(0, [])]
    while stack:
        node, path = stack.pop()
        if t.children_left[node] == -1:
            out[node] = path
            continue
        f, thr = int(t.feature[node]), float(t.threshold[node])
        stack.append((int(t.children_left[node]), [*path, (f, "<=", thr)]))
        stack.append((int(t.children_right[node]), [*path, (f, ">", thr)]))
    return out


def _rule_text(
    conds: list[tuple[int, str, float]], columns: Sequence[str], integer: Sequence[bool]
) -> str:
    """Merge a path's conditions per feature into readable bounds ("frequency >= 6")."""
    if not conds:
        return "all customers"
    lo: dict[int, float] = {}
    hi: dict[int, float] = {}
    for f, op, thr in conds:
        if op == "<=":
            hi[f] = min(hi.get(f, np.inf), thr)
        else:
            lo[f] = max(lo.get(f, -np.inf), thr)
    parts = []
    for f in sorted(set(lo) | set(hi)):
        name = columns[f]
        if f in lo:
            parts.append(
                f"{name} >= {int(np.floor(lo[f])) + 1}" if integer[f] else f"{name} > {_num(lo[f])}"
            )
        if f in hi:
            parts.append(
                f"{name} <= {int(np.floor(hi[f]))}" if integer[f] else f"{name} <= {_num(hi[f])}"
            )
    return " and ".join(parts)


def _num(v: float) -> str:
    """Short human number: 2 decimals below 100, whole numbers above."""
    return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"


def profile_name(rfm: pd.DataFrame, labels: np.ndarray, cluster: Any) -> str:
    """A descriptive name from the cluster's median R/F/M relative to all customers."""
    mask = np.asarray(labels) == cluster
    if cluster == -1:
        return "noise (no dense group)"
    med = rfm.loc[mask, list(RULE_COLUMNS)].median()
    allm = rfm[list(RULE_COLUMNS)].median()
    recent = "recent" if med["recency_days"] <= allm["recency_days"] else "lapsed"
    freq = "frequent" if med["frequency"] > allm["frequency"] else "infrequent"
    spend = "high-spend" if med["monetary"] > allm["monetary"] else "low-spend"
    return f"{recent}, {freq}, {spend}"


def suggest_names(
    rfm: pd.DataFrame, labels: np.ndarray, reference: np.ndarray | None = None
) -> dict[str, str]:
    """Business name per cluster: the dominant reference (RFM) group, else an R/F/M profile."""
    names: dict[str, str] = {}
    if reference is not None:
        for d in dominant_groups(labels, reference):
            label = "noise" if d["cluster"] == -1 else str(d["dominant"])
            names[str(d["cluster"])] = f"{label} ({d['share']:.0%})"
        return names
    for c in np.unique(labels):
        names[str(_plain(c))] = profile_name(rfm, labels, c)
    return names


# --------------------------------------------------------------------------- the stage


@dataclass(frozen=True)
class ClusterConfig:
    """Everything the clustering stage needs besides the data (defaults sized for 1M in ~1 min)."""

    features: FeatureSpec = field(default_factory=FeatureSpec)
    k_range: tuple[int, int] = (2, 10)
    kmeans_selection_sample: int = 50_000
    silhouette_sample: int = 10_000
    ward_max_fit_size: int = 20_000
    hdbscan_max_fit_size: int = 20_000
    hdbscan_min_cluster_size_grid: tuple[float, ...] = (0.005, 0.01, 0.02)
    hdbscan_min_samples_grid: tuple[int, ...] = (5, 20)
    stability_repeats: int = 3
    stability_pool: int = 20_000
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
    """The three clustering methods configured from ``cfg`` (same features for all)."""
    return {
        "kmeans": KMeansSegmenter(
            features=cfg.features,
            k_range=cfg.k_range,
            selection_sample_size=cfg.kmeans_selection_sample,
            silhouette_sample_size=cfg.silhouette_sample,
            random_state=cfg.seed,
        ),
        "ward": WardSegmenter(
            features=cfg.features,
            k_range=cfg.k_range,
            max_fit_size=cfg.ward_max_fit_size,
            silhouette_sample_size=cfg.silhouette_sample,
            random_state=cfg.seed,
        ),
        "hdbscan": HDBSCANSegmenter(
            features=cfg.features,
            min_cluster_size_grid=cfg.hdbscan_min_cluster_size_grid,
            min_samples_grid=cfg.hdbscan_min_samples_grid,
            max_fit_size=cfg.hdbscan_max_fit_size,
            random_state=cfg.seed,
        ),
    }


def run_clustering(
    rfm: pd.DataFrame,
    cfg: ClusterConfig | None = None,
    reference: Mapping[str, Any] | None = None,
    truth: pd.Series | None = None,
    progress: Callable[[str], None] | None = None,
) -> ClusteringResult:
    """Fit K-Means, Ward, HDBSCAN (+ reference segmenters) and compare them in one summary."""
    cfg = cfg or ClusterConfig()
    say = progress or (lambda _msg: None)
    segs: dict[str, Any] = {**default_segmenters(cfg), **dict(reference or {})}
    labels, seconds, errors = _fit_each(segs, rfm, say)
    ok = {k: v for k, v in labels.items() if v is not None}
    say("comparing segmentations")
    ari, ami = agreement(ok, cfg.ami_sample, cfg.seed)
    refs = [r for r in (reference or {}) if r in ok]
    tables = {
        f"{m}~{r}": contingency(ok[m], ok[r]) for m in METHOD_COLUMNS if m in ok for r in refs
    }
    summary: dict[str, Any] = {
        "n_customers": len(rfm),
        "config": _jsonable(asdict(cfg)),
        "seconds": seconds,
        "agreement": {"ari": _frame_dict(ari), "ami": _frame_dict(ami)},
        "methods": {},
        "errors": errors,
    }
    for name in METHOD_COLUMNS:
        if name in ok:
            summary["methods"][name] = _method_summary(name, segs[name], rfm, ok, refs, cfg, say)
    summary["references"] = {r: _counts(ok[r]) for r in refs}
    if truth is not None:
        summary["truth"] = _truth_summary(ok, rfm, truth)
    say("clustering stage done")
    return ClusteringResult(
        labels=_label_frame(rfm, segs, ok),
        segmenters=segs,
        summary=_jsonable(summary),
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
            say(note)
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
        out["notes"].append(f"{name}: stability/rules skipped ({type(exc).__name__}: {exc})")
    ref = labels[refs[0]] if refs else None
    out["names"] = suggest_names(rfm, lab, ref)
    out["dominant_groups"] = {r: dominant_groups(lab, labels[r]) for r in refs}
    if name == "hdbscan":
        out["noise"] = {"count": int(np.sum(lab == -1)), "share": float(np.mean(lab == -1))}
    return out


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
    return {
        ("noise" if v == -1 else str(_plain(v))): int(c) for v, c in zip(vals, counts, strict=True)
    }


def _frame_dict(df: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Square metric DataFrame -> nested dict."""
    return {str(i): {str(c): float(df.loc[i, c]) for c in df.columns} for i in df.index}


def _truth_summary(
    labels: Mapping[str, np.ndarray], rfm: pd.DataFrame, truth: pd.Series
) -> dict[str, Any]:
    """Each method's ARI vs the planted personas, the best method and whether it reaches 0.8."""
    aligned = truth.reindex(rfm.index)
    known = aligned.notna().to_numpy()
    t = _codes(aligned[known].astype(str).to_numpy())
    scores = {
        name: float(adjusted_rand_score(t, _codes(lab[known]))) for name, lab in labels.items()
    }
    methods = {k: v for k, v in scores.items() if k in METHOD_COLUMNS}
    best = max(methods, key=methods.get) if methods else None
    return {
        "ari_vs_truth": scores,
        "best_method": best,
        "best_ari": methods.get(best) if best else None,
        "any_reaches_0_8": bool(any(v >= 0.8 for v in methods.values())),
        "n_matched": int(known.sum()),
    }


def _label_frame(
    rfm: pd.DataFrame, segs: Mapping[str, Any], labels: Mapping[str, np.ndarray]
) -> pd.DataFrame:
    """Per-customer labels: one column per method (+ HDBSCAN membership strength, references)."""
    out = pd.DataFrame(index=rfm.index)
    for name, col in METHOD_COLUMNS.items():
        fill = -1 if name == "hdbscan" else 0
        out[col] = labels[name].astype(np.int64) if name in labels else fill
    hd = segs.get("hdbscan")
    probs = getattr(hd, "probabilities_", None)
    out["hdbscan_probability"] = probs if probs is not None and "hdbscan" in labels else 0.0
    for name, lab in labels.items():
        if name not in METHOD_COLUMNS:
            out[f"{name}_segment"] = lab
    return out
