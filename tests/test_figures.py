"""plots.py: every figure builds headless from small frames and follows the language."""

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.cluster.hierarchy import linkage

from segwork.report import figures as plots
from segwork.summary import Ledger, Method


def method(selection: dict, n_clusters: int = 2) -> Method:
    """A clustering method's summary with the given selection evidence."""
    return Method(status="ok", n_clusters=n_clusters, counts={}, selection=selection, sampled=False, notes=[])  # fmt: skip


CUSTOMERS = pd.DataFrame(
    {
        "recency_days": [1, 5, 40, 300],
        "frequency": [1, 2, 8, 30],
        "monetary": [10.0, 50.0, 300.0, 9000.0],
    }
)


def _titles(fig: Figure) -> str:
    texts = [ax.get_title() for ax in fig.axes] + [
        fig._suptitle.get_text() if fig._suptitle else ""
    ]
    return " ".join(texts)


def test_ledger_waterfall_bars_and_korean_title():
    ledger = Ledger(
        rows_in=100,
        rows_kept=70,
        revenue_in=15.0,
        revenue_kept=10.0,
        customers_kept=3,
        dropped={"cancellation": {"rows": 30, "revenue": 5.0}},
    )
    fig = plots.ledger_waterfall(ledger, {"cancellation": "취소·반품"}, "ko")
    ax = fig.axes[0]
    assert [round(p.get_width()) for p in ax.patches] == [100, 30, 70]
    assert [p.get_x() for p in ax.patches] == [0, 70, 0]
    assert "데이터 원장" in ax.get_title()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["읽은 행", "취소·반품", "분석에 사용"]


def test_figures_build_in_both_languages():
    monthly = pd.DataFrame({"month": pd.date_range("2024-01-01", periods=3, freq="MS"),
                            "orders": [5, 0, 7], "revenue": [50.0, 0.0, 70.0], "customers": [2, 0, 3]})  # fmt: skip
    grid = pd.DataFrame([["A", "B"], ["C", "C"]], index=[2, 1], columns=[2, 3])
    counts = pd.DataFrame([[1, 2], [3, 4]], index=[2, 1], columns=[2, 3])
    z = linkage(np.array([[0.0], [1.0], [5.0], [6.0]]), "ward")
    for lang in ("ko", "en"):
        figs = [
            plots.monthly_trend(monthly, lang),
            plots.rfm_distributions(CUSTOMERS, lang),
            plots.top_bar(pd.DataFrame({"name": ["UK", "FR"], "revenue": [9.0, 3.0]}), "country", lang),
            plots.segment_grid(grid, counts, lang),
            plots.share_bars(pd.DataFrame({"name": ["A"], "customer_share": [0.5], "revenue_share": [0.8]}), lang),
            plots.kmeans_selection(method({"scores": {"k": [2, 3], "inertia": [9.0, 4.0], "silhouette": [0.5, 0.6], "n_silhouette_sample": 4}}, 3), None, lang),
            plots.kmeans_selection(None, None, lang),
            plots.dendrogram(z, method({}, 2), lang),
            plots.dbcv_grid(method({"grid": [{"min_cluster_size": 5, "min_cluster_size_param": 5, "min_samples": 5, "n_clusters": 2, "noise_share": 0.1, "dbcv": 0.3}]}), lang),
            plots.dbcv_grid(method({"grid": [{"min_cluster_size": 5, "min_cluster_size_param": 5, "min_samples": 5, "n_clusters": 0, "noise_share": 1.0, "dbcv": None}]}), lang),
            plots.cluster_sizes({"kmeans": {"0": 3, "1": 1}}, lang),
            plots.profile_heatmap(CUSTOMERS.iloc[:2], CUSTOMERS.median(), "K-Means", lang),
            plots.matrix_heatmap(pd.DataFrame([[1.0, 0.2], [0.2, 1.0]], index=["a", "b"], columns=["a", "b"]), "t"),
            plots.stability_bars({"kmeans": 0.9, "ward": None}, lang),
        ]  # fmt: skip
        assert all(isinstance(f, Figure) and f.axes for f in figs)
        for f in figs:
            f.canvas.draw()  # renders without error (fonts found)
    assert "세그먼트 맵" in _titles(plots.segment_grid(grid, counts, "ko"))
    assert "Segment map" in _titles(plots.segment_grid(grid, counts, "en"))


def test_korean_font_is_nanum_from_the_package():
    import matplotlib as mpl
    from matplotlib import font_manager

    assert "NanumGothic" in mpl.rcParams["font.family"]
    path = font_manager.findfont("NanumGothic", fallback_to_default=False)
    assert "koreanize_matplotlib" in path
