"""Figures only: each function takes frames or plain dicts and returns a matplotlib Figure.

No computation beyond arranging what it is given. Figures are built with
:class:`matplotlib.figure.Figure` (not pyplot), so nothing is kept in a global figure list and a
notebook shows each figure exactly once. Korean text renders with NanumGothic, shipped by the
``koreanize-matplotlib`` package and registered on import of this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import koreanize_matplotlib  # noqa: F401  (registers NanumGothic and sets it as the font family)
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from segwork.text import catalogue

if TYPE_CHECKING:  # pragma: no cover
    from segwork.summary import Ledger, Method

PALETTE = (
    "#3b6ea5",
    "#e07b39",
    "#5aa469",
    "#c44e52",
    "#8172b2",
    "#937860",
    "#da8bc3",
    "#8c8c8c",
    "#ccb974",
    "#64b5cd",
    "#2f4b7c",
)


def t(key: str, lang: str) -> str:
    """The figure text for ``key`` in ``lang`` (the catalogue's ``figures`` section)."""
    return catalogue(lang)(f"figures.{key}")


def _fig(width: float = 8.0, height: float = 4.0, ncols: int = 1) -> tuple[Figure, Any]:
    """A non-pyplot Figure with ``ncols`` axes, laid out to fit its labels."""
    fig = Figure(figsize=(width, height), dpi=90, layout="constrained")
    axes = fig.subplots(1, ncols)
    return fig, axes


def ledger_waterfall(ledger: Ledger, reason_labels: Mapping[str, str], lang: str) -> Figure:
    """Rows read, removed per reason, and kept, as a horizontal waterfall."""
    dropped = ledger.dropped
    names = [t("read", lang), *[reason_labels.get(r, r) for r in dropped], t("kept", lang)]
    values = [ledger.rows_in, *[-d.rows for d in dropped.values()], ledger.rows_kept]
    starts, level = [], ledger.rows_in
    for v in values[1:-1]:
        level += v
        starts.append(level)
    lefts = [0, *starts, 0]
    widths = [values[0], *[-v for v in values[1:-1]], values[-1]]
    colors = ["#3b6ea5", *["#c44e52"] * len(dropped), "#5aa469"]
    fig, ax = _fig(8, 0.5 * len(names) + 1.2)
    y = np.arange(len(names))[::-1]
    ax.barh(y, widths, left=lefts, color=colors)
    for yi, w, left in zip(y, widths, lefts, strict=True):
        ax.text(left + w, yi, f" {w:,}", va="center", fontsize=8)
    ax.set_yticks(y, names)
    ax.set_xlabel(t("rows", lang))
    ax.set_xlim(0, ledger.rows_in * 1.18 or 1)
    ax.set_title(t("ledger", lang))
    return fig


def monthly_trend(monthly: pd.DataFrame, lang: str) -> Figure:
    """Orders (bars) and revenue (line) per month."""
    fig, ax = _fig(8, 3.6)
    x = pd.to_datetime(monthly["month"])
    ax.bar(x, monthly["orders"], width=20, color="#9ab8d8", label=t("orders", lang))
    ax.set_ylabel(t("orders", lang))
    ax2 = ax.twinx()
    ax2.plot(x, monthly["revenue"], color="#c44e52", marker="o", label=t("revenue", lang))
    ax2.set_ylabel(t("revenue", lang))
    ax.set_xlabel(t("month", lang))
    ax.set_title(t("monthly", lang))
    fig.legend(loc="upper left", fontsize=8)
    return fig


def rfm_distributions(customers: pd.DataFrame, lang: str) -> Figure:
    """Histograms of recency, frequency and monetary (log axes for the skewed two)."""
    fig, axes = _fig(10, 3.2, 3)
    axes[0].hist(customers["recency_days"], bins=30, color=PALETTE[0])
    freq = customers["frequency"].clip(lower=1)
    axes[1].hist(
        freq, bins=np.unique(np.geomspace(1, max(freq.max(), 2), 25).round()), color=PALETTE[1]
    )
    axes[1].set_xscale("log")
    money = customers["monetary"][customers["monetary"] > 0]
    if len(money):
        axes[2].hist(
            money,
            bins=np.geomspace(money.min(), max(money.max(), money.min() * 10), 30),
            color=PALETTE[2],
        )
        axes[2].set_xscale("log")
    for ax, key in zip(axes, ("recency_days", "frequency", "monetary"), strict=True):
        ax.set_xlabel(t(key, lang))
        ax.set_ylabel(t("customers", lang))
    fig.suptitle(t("rfm_dist", lang))
    return fig


def top_bar(items: pd.DataFrame, kind: str, lang: str) -> Figure:
    """Horizontal bars of revenue for the top countries or products (``kind``: country/product)."""
    fig, ax = _fig(8, 0.35 * max(len(items), 1) + 1.2)
    names = [str(n)[:40] for n in items["name"]]
    y = np.arange(len(items))[::-1]
    ax.barh(y, items["revenue"], color=PALETTE[0 if kind == "country" else 1])
    ax.set_yticks(y, names)
    ax.set_xlabel(t("revenue", lang))
    ax.set_title(t(f"top_{kind}", lang))
    return fig


def segment_grid(grid: pd.DataFrame, counts: pd.DataFrame, lang: str) -> Figure:
    """The segment map as a coloured R x (F+M) grid; each cell shows its group and customers.

    ``grid``: rows r_score (high to low), columns f+m, values group names; ``counts``: same shape,
    customers per cell.
    """
    names = list(dict.fromkeys(grid.to_numpy().ravel()))
    code = grid.map(names.index).to_numpy()
    fig, ax = _fig(10, 4.6)
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(names))]
    from matplotlib.colors import ListedColormap

    ax.imshow(code, cmap=ListedColormap(colors), aspect="auto", alpha=0.55)
    for (i, j), name in np.ndenumerate(grid.to_numpy()):
        n = int(counts.iloc[i, j]) if counts is not None else 0
        ax.text(j, i, f"{name}\n{n:,}", ha="center", va="center", fontsize=7.5)
    ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [str(r) for r in grid.index])
    ax.set_xlabel(t("fm_score", lang))
    ax.set_ylabel(t("r_score", lang))
    ax.set_title(t("segment_map", lang))
    return fig


def share_bars(table: pd.DataFrame, lang: str) -> Figure:
    """Customer share next to revenue share per group (``name``, ``customer_share``, ``revenue_share``
    as fractions), in the table's order from the top."""
    fig, ax = _fig(9, 0.4 * max(len(table), 1) + 1.4)
    y = np.arange(len(table))[::-1]
    ax.barh(
        y + 0.2,
        100 * table["customer_share"],
        height=0.4,
        color=PALETTE[0],
        label=t("customer_share", lang),
    )
    ax.barh(
        y - 0.2,
        100 * table["revenue_share"],
        height=0.4,
        color=PALETTE[1],
        label=t("revenue_share", lang),
    )
    ax.set_yticks(y, [str(n) for n in table["name"]])
    ax.set_xlabel("%")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(t("sizes", lang))
    return fig


def kmeans_selection(kmeans: Method | None, ward: Method | None, lang: str) -> Figure:
    """Elbow (inertia) and silhouette per k for K-Means, Ward's silhouette beside it."""
    fig, (a, b) = _fig(10, 3.4, 2)
    scores = kmeans.selection.scores if kmeans else None
    chosen_k = kmeans.n_clusters if kmeans else None
    ks = scores.k if scores else []
    a.plot(ks, (scores.inertia or []) if scores else [], marker="o", color=PALETTE[0])
    a.set_xlabel(t("k", lang))
    a.set_ylabel(t("inertia", lang))
    a.set_title(t("elbow", lang))
    b.plot(ks, scores.silhouette if scores else [], marker="o", color=PALETTE[0], label="K-Means")
    if ward and ward.selection.scores:
        b.plot(
            ward.selection.scores.k,
            ward.selection.scores.silhouette,
            marker="s",
            color=PALETTE[1],
            label="Ward",
        )
    if chosen_k:
        for ax in (a, b):
            ax.axvline(chosen_k, color="#888", ls="--", lw=1)
    b.set_xlabel(t("k", lang))
    b.set_ylabel(t("silhouette", lang))
    b.set_title(t("silhouette", lang))
    b.legend(fontsize=8)
    return fig


def dendrogram(linkage: np.ndarray, ward: Method | None, lang: str) -> Figure:
    """The top of the Ward tree (last 30 merges), with the cut height for the chosen k."""
    from scipy.cluster.hierarchy import dendrogram as scipy_dendrogram

    chosen_k = ward.n_clusters if ward else None

    fig, ax = _fig(9, 3.6)
    if len(linkage) >= 2:
        scipy_dendrogram(
            linkage,
            ax=ax,
            truncate_mode="lastp",
            p=min(30, len(linkage) + 1),
            no_labels=True,
            color_threshold=0,
        )
        if chosen_k and 2 <= chosen_k <= len(linkage):
            cut = (linkage[-chosen_k, 2] + linkage[-chosen_k + 1, 2]) / 2
            ax.axhline(cut, color="#c44e52", ls="--", lw=1, label=f"k = {chosen_k}")
            ax.legend(fontsize=8)
    ax.set_ylabel(t("height", lang))
    ax.set_title(t("dendrogram", lang))
    return fig


def dbcv_grid(hdbscan: Method | None, lang: str) -> Figure:
    """DBCV for each (min_cluster_size, min_samples) tried, annotated with clusters and noise."""
    fig, ax = _fig(8, 3.4)
    grid = (hdbscan.selection.grid or []) if hdbscan else []
    df = pd.DataFrame([g.model_dump() for g in grid])
    if not df.empty:
        df["dbcv"] = pd.to_numeric(df["dbcv"], errors="coerce")  # null when no cluster was found
        df = df[np.isfinite(df["dbcv"])]
    if not df.empty:
        for i, (ms, sub) in enumerate(df.groupby("min_samples")):
            ax.plot(
                sub["min_cluster_size"],
                sub["dbcv"],
                marker="o",
                color=PALETTE[i],
                label=f"min_samples={ms}",
            )
            for _, r in sub.iterrows():
                ax.annotate(
                    f"k={int(r['n_clusters'])}, {r['noise_share']:.0%}",
                    (r["min_cluster_size"], r["dbcv"]),
                    fontsize=7,
                    textcoords="offset points",
                    xytext=(3, 3),
                )
        ax.legend(fontsize=8)
    ax.set_xlabel(t("min_cluster_size", lang))
    ax.set_ylabel("DBCV")
    ax.set_title(t("dbcv", lang))
    return fig


def cluster_sizes(counts: Mapping[str, Mapping[str, int]], lang: str) -> Figure:
    """Customers per cluster, one panel per method."""
    methods = [m for m in counts if counts[m]]
    fig, axes = _fig(4 * max(len(methods), 1), 3.2, max(len(methods), 1))
    axes = np.atleast_1d(axes)
    for ax, m in zip(axes, methods, strict=False):
        labels = list(counts[m])
        ax.bar(range(len(labels)), list(counts[m].values()), color=PALETTE[: len(labels)])
        ax.set_xticks(
            range(len(labels)), [t("noise", lang) if lab == "noise" else lab for lab in labels]
        )
        ax.set_title(m)
        ax.set_xlabel(t("cluster", lang))
        ax.set_ylabel(t("customers", lang))
    fig.suptitle(t("cluster_sizes", lang))
    return fig


def ink(im: Any, i: int, j: int) -> str:
    """Text colour readable on cell (i, j) of an image: white on dark cells, near-black on light."""
    arr = im.get_array()
    v = arr[i, j]
    if np.ma.is_masked(v) or not np.isfinite(v):
        return "#222222"
    r, g, b, _ = im.cmap(im.norm(v))
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "#222222"


def rf_monetary_heatmap(customers: pd.DataFrame, lang: str, cur_symbol: str = "") -> Figure:
    """Mean monetary value per (R score, F score) cell, with customers per cell: where value sits."""
    grid = customers.pivot_table(
        index="r_score", columns="f_score", values="monetary", aggfunc="mean", observed=True
    )
    counts = customers.pivot_table(
        index="r_score", columns="f_score", values="monetary", aggfunc="size", observed=True
    )
    scores = range(int(customers[["r_score", "f_score"]].max().max()), 0, -1)
    grid = grid.reindex(index=list(scores), columns=sorted(scores))
    counts = counts.reindex(index=grid.index, columns=grid.columns).fillna(0)
    fig, ax = _fig(7, 4.6)
    vals = grid.to_numpy(dtype=float)
    im = ax.imshow(np.ma.masked_invalid(vals), cmap="YlOrBr", aspect="auto")
    for (i, j), v in np.ndenumerate(vals):
        if np.isfinite(v):
            text = f"{cur_symbol}{v:,.0f}\n({int(counts.iloc[i, j]):,})"
            ax.text(j, i, text, ha="center", va="center", fontsize=7.5, color=ink(im, i, j))
    ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [str(r) for r in grid.index])
    ax.set_xlabel(t("f_score", lang))
    ax.set_ylabel(t("r_score", lang))
    ax.set_title(t("rf_monetary", lang))
    fig.colorbar(im, ax=ax, label=t("mean_monetary", lang))
    return fig


def segment_treemap(segments: pd.DataFrame, lang: str) -> Figure:
    """Segments as a treemap: area = customers, colour = revenue share (``name``, ``customers``,
    ``revenue_share`` as a fraction)."""
    import squarify
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    seg = segments[segments["customers"] > 0].sort_values("customers", ascending=False)
    fig, ax = _fig(9, 5)
    norm = Normalize(0, max(float(seg["revenue_share"].max()), 1e-9))
    cmap = colormaps["Oranges"]
    rects = squarify.squarify(
        squarify.normalize_sizes(seg["customers"].astype(float).tolist(), 100, 60), 0, 0, 100, 60
    )
    for r, (_, row) in zip(rects, seg.iterrows(), strict=True):
        colour = cmap(0.15 + 0.85 * norm(row["revenue_share"]))
        ax.add_patch(
            Rectangle((r["x"], r["y"]), r["dx"], r["dy"], facecolor=colour, edgecolor="white", lw=2)
        )
        lum = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
        label = f"{row['name']}\n{int(row['customers']):,} · {100 * row['revenue_share']:.1f}%"
        if r["dx"] * r["dy"] > 60:  # label only boxes big enough to hold it
            ax.text(
                r["x"] + r["dx"] / 2, r["y"] + r["dy"] / 2, label, ha="center", va="center",
                fontsize=8, color="white" if lum < 0.5 else "#222222", wrap=True,
            )  # fmt: skip
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 60)
    ax.set_axis_off()
    ax.set_title(t("treemap", lang))
    sm = ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax, label=t("revenue_share", lang), format=lambda v, _: f"{100 * v:.0f}%")
    return fig


def profile_heatmap(medians: pd.DataFrame, overall: pd.Series, title: str, lang: str) -> Figure:
    """Cluster medians of R, F, M divided by the overall medians, as an annotated heatmap."""
    ratio = medians / overall.replace(0, np.nan)
    fig, ax = _fig(6, 0.45 * max(len(ratio), 1) + 1.4)
    im = ax.imshow(
        np.log2(ratio.to_numpy(dtype=float).clip(1e-3)),
        cmap="RdBu_r",
        vmin=-3,
        vmax=3,
        aspect="auto",
    )
    for (i, j), v in np.ndenumerate(medians.to_numpy(dtype=float)):
        ax.text(j, i, f"{v:,.0f}", ha="center", va="center", fontsize=8, color=ink(im, i, j))
    ax.set_xticks(range(3), [t(f"{c.split('_')[0]}_short", lang) for c in medians.columns])
    ax.set_yticks(range(len(ratio)), [str(i) for i in ratio.index])
    ax.set_ylabel(t("cluster", lang))
    ax.set_title(f"{title}: {t('profiles', lang)}", fontsize=10)
    fig.colorbar(im, ax=ax, label="log2")
    return fig


def matrix_heatmap(
    matrix: pd.DataFrame,
    title: str,
    fmt: str = "{:.2f}",
    cmap: str = "Blues",
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
) -> Figure:
    """An annotated heatmap of a small labelled matrix (agreement, contingency)."""
    fig, ax = _fig(max(5, 0.8 * matrix.shape[1] + 2.5), max(3, 0.45 * matrix.shape[0] + 1.5))
    vals = matrix.to_numpy(dtype=float)
    im = ax.imshow(vals, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    for (i, j), v in np.ndenumerate(vals):
        ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=8, color=ink(im, i, j))
    ax.set_xticks(range(matrix.shape[1]), [str(c) for c in matrix.columns], rotation=35, ha="right")
    ax.set_yticks(range(matrix.shape[0]), [str(i) for i in matrix.index])
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax)
    return fig


def stability_bars(stability: Mapping[str, float | None], lang: str) -> Figure:
    """Mean bootstrap ARI per method (1.0 = the same segmentation on every subsample)."""
    fig, ax = _fig(6, 2.8)
    names = list(stability)
    vals = [v if v is not None else 0.0 for v in stability.values()]
    ax.bar(names, vals, color=PALETTE[: len(names)])
    for i, v in enumerate(vals):
        ax.text(i, v, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("ARI")
    ax.set_title(t("stability", lang))
    return fig
