"""Per-segment and per-cluster profile cards: who they are, what they are worth, what to do.

Everything takes the artefact frames (customers, top items, segment map, clustering summary)
and returns plain frames or frozen dataclasses; :func:`cards_html` renders cards with every
data-derived string escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from segwork.tally import crosstab
from segwork.text import catalogue

if TYPE_CHECKING:  # pragma: no cover
    from segwork.summary import Method

RFM = ("recency_days", "frequency", "monetary")


def _t(key: str, lang: str) -> str:
    """A column or stage name in ``lang`` (the catalogue's ``columns`` and ``stages``)."""
    t = catalogue(lang)
    return t["columns"].get(key) or t["stages"].get(key) or key


def group_stats(customers: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per group of ``column``: customers, shares of customers and revenue, medians of R, F, M."""
    total_n = len(customers)
    total_rev = float(customers["monetary"].sum())
    g = customers.groupby(column, sort=False, observed=True)
    out = pd.DataFrame(
        {
            "customers": g.size(),
            "revenue": g["monetary"].sum(),
            "median_recency_days": g["recency_days"].median(),
            "median_frequency": g["frequency"].median(),
            "median_monetary": g["monetary"].median(),
        }
    )
    out["customer_share"] = out["customers"] / total_n if total_n else 0.0
    out["revenue_share"] = out["revenue"] / total_rev if total_rev else 0.0
    out.index = out.index.map(str)
    out.index.name = "group"
    return out.sort_values(["customers", "revenue"], ascending=False, kind="stable")


def top_names(top: pd.DataFrame, scope: str, group: str, kind: str, n: int = 3) -> tuple[str, ...]:
    """The top ``n`` country or product names of one group, by revenue."""
    sel = top[(top["scope"] == scope) & (top["group"] == str(group)) & (top["kind"] == kind)]
    return tuple(sel.sort_values("rank")["name"].head(n).astype(str))


@dataclass(frozen=True)
class ProfileCard:
    """One segment or cluster, summarised for a business reader."""

    scope: str  # "rfm" or a clustering method
    group: str
    name: str
    customers: int
    customer_share: float
    revenue: float
    revenue_share: float
    median_recency_days: float
    median_frequency: float
    median_monetary: float
    top_countries: tuple[str, ...]
    top_products: tuple[str, ...]
    stage: str = ""
    kpi: str = ""
    actions: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    note: str = ""  # why the card reads differently: outliers, or no short rule describes it


def _card(
    scope: str, group: str, name: str, row: pd.Series, top: pd.DataFrame, **extra: Any
) -> ProfileCard:
    """A card from one row of :func:`group_stats` plus the group's top countries and products."""
    return ProfileCard(
        scope=scope,
        group=group,
        name=name,
        customers=int(row["customers"]),
        customer_share=float(row["customer_share"]),
        revenue=float(row["revenue"]),
        revenue_share=float(row["revenue_share"]),
        median_recency_days=float(row["median_recency_days"]),
        median_frequency=float(row["median_frequency"]),
        median_monetary=float(row["median_monetary"]),
        top_countries=top_names(top, scope, group, "country"),
        top_products=top_names(top, scope, group, "product"),
        **extra,
    )


def segment_cards(
    customers: pd.DataFrame, top: pd.DataFrame, segment_map: Mapping[str, Any], lang: str
) -> list[ProfileCard]:
    """One card per non-empty RFM group, by revenue share, with stage, KPI and actions."""
    stats = group_stats(customers, "rfm_segment_id")
    lk = lang  # the segment map holds each group's names, KPI and actions per language
    cards = []
    for seg in segment_map["segments"]:
        if seg["id"] not in stats.index:
            continue
        cards.append(
            _card(
                "rfm",
                seg["id"],
                seg[lk],
                stats.loc[seg["id"]],
                top,
                stage=_t(seg["stage"], lang),
                kpi=str(seg.get("kpi", {}).get(lk, "")),
                actions=tuple(seg.get("actions", {}).get(lk, ())),
            )
        )
    return sorted(cards, key=lambda c: (-c.revenue_share, -c.customers))


def summary_key(cluster: str) -> str:
    """A cluster label as the summary keys it: HDBSCAN's ``-1`` is ``noise``."""
    return "noise" if cluster in ("-1", "noise") else cluster


def cluster_name(method_summary: Method, cluster: str, labels: Mapping[str, str], lang: str) -> str:
    """Suggested name in ``lang``: the dominant RFM group with its share, else the stored code.

    HDBSCAN's -1 is "unclustered (outliers)". The summary holds ids only (``vip``,
    ``recent+frequent+high_spend``); this is where they become words.
    """
    t = catalogue(lang)
    key = summary_key(cluster)
    if key == "noise":
        return t("clusters.outliers")
    for d in method_summary.dominant_groups.get("rfm", []):
        if d.cluster == key:
            name = labels.get(d.dominant, d.dominant)
            return t("clusters.named", name=name, share=d.share)
    code = method_summary.names.get(key, key)
    return labels.get(code) or profile_text(code, lang)


#: A cluster whose best rule is right for fewer of its customers than this has no short rule.
RULE_PRECISION = 0.6


def profile_text(code: str, lang: str) -> str:
    """A profile code ("recent+frequent+high_spend") in words; anything else unchanged."""
    words = catalogue(lang)["profile_words"]
    parts = code.split("+")
    if not all(p in words for p in parts):
        return code
    return ", ".join(words[p] for p in parts)


def cluster_cards(
    customers: pd.DataFrame,
    top: pd.DataFrame,
    method: str,
    method_summary: Method | None,
    segment_map: Mapping[str, Any],
    lang: str,
) -> list[ProfileCard]:
    """One card per cluster of ``method``: suggested name, rules, and the dominant group's actions."""
    column = f"{method}_cluster"
    if column not in customers or method_summary is None or method_summary.status != "ok":
        return []
    stats = group_stats(customers, column)
    lk = lang  # the segment map holds each group's names, KPI and actions per language
    labels = {s["id"]: s[lk] for s in segment_map["segments"]}
    by_id = {s["id"]: s for s in segment_map["segments"]}
    dominant = {d.cluster: d.dominant for d in method_summary.dominant_groups.get("rfm", [])}
    rules = method_summary.rules.rules if method_summary.rules else {}
    t = catalogue(lang)
    cards = []
    for group in stats.index:
        seg = by_id.get(dominant.get(summary_key(group), ""), {})
        outliers = group == "-1"
        found = rules.get(summary_key(group), [])
        note = ""
        if outliers:
            note = t("clusters.outliers_note")
        elif not found or found[0].precision < RULE_PRECISION:
            note = t("clusters.no_short_rule")
        name = cluster_name(method_summary, group, labels, lang)
        cards.append(
            _card(
                method,
                group,
                name if outliers else t("clusters.card_title", id=group, name=name),
                stats.loc[group],
                top,
                stage=_t(seg["stage"], lang) if seg and not outliers else "",
                kpi=str(seg.get("kpi", {}).get(lk, "")) if not outliers else "",
                actions=tuple(seg.get("actions", {}).get(lk, ())) if not outliers else (),
                rules=tuple(r.rule for r in found[:2]) if not outliers else (),
                note=note,
            )
        )
    return sorted(cards, key=lambda c: (-c.revenue_share, -c.customers))


def cards_frame(cards: Sequence[ProfileCard], lang: str) -> pd.DataFrame:
    """Cards as a table (one row per card) with column names in ``lang``."""
    rows = [
        {
            "name": c.name,
            "customers": c.customers,
            "customer_share": round(100 * c.customer_share, 1),
            "revenue": round(c.revenue, 0),
            "revenue_share": round(100 * c.revenue_share, 1),
            "median_recency_days": round(c.median_recency_days, 1),
            "median_frequency": round(c.median_frequency, 1),
            "median_monetary": round(c.median_monetary, 1),
        }
        for c in cards
    ]
    df = pd.DataFrame(rows, columns=list(rows[0]) if rows else ["name"])
    return localise(df, lang)


def segment_table(
    customers: pd.DataFrame, segment_map: Mapping[str, Any], lang: str
) -> pd.DataFrame:
    """Every RFM group (empty ones too) with stage, size, shares, KPI and actions, in map order."""
    stats = group_stats(customers, "rfm_segment_id")
    lk = lang  # the segment map holds each group's names, KPI and actions per language
    rows = []
    for s in segment_map["segments"]:
        has = s["id"] in stats.index
        st = stats.loc[s["id"]] if has else None
        rows.append(
            {
                "name": s[lk],
                "stage": _t(s["stage"], lang),
                "customers": int(st["customers"]) if has else 0,
                "customer_share": round(100 * float(st["customer_share"]), 1) if has else 0.0,
                "revenue_share": round(100 * float(st["revenue_share"]), 1) if has else 0.0,
                "kpi": s.get("kpi", {}).get(lk, ""),
                "actions": " · ".join(s.get("actions", {}).get(lk, [])),
            }
        )
    return pd.DataFrame(rows)


def localise(table: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The same table with its column names in ``lang``."""
    return table.rename(columns={k: _t(k, lang) for k in table.columns})


def contingency_table(
    customers: pd.DataFrame, column: str, labels: Mapping[str, str]
) -> pd.DataFrame:
    """Customers per (cluster of ``column``, RFM group), RFM groups named and in map order."""
    tab = crosstab(customers[column], customers["rfm_segment_id"])
    order = [s for s in labels if s in tab.columns]
    tab = tab[order].rename(columns=labels)
    tab.index = tab.index.map(lambda v: "noise" if int(v) == -1 else str(v))
    tab.index.name = column
    tab.columns.name = "rfm"
    return tab


def cluster_medians(customers: pd.DataFrame, column: str) -> pd.DataFrame:
    """Median R, F, M per cluster (rows) for the profile heatmap."""
    med = customers.groupby(column)[list(RFM)].median()
    med.index = med.index.map(lambda v: "noise" if int(v) == -1 else str(v))
    return med
