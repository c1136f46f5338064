"""Pure comparisons of segmentations: agreement, contingency, stability, rules and names.

Every function takes label arrays (and the RFM table where it needs R, F, M), returns plain
pandas objects or JSON-serialisable dicts and does no I/O. Results carry ids and codes only
(RFM segment ids such as ``vip``, profile codes such as ``recent+frequent+high_spend``);
display text in a language is looked up by the report layer (:mod:`segwork.profile`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import adjusted_mutual_info_score
from sklearn.tree import DecisionTreeClassifier

from segwork.config import STABILITY_POOL
from segwork.segmenters import (
    GaussianMixtureSegmenter,
    HDBSCANSegmenter,
    KMeansSegmenter,
    WardSegmenter,
    sample_indices,
)
from segwork.tally import adjusted_rand, adjusted_rand_of_codes, codes, crosstab

RULE_COLUMNS = ("recency_days", "frequency", "monetary")
NOISE = "noise"
#: Codes of :func:`profile_code`, one per axis: (at or better than the median, worse).
PROFILE_CODES = (("recent", "lapsed"), ("frequent", "infrequent"), ("high_spend", "low_spend"))

# --------------------------------------------------------------------------- agreement


def agreement(
    labels: Mapping[str, np.ndarray], ami_sample_size: int | None = 200_000, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ARI and AMI for every pair of segmentations, as two symmetric DataFrames.

    ARI is exact on all customers (:func:`segwork.tally.adjusted_rand`: sklearn's value from
    one bincount). AMI's expected-MI term grows with n, so above ``ami_sample_size`` it is
    computed on a fixed random sample (None = always exact). Each labeling is coded once.
    """
    names = list(labels)
    ari = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    ami = ari.copy()
    n = len(next(iter(labels.values()))) if names else 0
    idx = sample_indices(n, ami_sample_size, seed) if ami_sample_size else np.arange(n)
    coded = {name: codes(labels[name]) for name in names}
    for a, b in itertools.combinations(names, 2):
        (la, ua), (lb, ub) = coded[a], coded[b]
        ari.loc[a, b] = ari.loc[b, a] = adjusted_rand_of_codes(la, len(ua), lb, len(ub))
        ami.loc[a, b] = ami.loc[b, a] = adjusted_mutual_info_score(la[idx], lb[idx])
    return ari, ami


def contingency(labels_a: np.ndarray, labels_b: np.ndarray) -> pd.DataFrame:
    """Counts of customers per (cluster of A, group of B); rows A, columns B (``pd.crosstab``'s table)."""
    return crosstab(pd.Series(labels_a, name="cluster"), pd.Series(labels_b, name="group"))


def dominant_groups(labels: np.ndarray, reference: np.ndarray) -> list[dict[str, Any]]:
    """Per cluster: its size, the reference group (id) most of it falls in, and that share."""
    table = contingency(labels, reference)
    out = []
    for cluster, row in table.iterrows():
        size = int(row.sum())
        top = row.idxmax()
        share = float(row.max() / size) if size else 0.0
        out.append(
            {"cluster": plain(cluster), "size": size, "dominant": plain(top), "share": share}
        )
    return out


def plain(v: Any) -> Any:
    """numpy scalar -> Python scalar (JSON friendly)."""
    return v.item() if isinstance(v, np.generic) else v


# --------------------------------------------------------------------------- stability


def frozen_clone(seg: Any) -> Any:
    """An unfitted copy of a fitted segmenter with its selected parameters fixed (no re-search)."""
    new = clone(seg)
    if isinstance(seg, KMeansSegmenter | WardSegmenter) and getattr(seg, "n_clusters_", 0) >= 1:
        if isinstance(seg, WardSegmenter) and seg.distance_threshold is not None:
            return new
        new.set_params(n_clusters=int(seg.n_clusters_), score_curves=False)
        if isinstance(seg, KMeansSegmenter):  # scores of a fixed k are not needed here
            new.set_params(silhouette_sample_size=min(seg.silhouette_sample_size, 1_000))
    elif isinstance(seg, GaussianMixtureSegmenter) and getattr(seg, "model_", None) is not None:
        new.set_params(
            n_components=int(seg.n_clusters_),
            score_curves=False,
            silhouette_sample_size=min(seg.silhouette_sample_size, 1_000),
        )
    elif isinstance(seg, HDBSCANSegmenter) and getattr(seg, "model_", None) is not None:
        sel = seg.selection_
        new.set_params(
            min_cluster_size=sel["chosen_min_cluster_size_param"],
            min_samples=sel["chosen_min_samples"],
            cluster_selection_method=sel["chosen_cluster_selection_method"],
        )
    return new


def bootstrap_stability(
    seg: Any,
    rfm: pd.DataFrame,
    repeats: int = 3,
    pool_size: int = STABILITY_POOL,
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
        pairs.append(adjusted_rand(a[common].to_numpy(), b[common].to_numpy()))
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
    pool_size: int = STABILITY_POOL,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean pairwise ARI of K-Means fits (k fixed) that differ only in ``random_state``."""
    pool = rfm.iloc[sample_indices(len(rfm), pool_size, seed)]
    runs = [frozen_clone(seg).set_params(random_state=s).fit(pool).labels_ for s in seeds]
    pairs = [adjusted_rand(a, b) for a, b in itertools.combinations(runs, 2)]
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
        rules.setdefault(str(plain(winner)), []).append(
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


def profile_code(rfm: pd.DataFrame, labels: np.ndarray, cluster: Any) -> str:
    """A language-free profile from the cluster's median R/F/M vs all customers.

    One code per axis from :data:`PROFILE_CODES`, joined by ``+``
    (e.g. ``recent+infrequent+low_spend``); noise (-1) is ``noise``.
    """
    if cluster == -1:
        return NOISE
    return mask_profile(rfm, np.asarray(labels) == cluster)


def mask_profile(rfm: pd.DataFrame, mask: np.ndarray) -> str:
    """The profile code (see :func:`profile_code`) of the customers in ``mask``."""
    med = rfm.loc[mask, list(RULE_COLUMNS)].median()
    allm = rfm[list(RULE_COLUMNS)].median()
    (recent, lapsed), (freq, infreq), (high, low) = PROFILE_CODES
    return "+".join(
        (
            recent if med["recency_days"] <= allm["recency_days"] else lapsed,
            freq if med["frequency"] > allm["frequency"] else infreq,
            high if med["monetary"] > allm["monetary"] else low,
        )
    )


def suggest_names(
    rfm: pd.DataFrame, labels: np.ndarray, reference: np.ndarray | None = None
) -> dict[str, str]:
    """Suggested name per cluster as an id: the dominant reference group, else a profile code.

    Noise is ``noise``. The share behind a reference name is in :func:`dominant_groups`; the
    text a reader sees comes from ``segwork.profile.cluster_name``.
    """
    if reference is not None:
        return {
            str(d["cluster"]): NOISE if d["cluster"] == -1 else str(d["dominant"])
            for d in dominant_groups(labels, reference)
        }
    return {str(plain(c)): profile_code(rfm, labels, c) for c in np.unique(labels)}


def describe_outliers(rfm: pd.DataFrame, labels: np.ndarray) -> dict[str, Any]:
    """HDBSCAN's outliers (-1) in figures and a code, so a report never just says "noise".

    ``code``: ``outliers_big_buyers`` when their revenue share is at least twice their customer
    share (e.g. a few very large wholesale buyers), ``outliers_small_buyers`` when at most half
    of it, ``outliers_mixed`` between, ``outliers_none`` when there are none. ``profile`` is the
    profile code of their median R/F/M against all customers; ``top_spenders_share`` is the
    share of the top 1% of customers by spend that are outliers.
    """
    lab = np.asarray(labels)
    out_mask = lab == -1
    spend = pd.to_numeric(rfm["monetary"], errors="coerce").fillna(0.0).clip(lower=0.0)
    total = float(spend.sum())
    count = int(out_mask.sum())
    share = float(out_mask.mean()) if len(lab) else 0.0
    revenue_share = float(spend[out_mask].sum() / total) if total > 0 else 0.0
    top = spend.to_numpy() >= np.quantile(spend, 0.99) if len(spend) else out_mask
    if count == 0:
        code = "outliers_none"
    elif revenue_share >= 2 * share:
        code = "outliers_big_buyers"
    elif revenue_share <= share / 2:
        code = "outliers_small_buyers"
    else:
        code = "outliers_mixed"
    cols = list(RULE_COLUMNS)
    median = rfm.loc[out_mask, cols].median() if count else pd.Series(np.nan, index=cols)
    return {
        "code": code,
        "count": count,
        "share": share,
        "revenue_share": revenue_share,
        "median": {c: float(median[c]) if pd.notna(median[c]) else None for c in cols},
        "overall_median": {c: float(rfm[c].median()) for c in cols},
        "profile": mask_profile(rfm, out_mask) if count else None,
        "top_spenders_share": float(out_mask[top].mean()) if top.any() else 0.0,
    }


# --------------------------------------------------------------------------- truth


def truth_agreement(
    labels: Mapping[str, np.ndarray],
    index: pd.Index,
    truth: pd.Series,
    methods: Sequence[str],
) -> dict[str, Any]:
    """Each segmentation's ARI vs planted personas; the best of ``methods`` and whether it reaches 0.8."""
    aligned = truth.reindex(index)
    known = aligned.notna().to_numpy()
    t = aligned[known].astype(str).to_numpy()
    scores = {name: adjusted_rand(t, lab[known]) for name, lab in labels.items()}
    scored = {k: v for k, v in scores.items() if k in methods}
    best = max(scored, key=scored.get) if scored else None
    return {
        "ari_vs_truth": scores,
        "best_method": best,
        "best_ari": scored.get(best) if best else None,
        "any_reaches_0_8": bool(any(v >= 0.8 for v in scored.values())),
        "n_matched": int(known.sum()),
    }
