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
from segwork.currency import Currency, currency
from segwork.report.tables import Lines, Table, fmt_money, fmt_num
from segwork.tally import crosstab
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
    "segment_frame",
    "segment_summary",
    "lift_table",
    "contingency",
    "cluster_words",
    "future_backtest",
    "future_backtest_table",
    "future_segments",
    "basis",
    "events_ledger",
    "silhouettes",
    "contingency_table",
    "money",
    "show",
    "Table",
    "METHODS",
]
SCORE_LETTERS = {"recency_days": "R", "frequency": "F", "monetary": "M"}
#: How each clustering method is written (names, not ids, on every page).
METHOD_NAMES = {"kmeans": "K-Means", "ward": "Ward", "hdbscan": "HDBSCAN", "gmm": "GMM"}


def money(art: Artifacts) -> Currency | None:
    """The currency the run reports money in (None: plain numbers)."""
    return currency(getattr(art.summary, "currency", None))


def show(frame: pd.DataFrame, lang: str, art: Artifacts | None = None, **kinds: str) -> Table:
    """Any frame as a reader's table (column ids as headers from the catalogue)."""
    return Table(frame.reset_index(drop=True), lang, kinds, money(art) if art else None)


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
    ip = get_ipython()
    if ip is not None:
        set_matplotlib_formats("png", bbox_inches=None)  # figures use constrained layout
        from matplotlib.figure import Figure

        ip.display_formatter.formatters["image/png"].for_type(Figure, png_with_alt)


def figure_title(fig: Any) -> str:
    """A figure's title for its alt text: the suptitle, else its axes' titles."""
    sup = getattr(fig, "_suptitle", None)
    if sup is not None and sup.get_text():
        return str(sup.get_text())
    return " · ".join(t for ax in fig.axes if (t := ax.get_title()))


def png_with_alt(fig: Any) -> tuple[bytes, dict[str, str]]:
    """A figure as PNG with its title as alt text (the page's img alt)."""
    from IPython.core.pylabtools import print_figure

    return print_figure(fig, "png", bbox_inches=None), {"alt": figure_title(fig)}


def reason_labels(lang: str) -> dict[str, str]:
    """Drop reason id -> readable label in ``lang``."""
    return dict(catalogue(lang)["reasons"])


def headline(art: Artifacts, lang: str) -> Table:
    """One-row overview: as-of date, period, source file name, customers, rows kept."""
    s = art.summary
    led = s.ledger
    row = {
        "as_of": s.as_of,
        "period": f"{s.period.first} ~ {s.period.last}",
        "data": Path(s.source.path).name,
        "customers": s.customers,
        "rows_kept": f"{led.rows_kept:,} / {led.rows_in:,}",
        "revenue_kept": led.revenue_kept,
    }
    return Table(pd.DataFrame([row]), lang, {"as_of": "date"}, money(art))


def ledger_rows(ledger: Ledger) -> list[tuple[str, int, float]]:
    """The ledger as a running total: read, then each reason's change, then kept.

    One sign convention on every page: a dropped reason shows what dropping it changed, so
    read + changes = kept, in rows and in revenue. Dropping cancellations (negative amounts)
    raises revenue, so their change is positive.
    """
    rows = [("read", ledger.rows_in, ledger.revenue_in)]
    rows += [(r, -d.rows, -d.revenue) for r, d in ledger.dropped.items()]
    rows.append(("kept", ledger.rows_kept, ledger.revenue_kept))
    return rows


def ledger_table(ledger: Ledger, lang: str, cur: Currency | None = None) -> Table:
    """Rows and revenue read, each drop reason's change, and kept; shares of rows read."""
    t = catalogue(lang)
    names = {**t["reasons"], **t["ledger"]}
    rows = ledger_rows(ledger)
    df = pd.DataFrame(
        {
            "step": [names.get(r, r) for r, _, _ in rows],
            "rows": [n for _, n, _ in rows],
            "row_share": [abs(n) / ledger.rows_in if ledger.rows_in else 0.0 for _, n, _ in rows],
            "revenue": [round(float(v), 2) for _, _, v in rows],
        }
    )
    kinds = {"rows": ("int", "signed_int"), "revenue": ("money", "signed_money")}
    return Table(df, lang, kinds, cur, table_id="ledger")


def coverage_table(art: Artifacts, lang: str) -> Table:
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
    return Table(df, lang)


def monthly_table(monthly: pd.DataFrame, lang: str, cur: Currency | None = None) -> Table:
    """Orders, revenue and active customers per month, month as YYYY-MM."""
    df = monthly.copy()
    df["month"] = pd.to_datetime(df["month"]).dt.strftime("%Y-%m")
    return Table(df, lang, {}, cur)


def rfm_describe(customers: pd.DataFrame, lang: str, cur: Currency | None = None) -> Table:
    """Percentiles of recency, frequency and monetary, one row per percentile."""
    q = customers[["recency_days", "frequency", "monetary"]].quantile(
        [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]
    )
    q.insert(0, "percentile", [f"p{int(round(100 * i))}" for i in q.index])
    kinds = {"recency_days": "num", "frequency": "num"}
    return Table(q.reset_index(drop=True), lang, kinds, cur)


def top_items(
    art: Artifacts, scope: str, group: str, kind: str, lang: str | None = None
) -> pd.DataFrame | Table:
    """Top countries or products of one group (scope/group 'all' = everyone).

    Without ``lang`` the plain frame (for charts); with it a reader's table."""
    t = art.top
    df = t[(t["scope"] == scope) & (t["group"] == str(group)) & (t["kind"] == kind)]
    df = df[["rank", "name", "revenue", "customers"]].reset_index(drop=True)
    return Table(df, lang, {"rank": "int"}, money(art)) if lang else df


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


def quality_warnings(art: Artifacts, lang: str) -> Table:
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
    return Table(pd.DataFrame({"warning": out}), lang)


def edges_table(art: Artifacts, lang: str) -> Table:
    """Bin edges per score and how many customers sit exactly on each edge."""
    t = catalogue(lang)
    rows = []
    for col, info in art.summary.rfm.edges.items():
        rows.append(
            {
                "score": SCORE_LETTERS[col],
                "edge_source": t("edge_sources." + info.source),
                "edges": ", ".join(f"{e:,.2f}" for e in info.edges),
                "customers_on_edge": ", ".join(f"{n:,}" for n in info.customers_on_edge),
            }
        )
    return Table(pd.DataFrame(rows), lang)


def score_counts(customers: pd.DataFrame, lang: str | None = None) -> pd.DataFrame | Table:
    """Customers per score 1..5 for R, F and M (an empty score shows 0)."""
    cols = {"R": "r_score", "F": "f_score", "M": "m_score"}
    scores = sorted(set().union(*(customers[c].unique() for c in cols.values())))
    df = pd.DataFrame(
        {k: customers[c].value_counts().reindex(scores, fill_value=0) for k, c in cols.items()}
    ).rename_axis("score")
    return Table(df.reset_index(), lang, {"score": "int"}) if lang else df


def map_grid(art: Artifacts, lang: str) -> pd.DataFrame:
    """The segment map grid (R x F+M) of display names in ``lang``."""
    g = art.segment_map["grid"][lang]
    return pd.DataFrame(g["data"], index=g["index"], columns=g["columns"])


def grid_counts(art: Artifacts) -> pd.DataFrame:
    """Customers per (r score, f + m score) cell, shaped like :func:`map_grid`."""
    c = art.customers
    bins = int(art.segment_map["bins"])
    tab = crosstab(c["r_score"], c["f_score"] + c["m_score"])
    return tab.reindex(index=range(bins, 0, -1), columns=range(2, 2 * bins + 1), fill_value=0)


def top_customers(art: Artifacts, lang: str, n: int = 10) -> Table:
    """The ``n`` customers with the highest net revenue, with their segment (IDs as stored)."""
    c = art.customers.sort_values(["monetary", "frequency"], ascending=False).head(n)
    df = pd.DataFrame(
        {
            "customer_id": c.index.astype(str),
            "segment": c["rfm_segment_id"].map(art.labels(lang)),
            "recency_days": c["recency_days"].to_numpy(),
            "frequency": c["frequency"].to_numpy(),
            "monetary": c["monetary"].to_numpy(),
        }
    )
    return Table(df, lang, {"customer_id": "text"}, money(art))


def segment_frame(art: Artifacts, lang: str) -> pd.DataFrame:
    """Every non-empty RFM segment by revenue share: name, stage, size, shares (fractions), medians.

    The order every page and chart uses for segments."""
    c = art.customers
    t = catalogue(lang)
    g = c.groupby("rfm_segment_id", observed=True)
    df = pd.DataFrame(
        {
            "customers": g.size(),
            "revenue": g["monetary"].sum(),
            "median_recency_days": g["recency_days"].median(),
            "median_frequency": g["frequency"].median(),
            "median_monetary": g["monetary"].median(),
        }
    )
    df["customer_share"] = df["customers"] / max(len(c), 1)
    df["revenue_share"] = df["revenue"] / (float(c["monetary"].sum()) or 1.0)
    by_id = {s["id"]: s for s in art.segment_map["segments"]}
    df.index = df.index.map(str)
    df.insert(0, "name", [by_id.get(i, {}).get(lang, i) for i in df.index])
    df.insert(
        1, "stage", [t["stages"].get(by_id.get(i, {}).get("stage", ""), "") for i in df.index]
    )
    df = df.sort_values(["revenue_share", "customers"], ascending=False, kind="stable")
    return df.rename_axis("segment_id").reset_index()


def segment_summary(art: Artifacts, lang: str) -> Table:
    """Segments by revenue share: stage, customers, shares and the median customer's R, F, M."""
    df = segment_frame(art, lang)
    cols = ["name", "stage", "customers", "customer_share", "revenue", "revenue_share",
            "median_recency_days", "median_frequency", "median_monetary"]  # fmt: skip
    kinds = {"median_recency_days": "days", "median_frequency": "num"}
    return Table(
        df[cols], lang, kinds, money(art), headers={"name": catalogue(lang)("columns.segment")}
    )


def lift_table(art: Artifacts, lang: str) -> Table:
    """Per segment (by revenue share) the products it over-buys, with lift and buyer shares."""
    lift = art.lift
    if lift is None or lift.empty:
        return Table(pd.DataFrame(), lang)
    order = segment_frame(art, lang)[["segment_id", "name"]]
    df = order.merge(lift, left_on="segment_id", right_on="group", how="inner", sort=False)
    df = df.rename(columns={"name_x": "segment", "name_y": "product"})
    cols = ["segment", "product", "buyers", "segment_share", "overall_share", "lift"]
    kinds = {"segment_share": "share", "overall_share": "share", "lift": "num"}
    return Table(df[cols], lang, kinds)


def contingency(art: Artifacts, method_id: str, lang: str) -> pd.DataFrame:
    """Customers per (cluster, RFM segment), segments by revenue share, outliers named."""
    col = f"{method_id}_cluster"
    c = art.customers
    tab = crosstab(c[col], c["rfm_segment_id"])
    order = segment_frame(art, lang)
    tab = tab[[i for i in order["segment_id"] if i in tab.columns]]
    tab.columns = [
        dict(zip(order["segment_id"], order["name"], strict=True))[i] for i in tab.columns
    ]
    outliers = catalogue(lang)("clusters.outliers")
    tab.index = [outliers if int(v) == -1 else str(v) for v in tab.index]
    tab.index.name = "cluster"
    return tab


def contingency_table(art: Artifacts, method_id: str, lang: str) -> Table:
    """:func:`contingency` as a reader's table (one row per cluster)."""
    tab = contingency(art, method_id, lang)
    return Table(tab.reset_index(), lang, headers={c: c for c in tab.columns})


def future_backtest(art: Artifacts, lang: str) -> Lines:
    """The back-test in one sentence a marketer reads (or why there is no prediction)."""
    from segwork.report.future import backtest_sentence

    pred = art.summary.prediction
    if pred is None:
        return Lines([catalogue(lang)("tables.no_prediction")])
    return Lines([backtest_sentence(pred, art.summary.as_of, lang)])


def future_backtest_table(art: Artifacts, lang: str) -> Table:
    """Our model and every baseline on the same back-test split (AUC, Brier, errors, hits)."""
    from segwork.report.future import backtest_table

    pred = art.summary.prediction
    df = backtest_table(pred, lang) if pred is not None else pd.DataFrame()
    cols = list(df.columns)
    kinds = {cols[2]: "score", cols[3]: "score", cols[4]: "num"} if len(cols) >= 7 else {}
    return Table(df, lang, kinds, money(art), headers={c: str(c) for c in cols})


def future_segments(art: Artifacts, lang: str) -> Table:
    """Each RFM segment's future (by revenue share): likely buyers, expected value, at risk."""
    pred = art.summary.prediction
    if pred is None:
        return Table(pd.DataFrame(), lang)
    order = segment_frame(art, lang)
    rows = []
    for gid, name in zip(order["segment_id"], order["name"], strict=True):
        st = pred.segments.get(gid)
        if st is None:
            continue
        rows.append(
            {
                "segment": name,
                "customers": st.customers,
                "likely": st.mean_p_purchase,
                "expected_orders": st.expected_orders,
                "expected_revenue": st.expected_revenue,
                "at_risk": st.at_risk,
                "at_risk_revenue": st.at_risk_revenue,
            }
        )
    t = catalogue(lang)
    headers = {k: t(f"future.{k}") for k in rows[0] if k != "segment"} if rows else {}
    kinds = {"likely": "share", "expected_orders": "int", "at_risk_revenue": "money"}
    return Table(pd.DataFrame(rows), lang, kinds, money(art), headers=headers)


def basis(art: Artifacts, lang: str) -> Lines:
    """What R and F count in this run (orders or visits), and the events read, in words."""
    from segwork.report.visits import basis_statement, events_sentence

    lines = [basis_statement(art.summary, lang)]
    if art.summary.events is not None:
        lines.append(events_sentence(art.summary, lang))
    return Lines(lines)


def events_ledger(art: Artifacts, lang: str) -> Table | Lines:
    """The behaviour events' own ledger (rows kept or dropped per reason), when events were read."""
    from segwork.report.visits import events_ledger_table

    ev = art.summary.events
    if ev is None:
        return Lines([catalogue(lang)("tables.no_events")])
    df = events_ledger_table(ev, lang)
    cols = list(df.columns)
    df[cols[2]] = df[cols[2]] / 100  # shares come in percent
    kinds = {cols[1]: ("int", "signed_int"), cols[2]: "share"}
    return Table(df, lang, kinds, headers={c: str(c).replace("(%)", "").strip() for c in cols})


def cluster_words(art: Artifacts, lang: str) -> Lines:
    """How k was chosen for each method, HDBSCAN's structure verdict and outliers, in words."""
    from segwork.report.clusterwords import words

    return Lines(words(art.summary, lang))


def silhouettes(art: Artifacts, lang: str) -> Table:
    """Each method's silhouette on the same customers, and whether it counts (min share)."""
    from segwork.report.clusterwords import silhouette_table

    df = silhouette_table(art.summary, lang)
    cols = list(df.columns)
    kinds = {cols[2]: "score", cols[3]: "share"} if len(cols) >= 4 else {}
    return Table(df, lang, kinds, headers={c: str(c) for c in cols})


def method(art: Artifacts, name: str) -> Method | None:
    """The clustering summary of one method (None when it did not run)."""
    clus = art.summary.clustering
    return clus.methods.get(name) if clus else None


def chosen_dbcv(s: Method) -> float | None:
    """DBCV of HDBSCAN's chosen grid point (size, min_samples and selection method all match)."""
    sel = s.selection
    for g in sel.grid or []:
        if (g.min_cluster_size, g.min_samples) == (
            sel.chosen_min_cluster_size,
            sel.chosen_min_samples,
        ) and g.cluster_selection_method in (None, sel.chosen_cluster_selection_method):
            return g.dbcv
    return None


def selection_table(art: Artifacts, lang: str) -> Table:
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
            score = chosen_dbcv(s)
        if m == "gmm" and s.silhouette is not None:
            score = s.silhouette.value
        rows.append(
            {
                "method": METHOD_NAMES.get(m, m),
                "status": t("status." + s.status) if s.status in t["status"] else s.status,
                "clusters": s.n_clusters,
                "rule": t["selection"].get(sel.rule or "", "")
                or next((note_text(n, lang) for n in s.notes if _code(n) == "degenerate"), ""),
                "selection_score": score,
                "noise_share": (s.noise.share if s.noise else 0.0) if m == "hdbscan" else None,
                "sampled": s.sampled,
            }
        )
    kinds = {"selection_score": "score", "clusters": "int", "sampled": "bool"}
    return Table(pd.DataFrame(rows), lang, kinds)


def kmeans_scores(art: Artifacts, lang: str | None = None) -> pd.DataFrame | Table:
    """K-Means model-selection scores per k (silhouette, Calinski-Harabasz, Davies-Bouldin, inertia)."""
    km = method(art, "kmeans")
    sc = km.selection.scores if km else None
    if sc is None:
        return pd.DataFrame()
    cols = ["k", "silhouette", "calinski_harabasz", "davies_bouldin", "inertia"]
    df = pd.DataFrame({c: getattr(sc, c) for c in cols}).set_index("k").astype(float)
    if not lang:
        return df
    kinds = {
        "k": "int",
        "silhouette": "score",
        "davies_bouldin": "score",
        "calinski_harabasz": "int",
        "inertia": "int",
    }
    return Table(df.reset_index(), lang, kinds)


def dbcv_table(art: Artifacts, lang: str | None = None) -> pd.DataFrame | Table:
    """HDBSCAN grid: each (min_cluster_size, min_samples) with clusters, noise share and DBCV."""
    hd = method(art, "hdbscan")
    grid = (hd.selection.grid or []) if hd else []
    df = pd.DataFrame([g.model_dump() for g in grid])
    return Table(df, lang, {"dbcv": "score"}) if lang else df


def cluster_counts(art: Artifacts) -> dict[str, dict[str, int]]:
    """Customers per cluster for each method that ran."""
    segments = art.summary.segments
    return {m: dict(getattr(segments, m)) for m in METHODS if getattr(segments, m)}


def cluster_count_table(art: Artifacts, lang: str) -> Table:
    """Customers per cluster as a table: one row per cluster, one column per method."""
    counts = cluster_counts(art)
    table = pd.DataFrame(counts).fillna(0).astype("int64")
    order = sorted(table.index, key=lambda c: (c != "noise", int(c) if c.isdigit() else -1))
    table = table.loc[order]
    t = catalogue(lang)
    table.index = [t("clusters.outliers") if c == "noise" else c for c in table.index]
    table.index.name = "cluster"
    headers = {m: METHOD_NAMES.get(m, m) for m in table.columns}
    return Table(table.reset_index(), lang, {}, headers=headers)


def notes(art: Artifacts, lang: str | None = None) -> pd.DataFrame | Table:
    """Notes the methods left (sampling, degenerate fits), in ``lang`` where the catalogue has them."""
    rows = [
        (METHOD_NAMES.get(m, m), note_text(n, lang))
        for m in METHODS
        if (s := method(art, m))
        for n in s.notes
    ]
    df = pd.DataFrame(rows, columns=["method", "note"])
    return Table(df, lang) if lang else df


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


_OPS = {">=": "ge", "<=": "le", ">": "gt", "<": "lt"}


def rule_text(rule: str, lang: str, cur: Currency | None = None) -> str:
    """A tree rule ("recency_days >= 22 and frequency >= 3") in words in ``lang``.

    Each condition is worded from the catalogue's ``rule_words`` ("last order 22+ days ago ·
    3+ orders"); money is written in the report's currency. A condition the catalogue has no
    words for keeps the feature's name and the operator.
    """
    t = catalogue(lang)
    if rule == "all customers":
        return t("rules.all")
    words, names = t["rule_words"], t["columns"]
    parts = []
    for cond in rule.split(" and "):
        feature, op, value = (cond.split(" ", 2) + ["", ""])[:3]
        key = f"{feature}_{_OPS.get(op, op)}"
        shown = value
        try:
            number = float(value.replace(",", ""))
            shown = (
                fmt_money(number, cur)
                if feature == "monetary"
                else fmt_num(number, 0 if number == int(number) else 1)
            )
        except ValueError:
            pass
        if key in words:
            parts.append(words[key].format(v=shown))
        else:
            parts.append(f"{names.get(feature, feature)} {op} {shown}".strip())
    return t("rules.and").join(parts)


def agreement(art: Artifacts, metric: str = "ari", lang: str | None = None) -> pd.DataFrame | Table:
    """Pairwise agreement (ARI or AMI) between all segmentations: a frame, or with ``lang`` a table."""
    clus = art.summary.clustering
    d = getattr(clus.agreement, metric) if clus else {}
    df = pd.DataFrame(d).astype(float).rename(index=METHOD_NAMES, columns=METHOD_NAMES)
    if lang is None:
        return df
    rfm = catalogue(lang)("columns.rfm_groups")
    df = df.rename(index={"rfm": rfm}, columns={"rfm": rfm})
    out = df.rename_axis("method").reset_index()
    return Table(out, lang, {c: "score" for c in df.columns}, headers={c: c for c in df.columns})


def rules_table(art: Artifacts, lang: str) -> Table:
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
                    "method": METHOD_NAMES.get(m, m),
                    "cluster": catalogue(lang)("clusters.outliers")
                    if cluster == "noise"
                    else cluster,
                    "suggested_name": cluster_name(s, cluster, labels, lang),
                    "cluster_rule": rule_text(r.rule, lang, money(art)),
                    "precision": r.precision,
                    "coverage": r.coverage,
                }
            )
    return Table(pd.DataFrame(rows), lang, {"precision": "share", "coverage": "share"})


def stability(art: Artifacts) -> dict[str, float | None]:
    """Mean bootstrap ARI per method that has one."""
    return {m: s.stability.mean_ari for m in METHODS if (s := method(art, m)) and s.stability}


def stability_table(art: Artifacts, lang: str | None = None) -> pd.DataFrame | Table:
    """Bootstrap stability (mean and min ARI) per method, and K-Means seed sensitivity."""
    rows = []
    for m in METHODS:
        s = method(art, m)
        if s and s.stability:
            st = s.stability
            seed = s.seed_sensitivity.mean_ari if s.seed_sensitivity else None
            rows.append(
                {
                    "method": METHOD_NAMES.get(m, m),
                    "mean_ari": st.mean_ari,
                    "min_ari": st.min_ari,
                    "repeats": st.repeats,
                    "seed_mean_ari": seed,
                }
            )
    df = pd.DataFrame(rows)
    kinds = {"mean_ari": "score", "min_ari": "score", "seed_mean_ari": "score", "repeats": "int"}
    return Table(df, lang, kinds) if lang else df


def truth_table(art: Artifacts, lang: str | None = None) -> pd.DataFrame | Table:
    """ARI of each segmentation against planted personas (synthetic data only; else empty)."""
    clus = art.summary.clustering
    if clus is None or clus.truth is None:
        return Table(pd.DataFrame(), lang) if lang else pd.DataFrame()
    df = pd.DataFrame({"ari_vs_truth": clus.truth.ari_vs_truth})
    if not lang:
        return df
    rfm = catalogue(lang)("columns.rfm_groups")
    df.index = [rfm if m == "rfm" else METHOD_NAMES.get(m, m) for m in df.index]
    return Table(df.rename_axis("method").reset_index(), lang, {"ari_vs_truth": "score"})


def truth_sentence(summary: Summary, lang: str) -> str | None:
    """Which method best recovers the planted personas (synthetic data only), and whether >= 0.8."""
    truth = summary.clustering.truth if summary.clustering else None
    if truth is None or not truth.best_method:
        return None
    scores = truth.ari_vs_truth
    listed = ", ".join(f"{METHOD_NAMES.get(m, m)} {scores[m]:.2f}" for m in METHODS if m in scores)
    t = catalogue(lang)
    verdict = t("compare.truth_reached" if truth.any_reaches_0_8 else "compare.truth_missed")
    return t(
        "compare.truth",
        scores=listed,
        best=METHOD_NAMES.get(truth.best_method, truth.best_method),
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
