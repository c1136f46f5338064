"""Display tables for report readers: small frames built from the artefacts, in the reader's language."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from segwork.artifacts import Artifacts

if TYPE_CHECKING:  # pragma: no cover
    from segwork.summary import Ledger, Method, Summary

from segwork.config import METHODS, NOTEBOOKS  # noqa: F401
from segwork.text import catalogue, note_message

__all__ = [
    "setup_notebook",
    "reason_labels",
    "headline",
    "ledger_table",
    "coverage_table",
    "monthly_table",
    "rfm_describe",
    "top_items",
    "quality_warnings",
    "edges_table",
    "score_counts",
    "map_grid",
    "grid_counts",
    "top_customers",
    "method",
    "selection_table",
    "kmeans_scores",
    "dbcv_table",
    "cluster_counts",
    "cluster_count_table",
    "notes",
    "agreement",
    "rules_table",
    "stability",
    "stability_table",
    "truth_table",
    "truth_sentence",
    "headline_comparison",
    "warning_text",
    "rule_text",
    "page_title",
    "METHODS",
]
SCORE_LETTERS = {"recency_days": "R", "frequency": "F", "monetary": "M"}


def named(df: pd.DataFrame, lang: str) -> pd.DataFrame:
    """``df`` with its column ids (and index name) as headers in ``lang``; unknown ids unchanged."""
    names = catalogue(lang)["columns"]
    out = df.rename(columns=lambda c: names.get(c, c) if isinstance(c, str) else c)
    if isinstance(out.index.name, str):
        out.index.name = names.get(out.index.name, out.index.name)
    return out


def page_title(name: str, lang: str) -> str:
    """The page title of a notebook in ``lang`` (its file stem when the catalogue has none)."""
    return catalogue(lang)["pages"].get(name, name)


def setup_notebook() -> None:
    """Display settings for report notebooks: compact tables and PNG figures shown once."""
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.width", 160)
    pd.set_option("display.max_colwidth", 80)
    pd.set_option("display.precision", 3)
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # pragma: no cover - outside Jupyter
        return
    if get_ipython() is not None:
        set_matplotlib_formats("png", bbox_inches=None)  # figures use constrained layout


def reason_labels(lang: str) -> dict[str, str]:
    """Drop reason id -> readable label in ``lang``."""
    return dict(catalogue(lang)["reasons"])


def headline(art: Artifacts, lang: str) -> pd.DataFrame:
    """One-row overview: as-of date, period, source file name, customers, rows kept."""
    s = art.summary
    led = s.ledger
    row = {
        "as_of": s.as_of.isoformat(),
        "period": f"{s.period.first} ~ {s.period.last}",
        "data": Path(s.source.path).name,
        "customers": s.customers,
        "rows_kept": f"{led.rows_kept:,} / {led.rows_in:,}",
    }
    return named(pd.DataFrame([row]), lang)


def ledger_table(ledger: Ledger, lang: str) -> pd.DataFrame:
    """Rows and revenue read, dropped per reason and kept; shares of rows read."""
    t = catalogue(lang)
    names = {**t["reasons"], **t["ledger"]}
    rows = [("read", ledger.rows_in, ledger.revenue_in)]
    rows += [(r, -d.rows, -d.revenue) for r, d in ledger.dropped.items()]
    rows.append(("kept", ledger.rows_kept, ledger.revenue_kept))
    df = pd.DataFrame(
        {
            "step": [names.get(r, r) for r, _, _ in rows],
            "rows": [n for _, n, _ in rows],
            "row_share": [
                round(100 * abs(n) / ledger.rows_in, 2) if ledger.rows_in else 0.0
                for _, n, _ in rows
            ],
            "revenue": [round(float(v), 2) for _, _, v in rows],
        }
    )
    return named(df, lang)


def coverage_table(art: Artifacts, lang: str) -> pd.DataFrame:
    """Date coverage: first and last kept purchase, as-of date, months, months with no orders."""
    m = art.monthly
    empty = [d.strftime("%Y-%m") for d in pd.to_datetime(m.loc[m["orders"] == 0, "month"])]
    s = art.summary
    t = catalogue(lang)
    source = t["as_of_source"].get(s.as_of_source, s.as_of_source)
    keys = (
        ("first_purchase", s.period.first.isoformat()),
        ("last_purchase", s.period.last.isoformat()),
        ("as_of_date", f"{s.as_of} ({source})"),
        ("months", str(len(m))),
        ("empty_months", ", ".join(empty) or t("coverage.none")),
    )
    df = pd.DataFrame(
        {"item": [t(f"coverage.{k}") for k, _ in keys], "value": [v for _, v in keys]}
    )
    return named(df, lang)


def monthly_table(monthly: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Orders, revenue and active customers per month, month as YYYY-MM."""
    df = monthly.copy()
    df["month"] = pd.to_datetime(df["month"]).dt.strftime("%Y-%m")
    df["revenue"] = df["revenue"].round(2)
    return named(df, lang)


def rfm_describe(customers: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Quantiles of recency, frequency and monetary."""
    q = customers[["recency_days", "frequency", "monetary"]].quantile(
        [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]
    )
    q.index = [f"p{int(round(100 * i))}" for i in q.index]
    return named(q.round(2), lang)


def top_items(
    art: Artifacts, scope: str, group: str, kind: str, lang: str | None = None
) -> pd.DataFrame:
    """Top countries or products of one group (scope/group 'all' = everyone); ``lang`` names columns."""
    t = art.top
    df = t[(t["scope"] == scope) & (t["group"] == str(group)) & (t["kind"] == kind)]
    df = df[["rank", "name", "revenue", "customers"]].reset_index(drop=True)
    df["revenue"] = df["revenue"].round(2)
    return named(df, lang) if lang else df


def warning_text(warning: Mapping[str, Any], lang: str) -> str:
    """One summary.json warning in ``lang``: its code's catalogue text filled from its params.

    A code the catalogue does not know, or params that do not fill its text, show the warning's
    own (English) message rather than nothing.
    """
    if not isinstance(warning, Mapping):  # a typed summary's DataWarning
        warning = {"code": warning.code, "params": warning.params, "message": warning.message}
    template = catalogue(lang).get(f"warnings.{warning.get('code')}", "")
    params = {
        k: ", ".join(map(str, v)) if isinstance(v, list | tuple) else v
        for k, v in (warning.get("params") or {}).items()
    }
    try:
        return template.format(**params) if template else str(warning["message"])
    except (KeyError, IndexError, ValueError):
        return str(warning["message"])


def quality_warnings(art: Artifacts, lang: str) -> pd.DataFrame:
    """Data-quality warnings a reader should know before trusting the segments."""
    t = catalogue(lang)
    led = art.summary.ledger
    out: list[str] = [warning_text(w, lang) for w in art.summary.warnings]
    rows_in = max(led.rows_in, 1)
    dropped = led.dropped
    share = 1 - led.rows_kept / rows_in
    if share > 0.2:
        top = max(dropped, key=lambda r: dropped[r].rows) if dropped else "-"
        out.append(t("quality.rows_dropped", share=share, reason=t["reasons"].get(top, top)))
    miss = dropped["missing_customer"].rows / rows_in if "missing_customer" in dropped else 0.0
    if miss > 0.05:
        out.append(t("quality.missing_customers", share=miss))
    m = art.monthly
    gaps = int((m["orders"] == 0).sum())
    if gaps:
        out.append(t("quality.empty_months", n=gaps))
    if len(m) >= 3 and m["revenue"].iloc[-1] < 0.5 * m["revenue"].iloc[:-1].median():
        out.append(t("quality.partial_last_month"))
    neg = int((art.customers["monetary"] <= 0).sum())
    if neg:
        out.append(t("quality.non_positive_customers", n=neg))
    for col, info in art.summary.rfm.edges.items():
        edges = info.edges
        if len(set(edges)) < len(edges):
            out.append(t("quality.edges_coincide", score=SCORE_LETTERS[col]))
    if not out:
        out.append(t("quality.none"))
    return named(pd.DataFrame({"warning": out}), lang)


def edges_table(art: Artifacts, lang: str) -> pd.DataFrame:
    """Bin edges per score and how many customers sit exactly on each edge."""
    rows = []
    for col, info in art.summary.rfm.edges.items():
        rows.append(
            {
                "score": SCORE_LETTERS[col],
                "edge_source": info.source,
                "edges": ", ".join(f"{e:,.2f}" for e in info.edges),
                "customers_on_edge": ", ".join(str(n) for n in info.customers_on_edge),
            }
        )
    return named(pd.DataFrame(rows), lang)


def score_counts(customers: pd.DataFrame, lang: str | None = None) -> pd.DataFrame:
    """Customers per score 1..5 for R, F and M (an empty score shows 0)."""
    cols = {"R": "r_score", "F": "f_score", "M": "m_score"}
    scores = sorted(set().union(*(customers[c].unique() for c in cols.values())))
    df = pd.DataFrame(
        {k: customers[c].value_counts().reindex(scores, fill_value=0) for k, c in cols.items()}
    ).rename_axis("score")
    return named(df, lang) if lang else df


def map_grid(art: Artifacts, lang: str) -> pd.DataFrame:
    """The segment map grid (R x F+M) of display names in ``lang``."""
    g = art.segment_map["grid"][lang]
    return pd.DataFrame(g["data"], index=g["index"], columns=g["columns"])


def grid_counts(art: Artifacts) -> pd.DataFrame:
    """Customers per (r score, f + m score) cell, shaped like :func:`map_grid`."""
    c = art.customers
    bins = int(art.segment_map["bins"])
    tab = pd.crosstab(c["r_score"], c["f_score"] + c["m_score"])
    return tab.reindex(index=range(bins, 0, -1), columns=range(2, 2 * bins + 1), fill_value=0)


def top_customers(art: Artifacts, lang: str, n: int = 10) -> pd.DataFrame:
    """The ``n`` customers with the highest net revenue, with their segment (IDs as stored)."""
    c = art.customers.sort_values(["monetary", "frequency"], ascending=False).head(n)
    df = pd.DataFrame(
        {
            "customer_id": c.index.astype(str),
            "segment": c["rfm_segment_id"].map(art.labels(lang)),
            "recency_days": c["recency_days"].to_numpy(),
            "frequency": c["frequency"].to_numpy(),
            "monetary": c["monetary"].round(2).to_numpy(),
        }
    )
    return named(df, lang)


def method(art: Artifacts, name: str) -> Method | None:
    """The clustering summary of one method (None when it did not run)."""
    clus = art.summary.clustering
    return clus.methods.get(name) if clus else None


def selection_table(art: Artifacts, lang: str) -> pd.DataFrame:
    """Per method: status, clusters chosen, the rule, the winning score and whether it sampled."""
    t = catalogue(lang)
    rows = []
    for m in METHODS:
        s = method(art, m)
        if s is None:
            continue
        sel = s.selection
        score = None
        if m in ("kmeans", "ward") and sel.scores:
            ks, sil = sel.scores.k, sel.scores.silhouette
            best = sil[ks.index(sel.chosen_k)] if sel.chosen_k in ks else None
            score = round(best, 4) if best is not None else None
        if m == "hdbscan":
            chosen = [
                g
                for g in sel.grid or []
                if g.min_cluster_size == sel.chosen_min_cluster_size
                and g.min_samples == sel.chosen_min_samples
            ]
            score = round(chosen[0].dbcv, 4) if chosen and chosen[0].dbcv is not None else None
        rows.append(
            {
                "method": m,
                "status": s.status,
                "clusters": s.n_clusters,
                "rule": t["selection"].get(sel.rule or "", "")
                or next((note_text(n, lang) for n in s.notes if _code(n) == "degenerate"), ""),
                "selection_score": score,
                "noise_share": round(s.noise.share if s.noise else 0.0, 4)
                if m == "hdbscan"
                else None,
                "sampled": s.sampled,
            }
        )
    return named(pd.DataFrame(rows), lang)


def kmeans_scores(art: Artifacts, lang: str | None = None) -> pd.DataFrame:
    """K-Means model-selection scores per k (silhouette, Calinski-Harabasz, Davies-Bouldin, inertia)."""
    km = method(art, "kmeans")
    sc = km.selection.scores if km else None
    if sc is None:
        return pd.DataFrame()
    cols = ["k", "silhouette", "calinski_harabasz", "davies_bouldin", "inertia"]
    df = pd.DataFrame({c: getattr(sc, c) for c in cols}).set_index("k").astype(float).round(4)
    return named(df, lang) if lang else df


def dbcv_table(art: Artifacts, lang: str | None = None) -> pd.DataFrame:
    """HDBSCAN grid: each (min_cluster_size, min_samples) with clusters, noise share and DBCV."""
    hd = method(art, "hdbscan")
    grid = (hd.selection.grid or []) if hd else []
    df = pd.DataFrame([g.model_dump() for g in grid])
    df = df.round(4) if not df.empty else df
    return named(df, lang) if lang else df


def cluster_counts(art: Artifacts) -> dict[str, dict[str, int]]:
    """Customers per cluster for each method that ran."""
    segments = art.summary.segments
    return {m: dict(getattr(segments, m)) for m in METHODS if getattr(segments, m)}


def cluster_count_table(art: Artifacts, lang: str) -> pd.DataFrame:
    """Customers per cluster as a table: one row per cluster, one column per method."""
    counts = cluster_counts(art)
    table = pd.DataFrame(counts).fillna(0).astype("int64")
    order = sorted(table.index, key=lambda c: (c != "noise", int(c) if c.isdigit() else -1))
    table = table.loc[order]
    table.index.name = "cluster"
    return named(table, lang)


def notes(art: Artifacts, lang: str | None = None) -> pd.DataFrame:
    """Notes the methods left (sampling, degenerate fits), in ``lang`` where the catalogue has them."""
    rows = [(m, note_text(n, lang)) for m in METHODS if (s := method(art, m)) for n in s.notes]
    df = pd.DataFrame(rows, columns=["method", "note"])
    return named(df, lang) if lang else df


def _code(note: Any) -> str:
    """The code of a note, typed or plain."""
    return str(note.get("code") if isinstance(note, Mapping) else getattr(note, "code", ""))


def note_text(note: Any, lang: str | None) -> str:
    """A method's note (code and values) in ``lang``; a note stored as plain text is shown as is."""
    if isinstance(note, str):
        return note
    if not isinstance(note, Mapping):  # a typed summary's Note
        note = {"code": note.code, "params": note.params, "message": note.message}
    text = note_message(str(note.get("code")), dict(note.get("params") or {}), lang or "en")
    return text if not text.startswith(f"{note.get('code')} {{") else str(note.get("message", ""))


def rule_text(rule: str, lang: str) -> str:
    """A tree rule ("recency_days <= 52 and frequency >= 3") with features named in ``lang``."""
    t = catalogue(lang)
    if rule == "all customers":
        return t("rules.all")
    names = t["columns"]
    parts = []
    for cond in rule.split(" and "):
        feature, _, rest = cond.partition(" ")
        parts.append(f"{names.get(feature, feature)} {rest}".strip())
    return t("rules.and").join(parts)


def agreement(art: Artifacts, metric: str = "ari") -> pd.DataFrame:
    """Pairwise agreement (ARI or AMI) between all segmentations, rounded."""
    clus = art.summary.clustering
    d = getattr(clus.agreement, metric) if clus else {}
    return pd.DataFrame(d).astype(float).round(3)


def rules_table(art: Artifacts, lang: str) -> pd.DataFrame:
    """Per method and cluster: suggested name and the top rule with precision and coverage."""
    from segwork.profile import cluster_name

    labels = art.labels(lang)
    rows = []
    for m in METHODS:
        s = method(art, m)
        for cluster, rules in (s.rules.rules if s and s.rules else {}).items():
            r = rules[0]
            rows.append(
                {
                    "method": m,
                    "cluster": cluster,
                    "suggested_name": cluster_name(s, cluster, labels, lang),
                    "cluster_rule": rule_text(r.rule, lang),
                    "precision": round(r.precision, 3),
                    "coverage": round(r.coverage, 3),
                }
            )
    return named(pd.DataFrame(rows), lang)


def stability(art: Artifacts) -> dict[str, float | None]:
    """Mean bootstrap ARI per method that has one."""
    return {m: s.stability.mean_ari for m in METHODS if (s := method(art, m)) and s.stability}


def stability_table(art: Artifacts, lang: str | None = None) -> pd.DataFrame:
    """Bootstrap stability (mean and min ARI) per method, and K-Means seed sensitivity."""
    rows = []
    for m in METHODS:
        s = method(art, m)
        if s and s.stability:
            st = s.stability
            seed = s.seed_sensitivity.mean_ari if s.seed_sensitivity else None
            rows.append(
                {
                    "method": m,
                    "mean_ari": round(st.mean_ari, 3) if st.mean_ari is not None else None,
                    "min_ari": round(st.min_ari, 3) if st.min_ari is not None else None,
                    "repeats": st.repeats,
                    "seed_mean_ari": round(seed, 3) if seed is not None else None,
                }
            )
    df = pd.DataFrame(rows)
    return named(df, lang) if lang else df


def truth_table(art: Artifacts, lang: str | None = None) -> pd.DataFrame:
    """ARI of each segmentation against planted personas (synthetic data only; else empty)."""
    clus = art.summary.clustering
    if clus is None or clus.truth is None:
        return pd.DataFrame()
    df = pd.DataFrame({"ari_vs_truth": clus.truth.ari_vs_truth}).round(3)
    return named(df, lang) if lang else df


def truth_sentence(summary: Summary, lang: str) -> str | None:
    """Which method best recovers the planted personas (synthetic data only), and whether >= 0.8."""
    truth = summary.clustering.truth if summary.clustering else None
    if truth is None or not truth.best_method:
        return None
    scores = truth.ari_vs_truth
    listed = ", ".join(f"{m} {scores[m]:.2f}" for m in METHODS if m in scores)
    t = catalogue(lang)
    verdict = t("compare.truth_reached" if truth.any_reaches_0_8 else "compare.truth_missed")
    return t(
        "compare.truth",
        scores=listed,
        best=truth.best_method,
        ari=truth.best_ari,
        verdict=verdict,
    )


def headline_comparison(summary: Summary, lang: str) -> list[str]:
    """One sentence per clustering method (clusters, agreement with RFM, stability) + the truth."""
    clus = summary.clustering
    ari = clus.agreement.ari if clus else {}
    out = []
    for m in METHODS:
        s = clus.methods.get(m) if clus else None
        if s is None:
            continue
        a = ari.get(m, {}).get("rfm")
        st = s.stability.mean_ari if s.stability else None
        a_txt = f"{a:.2f}" if a is not None else "-"
        st_txt = f"{st:.2f}" if st is not None else "-"
        out.append(
            catalogue(lang)(
                "compare.method_line",
                method=m,
                clusters=s.n_clusters,
                ari=a_txt,
                stability=st_txt,
            )
        )
    truth = truth_sentence(summary, lang)
    return [*out, truth] if truth else out
