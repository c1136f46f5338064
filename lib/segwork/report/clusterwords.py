"""Words for the clustering choices: why each method has its k, HDBSCAN's verdict, its outliers.

Every function reads the typed summary (:class:`segwork.summary.Summary`) and returns
display-ready strings or DataFrames in ``lang`` from the text catalogue (section
``clusterwords``); none computes anything the summary does not hold. ``None`` or an empty frame
means there is nothing to say (clustering skipped, method absent).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from segwork.config import METHODS, STABILITY_FLOOR
from segwork.text import catalogue, note_message

if TYPE_CHECKING:
    from segwork.summary import Clustering, Method, Summary

#: Rule codes worded as "chosen in the range" (see segwork.segmenters.choose_k).
RANGE_RULES = ("in_range_min_share_stable_best", "in_range_min_share_stable_lowest_bic")
#: Other selection notes shown with the chosen k, worded from the ``notes`` section.
SELECTION_NOTES = (
    "no_stable_k",
    "score_win_small_cluster",
    "fixed_k_small_cluster",
    "k_range_unreachable",
)


def _clustering(summary: Summary) -> Clustering | None:
    """The clustering block, or None when the run skipped clustering."""
    return summary.clustering


def _method(summary: Summary, name: str) -> Method | None:
    """One method's block, or None."""
    clus = _clustering(summary)
    return clus.methods.get(name) if clus else None


def _num(value: float | None, digits: int = 3) -> str:
    """A score for a sentence; '-' when undefined."""
    return "-" if value is None else f"{value:.{digits}f}"


def method_label(name: str, lang: str) -> str:
    """A method's display name ('Gaussian mixture' / '가우시안 혼합')."""
    return catalogue(lang)["clusterwords.methods"].get(name, name)


def rule_sentence(summary: Summary, lang: str) -> str | None:
    """How k is chosen, with this run's range and minimum share."""
    clus = _clustering(summary)
    if clus is None:
        return None
    lo, hi = clus.config.k_range
    return catalogue(lang)(
        "clusterwords.rule",
        k_min=lo,
        k_max=hi,
        min_share=clus.config.min_share,
        floor=STABILITY_FLOOR,
    )


def _at_k(m: Method, key: str) -> float | None:
    """A per-k score of the method's curve at its chosen k."""
    sc, k = m.selection.scores, m.selection.chosen_k
    values = getattr(sc, key, None) if sc else None
    if not values or k not in sc.k:
        return None
    return values[sc.k.index(k)]


def why_k(summary: Summary, name: str, lang: str) -> list[str]:
    """Why ``name`` (kmeans, ward, gmm) has its k, then the k = 2 note and the other selection
    notes (no stable k, a refused best score on a tiny cluster, ...) when they apply."""
    m = _method(summary, name)
    if m is None or m.status != "ok" or m.selection.chosen_k is None:
        return []
    t = catalogue(lang)
    sel, label = m.selection, method_label(name, lang)
    lo, hi = sel.k_range or summary.clustering.config.k_range
    share = _at_k(m, "smallest_share")
    share = share if share is not None else (m.silhouette.smallest_share if m.silhouette else 0.0)
    score = "bic" if name == "gmm" else "silhouette"
    if sel.rule == "fixed_k":
        out = [t("clusterwords.why_k_fixed", method=label, k=sel.chosen_k, smallest_share=share)]
    elif sel.rule == "largest_gap_in_range":
        out = [
            t(
                "clusterwords.why_k_gap",
                method=label,
                k=sel.chosen_k,
                k_min=lo,
                k_max=hi,
                smallest_share=share,
            )
        ]
    elif sel.rule == "distance_threshold":
        out = [
            t(
                "clusterwords.why_k_threshold",
                method=label,
                k=sel.chosen_k,
                threshold=sel.distance_threshold,
            )
        ]
    else:
        value = _at_k(m, score)
        out = [
            t(
                "clusterwords.why_k",
                method=label,
                k=sel.chosen_k,
                k_min=lo,
                k_max=hi,
                min_share=sel.min_share if sel.min_share is not None else 0.0,
                smallest_share=share,
                stability=_num(_at_k(m, "stability"), 2),
                score=t(f"clusterwords.scores.{score}"),
                value=f"{value:,.0f}" if score == "bic" and value is not None else _num(value),
            )
        ]
    for note in m.notes:
        p = note.params
        if note.code == "k2_best_statistically":
            fmt = (lambda v: f"{v:,.0f}") if p.get("score") == "bic" else _num
            out.append(
                t(
                    "clusterwords.k2",
                    score=t(f"clusterwords.scores.{p.get('score', 'silhouette')}"),
                    value_k2=fmt(p["value_k2"]),
                    value_chosen=fmt(p["value_chosen"]),
                    k=p["chosen_k"],
                )
            )
        elif note.code in SELECTION_NOTES:
            out.append(note_message(note.code, dict(p), lang))
        elif note.code == "min_share_unmet":
            out.append(
                t(
                    "clusterwords.min_share_unmet",
                    k_min=lo,
                    k_max=hi,
                    min_share=p["min_share"],
                    k=p["chosen_k"],
                )
            )
    return out


def k_table(summary: Summary, name: str, lang: str) -> pd.DataFrame:
    """Per k of the curve (from 2): the scores, stability, smallest share, eligible and chosen."""
    m = _method(summary, name)
    sc = m.selection.scores if m else None
    if sc is None:
        return pd.DataFrame()
    t = catalogue(lang)
    lo, hi = m.selection.k_range or summary.clustering.config.k_range
    floor = m.selection.min_share if m.selection.min_share is not None else 0.0
    df = pd.DataFrame({"k": sc.k})
    for key in ("silhouette", "bic", "merge_gap", "stability", "smallest_share"):
        values = getattr(sc, key, None)
        if values:
            df[key] = pd.Series(values, dtype="float64").round(4)
    shares = sc.smallest_share or [None] * len(sc.k)
    yes, no = t("clusterwords.answer_yes"), t("clusterwords.answer_no")
    df["eligible"] = [
        yes if lo <= k <= hi and s is not None and s >= floor else no
        for k, s in zip(sc.k, shares, strict=True)
    ]
    df["chosen"] = [yes if k == m.selection.chosen_k else "" for k in sc.k]
    return df.set_index("k").rename(columns=t["clusterwords.columns"])


def structure_sentence(summary: Summary, lang: str) -> str | None:
    """HDBSCAN's verdict: density structure found (its clusters are segments) or none."""
    m = _method(summary, "hdbscan")
    if m is None or m.structure is None:
        return None
    st, t = m.structure, catalogue(lang)
    if st.verdict == "found":
        return t(
            "clusterwords.structure_found",
            dbcv=st.dbcv,
            threshold=st.threshold,
            clusters=m.n_clusters,
        )
    return t("clusterwords.structure_none", dbcv=_num(st.dbcv, 2), threshold=st.threshold)


def outliers_sentence(summary: Summary, lang: str) -> str | None:
    """What HDBSCAN's outliers are: how many, how much revenue, what they look like."""
    m = _method(summary, "hdbscan")
    o = m.outliers if m else None
    if o is None:
        return None
    t = catalogue(lang)
    if o.code == "outliers_none":
        return t("clusterwords.outliers_none")
    med, allm = o.median, o.overall_median
    return t(
        f"clusterwords.{o.code}",
        count=o.count,
        share=o.share,
        revenue_share=o.revenue_share,
        frequency=med.get("frequency") or 0.0,
        monetary=med.get("monetary") or 0.0,
        all_frequency=allm.get("frequency") or 0.0,
        all_monetary=allm.get("monetary") or 0.0,
        top_share=o.top_spenders_share,
    )


def segment_methods(summary: Summary) -> list[str]:
    """Methods whose clusters the comparison may present as segments (in report order)."""
    clus = _clustering(summary)
    return [m for m in METHODS if clus and m in clus.segment_methods]


def silhouette_table(summary: Summary, lang: str) -> pd.DataFrame:
    """Per method: clusters, silhouette on a common sample, smallest cluster, counted (or why not)."""
    clus = _clustering(summary)
    if clus is None:
        return pd.DataFrame()
    t = catalogue(lang)
    rows = []
    for name in METHODS:
        m = clus.methods.get(name)
        if m is None or m.silhouette is None:
            continue
        s = m.silhouette
        if s.counted:
            counted = t("clusterwords.answer_yes")
        elif m.structure is not None and m.structure.verdict == "none":
            counted = t("clusterwords.not_counted_structure")
        else:
            counted = t("clusterwords.not_counted", min_share=clus.config.min_share)
        rows.append(
            {
                "method": method_label(name, lang),
                "k": m.n_clusters,
                "silhouette": round(s.value, 3) if s.value is not None else None,
                "smallest_share": round(s.smallest_share, 4),
                "counted": counted,
            }
        )
    return pd.DataFrame(rows).rename(columns=t["clusterwords.columns"])


def published_sentence(summary: Summary, lang: str) -> str | None:
    """The Gaussian mixture's silhouette beside the published figure (and whether it counts)."""
    m = _method(summary, "gmm")
    if m is None or m.published is None or m.silhouette is None:
        return None
    t = catalogue(lang)
    s = m.silhouette
    text = t(
        "clusterwords.published",
        value=_num(s.value, 2),
        k=m.n_clusters,
        smallest_share=s.smallest_share,
        published=m.published.silhouette,
        source=t["clusterwords.sources"].get(m.published.source, m.published.source),
    )
    if not s.counted:
        text += f" ({t('clusterwords.not_counted', min_share=summary.clustering.config.min_share)})"
    return text


def best_sentence(summary: Summary, lang: str) -> str | None:
    """Which method has the best counted silhouette."""
    clus = _clustering(summary)
    best = clus.best_silhouette if clus else None
    if best is None:
        return None
    return catalogue(lang)(
        "clusterwords.best", method=method_label(best.method, lang), value=best.value
    )


def words(art_summary: Summary, lang: str) -> list[str]:
    """Every sentence the clusters page states: the rule, why each k, structure, outliers, best."""
    out = [rule_sentence(art_summary, lang)]
    for name in METHODS:
        out += why_k(art_summary, name, lang)
    out += [
        structure_sentence(art_summary, lang),
        outliers_sentence(art_summary, lang),
        best_sentence(art_summary, lang),
        published_sentence(art_summary, lang),
    ]
    return [s for s in out if s]
