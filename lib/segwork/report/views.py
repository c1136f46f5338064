"""Display tables for report readers: small frames built from the artefacts, in the reader's language."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from segwork.artifacts import Artifacts

if TYPE_CHECKING:  # pragma: no cover
    pass


from segwork.config import METHODS, NOTEBOOKS  # noqa: F401

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
    "METHODS",
    "PAGE_TITLES",
]

PAGE_TITLES: dict[str, dict[str, str]] = {
    "01_eda": {"ko": "데이터 탐색과 품질", "en": "Data exploration and quality"},
    "02_rfm_segments": {"ko": "RFM 세그먼트", "en": "RFM segments"},
    "03_clusters": {"ko": "데이터 기반 군집", "en": "Data-driven clusters"},
    "04_compare_and_profile": {"ko": "비교와 프로필 카드", "en": "Comparison and profile cards"},
}


def _ko(lang: str) -> bool:
    """True for Korean output."""
    return lang == "ko"


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
    from segwork.clean import REASON_LABELS

    return {k: v["ko" if _ko(lang) else "en"] for k, v in REASON_LABELS.items()}


def headline(art: Artifacts, lang: str) -> pd.DataFrame:
    """One-row overview: as-of date, period, source file name, customers, rows kept."""
    s = art.summary
    led = s["ledger"]
    row = {
        ("기준일" if _ko(lang) else "As of"): s["as_of"],
        ("기간" if _ko(lang) else "Period"): f"{s['period']['first']} ~ {s['period']['last']}",
        ("데이터" if _ko(lang) else "Data"): Path(s["source"]["path"]).name,
        ("고객 수" if _ko(lang) else "Customers"): s["customers"],
        ("사용 행" if _ko(lang) else "Rows kept"): f"{led['rows_kept']:,} / {led['rows_in']:,}",
    }
    return pd.DataFrame([row])


def ledger_table(ledger: Mapping[str, Any], lang: str) -> pd.DataFrame:
    """Rows and revenue read, dropped per reason and kept; shares of rows read."""
    labels = reason_labels(lang)
    rows = [("read", ledger["rows_in"], ledger["revenue_in"])]
    rows += [(r, -d["rows"], -d["revenue"]) for r, d in ledger.get("dropped", {}).items()]
    rows.append(("kept", ledger["rows_kept"], ledger["revenue_kept"]))
    names = {"read": "읽은 행" if _ko(lang) else "Read", "kept": "사용" if _ko(lang) else "Kept"}
    df = pd.DataFrame(
        {
            ("항목" if _ko(lang) else "Step"): [names.get(r, labels.get(r, r)) for r, _, _ in rows],
            ("행 수" if _ko(lang) else "Rows"): [n for _, n, _ in rows],
            ("행 비중(%)" if _ko(lang) else "Share of rows (%)"): [
                round(100 * abs(n) / ledger["rows_in"], 2) if ledger["rows_in"] else 0.0
                for _, n, _ in rows
            ],
            ("매출" if _ko(lang) else "Revenue"): [round(float(v), 2) for _, _, v in rows],
        }
    )
    return df


def coverage_table(art: Artifacts, lang: str) -> pd.DataFrame:
    """Date coverage: first and last kept purchase, as-of date, months, months with no orders."""
    m = art.monthly
    empty = [d.strftime("%Y-%m") for d in pd.to_datetime(m.loc[m["orders"] == 0, "month"])]
    s = art.summary
    keys = (
        ("첫 구매", "First purchase", s["period"]["first"]),
        ("마지막 구매", "Last purchase", s["period"]["last"]),
        ("기준일", "As-of date", f"{s['as_of']} ({s['as_of_source']})"),
        ("개월 수", "Months", str(len(m))),
        ("주문 없는 달", "Months with no orders", ", ".join(empty) or "-"),
    )
    return pd.DataFrame(
        {
            ("항목" if _ko(lang) else "Item"): [k if _ko(lang) else e for k, e, _ in keys],
            ("값" if _ko(lang) else "Value"): [v for _, _, v in keys],
        }
    )


def monthly_table(monthly: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Orders, revenue and active customers per month, month as YYYY-MM."""
    df = monthly.copy()
    df["month"] = pd.to_datetime(df["month"]).dt.strftime("%Y-%m")
    df["revenue"] = df["revenue"].round(2)
    names = {"month": "월", "orders": "주문 수", "revenue": "매출", "customers": "고객 수"}
    return df.rename(columns=names) if _ko(lang) else df


def rfm_describe(customers: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Quantiles of recency, frequency and monetary."""
    q = customers[["recency_days", "frequency", "monetary"]].quantile(
        [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]
    )
    q.index = [f"p{int(round(100 * i))}" for i in q.index]
    q = q.round(2)
    if _ko(lang):
        q = q.rename(
            columns={
                "recency_days": "최근성(일)",
                "frequency": "구매 횟수",
                "monetary": "구매 금액",
            }
        )
    return q


def top_items(
    art: Artifacts, scope: str, group: str, kind: str, lang: str | None = None
) -> pd.DataFrame:
    """Top countries or products of one group (scope/group 'all' = everyone); ``lang`` names columns."""
    t = art.top
    df = t[(t["scope"] == scope) & (t["group"] == str(group)) & (t["kind"] == kind)]
    df = df[["rank", "name", "revenue", "customers"]].reset_index(drop=True)
    df["revenue"] = df["revenue"].round(2)
    if _ko(lang):
        df = df.rename(
            columns={"rank": "순위", "name": "이름", "revenue": "매출", "customers": "고객 수"}
        )
    return df


def quality_warnings(art: Artifacts, lang: str) -> pd.DataFrame:
    """Data-quality warnings a reader should know before trusting the segments."""
    ko = _ko(lang)
    led = art.summary["ledger"]
    out: list[str] = [w["message"] for w in art.summary.get("warnings", [])]
    rows_in = max(int(led["rows_in"]), 1)
    dropped = led.get("dropped", {})
    share = 1 - led["rows_kept"] / rows_in
    if share > 0.2:
        top = max(dropped, key=lambda r: dropped[r]["rows"]) if dropped else "-"
        lab = reason_labels(lang).get(top, top)
        out.append(
            f"행의 {share:.1%}가 제외됨 (가장 큰 사유: {lab})"
            if ko
            else f"{share:.1%} of rows were dropped (largest reason: {lab})"
        )
    miss = dropped.get("missing_customer", {}).get("rows", 0) / rows_in
    if miss > 0.05:
        out.append(
            f"고객번호 없는 행 {miss:.1%}: 이 매출은 세그먼트에 포함되지 않음"
            if ko
            else f"{miss:.1%} of rows have no customer ID: that revenue is not in any segment"
        )
    m = art.monthly
    gaps = int((m["orders"] == 0).sum())
    if gaps:
        out.append(
            f"주문이 없는 달 {gaps}개: 데이터 누락 가능성"
            if ko
            else f"{gaps} month(s) with no orders: data may be missing"
        )
    if len(m) >= 3 and m["revenue"].iloc[-1] < 0.5 * m["revenue"].iloc[:-1].median():
        out.append(
            "마지막 달 매출이 평소의 절반 미만: 부분 월일 수 있음"
            if ko
            else "Last month's revenue is under half the usual: it may be a partial month"
        )
    neg = int((art.customers["monetary"] <= 0).sum())
    if neg:
        out.append(
            f"순매출 0 이하 고객 {neg:,}명 (환불이 구매보다 큼)"
            if ko
            else f"{neg:,} customers with net revenue <= 0 (refunds exceed purchases)"
        )
    for col, info in art.summary["rfm"]["edges"].items():
        edges = info["edges"]
        if len(set(edges)) < len(edges):
            name = {"recency_days": "R", "frequency": "F", "monetary": "M"}[col]
            out.append(
                f"{name} 점수 경계가 겹쳐 일부 점수는 비어 있음 (동점 규칙)"
                if ko
                else f"{name} score edges coincide, so some scores are empty (tie rule)"
            )
    if not out:
        out.append("경고 없음" if ko else "No warnings")
    return pd.DataFrame({("경고" if ko else "Warning"): out})


def edges_table(art: Artifacts, lang: str) -> pd.DataFrame:
    """Bin edges per score and how many customers sit exactly on each edge."""
    rows = []
    for col, info in art.summary["rfm"]["edges"].items():
        rows.append(
            {
                "score": {"recency_days": "R", "frequency": "F", "monetary": "M"}[col],
                "source": info["source"],
                "edges": ", ".join(f"{e:,.2f}" for e in info["edges"]),
                "customers_on_edge": ", ".join(str(n) for n in info["customers_on_edge"]),
            }
        )
    df = pd.DataFrame(rows)
    if _ko(lang):
        df = df.rename(
            columns={
                "score": "점수",
                "source": "방식",
                "edges": "경계값",
                "customers_on_edge": "경계값 위 고객 수",
            }
        )
    return df


def score_counts(customers: pd.DataFrame) -> pd.DataFrame:
    """Customers per score 1..5 for R, F and M (an empty score shows 0)."""
    cols = {"R": "r_score", "F": "f_score", "M": "m_score"}
    scores = sorted(set().union(*(customers[c].unique() for c in cols.values())))
    return pd.DataFrame(
        {k: customers[c].value_counts().reindex(scores, fill_value=0) for k, c in cols.items()}
    ).rename_axis("score")


def map_grid(art: Artifacts, lang: str) -> pd.DataFrame:
    """The segment map grid (R x F+M) of display names in ``lang``."""
    g = art.segment_map["grid"]["ko" if _ko(lang) else "en"]
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
    if _ko(lang):
        df = df.rename(
            columns={
                "customer_id": "고객번호",
                "segment": "세그먼트",
                "recency_days": "최근성(일)",
                "frequency": "구매 횟수",
                "monetary": "구매 금액",
            }
        )
    return df


def method(art: Artifacts, name: str) -> dict[str, Any]:
    """The clustering summary of one method ({} when it did not run)."""
    return dict(art.summary.get("clustering", {}).get("methods", {}).get(name, {}))


def selection_table(art: Artifacts, lang: str) -> pd.DataFrame:
    """Per method: status, clusters chosen, the rule, the winning score and whether it sampled."""
    rows = []
    for m in METHODS:
        s = method(art, m)
        if not s:
            continue
        sel = s.get("selection", {})
        score = None
        if m in ("kmeans", "ward") and sel.get("scores"):
            ks, sil = sel["scores"]["k"], sel["scores"]["silhouette"]
            score = round(sil[ks.index(sel["chosen_k"])], 4) if sel.get("chosen_k") in ks else None
        if m == "hdbscan":
            chosen = [
                g
                for g in sel.get("grid", [])
                if g["min_cluster_size"] == sel.get("chosen_min_cluster_size")
                and g["min_samples"] == sel.get("chosen_min_samples")
            ]
            score = round(chosen[0]["dbcv"], 4) if chosen else None
        rows.append(
            {
                "method": m,
                "status": s.get("status"),
                "clusters": s.get("n_clusters"),
                "rule": sel.get("rule", sel.get("reason", "")),
                "score": score,
                "noise_share": round(s.get("noise", {}).get("share", 0.0), 4)
                if m == "hdbscan"
                else None,
                "sampled": s.get("sampled"),
            }
        )
    df = pd.DataFrame(rows)
    if _ko(lang) and not df.empty:
        df = df.rename(
            columns={
                "method": "방법",
                "status": "상태",
                "clusters": "군집 수",
                "rule": "선택 규칙",
                "score": "점수(실루엣/DBCV)",
                "noise_share": "노이즈 비중",
                "sampled": "표본 사용",
            }
        )
    return df


def kmeans_scores(art: Artifacts) -> pd.DataFrame:
    """K-Means model-selection scores per k (silhouette, Calinski-Harabasz, Davies-Bouldin, inertia)."""
    sc = method(art, "kmeans").get("selection", {}).get("scores")
    if not sc:
        return pd.DataFrame()
    cols = ["k", "silhouette", "calinski_harabasz", "davies_bouldin", "inertia"]
    return pd.DataFrame({c: sc[c] for c in cols}).set_index("k").astype(float).round(4)


def dbcv_table(art: Artifacts) -> pd.DataFrame:
    """HDBSCAN grid: each (min_cluster_size, min_samples) with clusters, noise share and DBCV."""
    grid = method(art, "hdbscan").get("selection", {}).get("grid", [])
    df = pd.DataFrame(grid)
    return df.round(4) if not df.empty else df


def cluster_counts(art: Artifacts) -> dict[str, dict[str, int]]:
    """Customers per cluster for each method that ran."""
    return {
        m: dict(art.summary["segments"].get(m, {}))
        for m in METHODS
        if art.summary["segments"].get(m)
    }


def cluster_count_table(art: Artifacts, lang: str) -> pd.DataFrame:
    """Customers per cluster as a table: one row per cluster, one column per method."""
    counts = cluster_counts(art)
    table = pd.DataFrame(counts).fillna(0).astype("int64")
    order = sorted(table.index, key=lambda c: (c != "noise", int(c) if c.isdigit() else -1))
    table = table.loc[order]
    table.index.name = "군집" if _ko(lang) else "cluster"
    return table


def notes(art: Artifacts) -> pd.DataFrame:
    """Plain-English notes the methods left (sampling, degenerate fits)."""
    rows = [(m, n) for m in METHODS for n in method(art, m).get("notes", [])]
    return pd.DataFrame(rows, columns=["method", "note"])


def agreement(art: Artifacts, metric: str = "ari") -> pd.DataFrame:
    """Pairwise agreement (ARI or AMI) between all segmentations, rounded."""
    d = art.summary.get("clustering", {}).get("agreement", {}).get(metric, {})
    return pd.DataFrame(d).astype(float).round(3)


def rules_table(art: Artifacts, lang: str) -> pd.DataFrame:
    """Per method and cluster: suggested name and the top rule with precision and coverage."""
    from segwork.profile import cluster_name

    labels = art.labels(lang)
    rows = []
    for m in METHODS:
        s = method(art, m)
        for cluster, rules in s.get("rules", {}).get("rules", {}).items():
            r = rules[0]
            rows.append(
                {
                    "method": m,
                    "cluster": cluster,
                    "name": cluster_name(s, cluster, labels, lang),
                    "rule": r["rule"],
                    "precision": round(r["precision"], 3),
                    "coverage": round(r["coverage"], 3),
                }
            )
    df = pd.DataFrame(rows)
    if _ko(lang) and not df.empty:
        df = df.rename(
            columns={
                "method": "방법",
                "cluster": "군집",
                "name": "제안 이름",
                "rule": "규칙",
                "precision": "정밀도",
                "coverage": "포괄률",
            }
        )
    return df


def stability(art: Artifacts) -> dict[str, float | None]:
    """Mean bootstrap ARI per method that has one."""
    return {
        m: method(art, m)["stability"]["mean_ari"]
        for m in METHODS
        if method(art, m).get("stability")
    }


def stability_table(art: Artifacts) -> pd.DataFrame:
    """Bootstrap stability (mean and min ARI) per method, and K-Means seed sensitivity."""
    rows = []
    for m in METHODS:
        s = method(art, m)
        if s.get("stability"):
            st = s["stability"]
            seed = s.get("seed_sensitivity", {}).get("mean_ari")
            rows.append(
                {
                    "method": m,
                    "mean_ari": round(st["mean_ari"], 3) if st["mean_ari"] is not None else None,
                    "min_ari": round(st["min_ari"], 3) if st["min_ari"] is not None else None,
                    "repeats": st["repeats"],
                    "seed_mean_ari": round(seed, 3) if seed is not None else None,
                }
            )
    return pd.DataFrame(rows)


def truth_table(art: Artifacts) -> pd.DataFrame:
    """ARI of each segmentation against planted personas (synthetic data only; else empty)."""
    truth = art.summary.get("clustering", {}).get("truth")
    if not truth:
        return pd.DataFrame()
    return pd.DataFrame({"ari_vs_truth": truth["ari_vs_truth"]}).round(3)


def truth_sentence(summary: Mapping[str, Any], lang: str) -> str | None:
    """Which method best recovers the planted personas (synthetic data only), and whether >= 0.8."""
    truth = summary.get("clustering", {}).get("truth")
    if not truth or not truth.get("best_method"):
        return None
    scores = truth["ari_vs_truth"]
    listed = ", ".join(f"{m} {scores[m]:.2f}" for m in METHODS if m in scores)
    best, ari = truth["best_method"], truth["best_ari"]
    if _ko(lang):
        verdict = "0.8 이상 달성" if truth.get("any_reaches_0_8") else "0.8 미달"
        return f"심어 둔 페르소나 대비 ARI: {listed}; 가장 잘 찾은 방법은 {best} ({ari:.2f}, {verdict})"
    verdict = "reaches 0.8" if truth.get("any_reaches_0_8") else "below 0.8"
    return f"ARI against the planted personas: {listed}; best is {best} ({ari:.2f}, {verdict})"


def headline_comparison(summary: Mapping[str, Any], lang: str) -> list[str]:
    """One sentence per clustering method (clusters, agreement with RFM, stability) + the truth."""
    clus = summary.get("clustering", {})
    ari = clus.get("agreement", {}).get("ari", {})
    out = []
    for m in METHODS:
        s = clus.get("methods", {}).get(m)
        if not s:
            continue
        a = ari.get(m, {}).get("rfm")
        st = (s.get("stability") or {}).get("mean_ari")
        a_txt = f"{a:.2f}" if a is not None else "-"
        st_txt = f"{st:.2f}" if st is not None else "-"
        if _ko(lang):
            out.append(
                f"{m}: 군집 {s.get('n_clusters', 0)}개, RFM 그룹과의 일치도(ARI) {a_txt}, 안정성 {st_txt}"
            )
        else:
            out.append(
                f"{m}: {s.get('n_clusters', 0)} clusters, agreement with RFM groups (ARI) {a_txt}, stability {st_txt}"
            )
    truth = truth_sentence(summary, lang)
    return [*out, truth] if truth else out
