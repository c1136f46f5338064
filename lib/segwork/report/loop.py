"""Display helpers for migration, the expected mix and campaign results, in the reader's language.

Everything here reads a :class:`segwork.summary.Summary` (its ``migration`` and ``feedback``
blocks) and returns display-ready frames, sentences or a matplotlib Figure; nothing is computed
beyond arranging. The flow chart is a two-column alluvial (Sankey-style) diagram drawn with
matplotlib polygons: plotly is not a dependency.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from segwork.currency import currency
from segwork.maps import load_map
from segwork.report.figures import PALETTE  # also registers the Korean font
from segwork.report.tables import fmt_int, fmt_money
from segwork.text import catalogue

if TYPE_CHECKING:  # pragma: no cover
    from segwork.feedback import Feedback, GroupResult
    from segwork.summary import Migration, Summary

NEW = "__new__"
DEPARTED = "__departed__"

__all__ = [
    "segment_names",
    "migration_matrix",
    "revenue_matrix",
    "biggest_flows",
    "migration_figure",
    "expected_mix",
    "projection_notes",
    "campaign_table",
    "campaign_card_line",
    "mix_by_month",
]


def _migration(summary: Summary) -> Migration:
    if summary.migration is None:
        raise ValueError("this run has no migration block (no earlier date to compare with)")
    return summary.migration


def segment_names(summary: Summary, lang: str) -> dict[str, str]:
    """Segment id -> display name, with the new / departed rows worded from the catalogue."""
    t = catalogue(lang)
    names = dict(load_map(summary.rfm.segment_map).labels(lang))
    m = summary.migration
    if m is not None:
        names[NEW] = t("loop.new", date=m.earlier.isoformat())
        names[DEPARTED] = t("loop.departed")
    return names


def _matrix(summary: Summary, lang: str, value: str) -> pd.DataFrame:
    m = _migration(summary)
    order = list(summary.rfm.groups)
    rows, cols = [*order, NEW], [*order, DEPARTED]
    out = pd.DataFrame(0.0, index=rows, columns=cols)
    for f in m.flows:
        out.loc[f.source, f.target] = getattr(f, value)
    t = catalogue(lang)
    names = segment_names(summary, lang)
    out = out.rename(index=names, columns=names)
    out.loc[t("loop.total")] = out.sum(axis=0)
    out[t("loop.total")] = out.sum(axis=1)
    out.index.name = t("loop.from", date=m.earlier.isoformat())
    out.columns.name = t("loop.to", date=m.later.isoformat())
    return out


def migration_matrix(summary: Summary, lang: str) -> pd.DataFrame:
    """Customers from each segment (rows, earlier date) to each segment (columns, later date),
    with totals; the grand total is the union of both customer sets."""
    return _matrix(summary, lang, "customers").astype("int64")


def revenue_matrix(summary: Summary, lang: str) -> pd.DataFrame:
    """Kept revenue between the two dates of the customers on each path, with totals."""
    return _matrix(summary, lang, "revenue").round(0)


def biggest_flows(summary: Summary, lang: str, n: int = 3) -> list[str]:
    """The ``n`` largest moves (customers who changed segment, joined or left) as sentences,
    money in the run's currency."""
    cur = currency(summary.currency)
    m = _migration(summary)
    t = catalogue(lang)
    names = segment_names(summary, lang)
    moves = [f for f in m.flows if f.source != f.target]
    moves.sort(key=lambda f: (-f.customers, -f.revenue))
    out = []
    common = {"days": m.period_days, "later": m.later.isoformat(), "earlier": m.earlier.isoformat()}
    for f in moves[:n]:
        key = "loop.flow_new" if f.source == NEW else "loop.flow"
        key = "loop.flow_departed" if f.target == DEPARTED else key
        out.append(
            t(
                key,
                customers=fmt_int(f.customers),
                source=names[f.source],
                target=names[f.target],
                revenue=fmt_money(f.revenue, cur, whole=True),
                revenue_prior=fmt_money(f.revenue_prior, cur, whole=True),
                **common,
            )
        )
    return out or [t("loop.no_moves", **common)]


def _band(ax: object, y0: tuple[float, float], y1: tuple[float, float], color: str) -> None:
    """A smooth band from the left span y0 (x=0) to the right span y1 (x=1)."""
    x = np.linspace(0.08, 0.92, 50)
    s = (1 - np.cos(np.pi * (x - 0.08) / 0.84)) / 2  # eases 0 -> 1
    lo = y0[0] + (y1[0] - y0[0]) * s
    hi = y0[1] + (y1[1] - y0[1]) * s
    ax.fill_between(x, lo, hi, color=color, alpha=0.45, linewidth=0)  # type: ignore[attr-defined]


def migration_figure(summary: Summary, lang: str, min_share: float = 0.0) -> Figure:
    """Alluvial (Sankey-style) chart: earlier segments on the left, later on the right, one
    band per path with height = customers. Paths under ``min_share`` of all customers are
    left out of the bands (the bars still count them)."""
    m = _migration(summary)
    t = catalogue(lang)
    names = segment_names(summary, lang)
    order = list(summary.rfm.groups)
    left_ids, right_ids = [*order, NEW], [*order, DEPARTED]
    counts = {(f.source, f.target): f.customers for f in m.flows}
    total = float(sum(counts.values())) or 1.0
    gap = 0.01 * total
    colors = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate([*order, NEW, DEPARTED])}

    def stack(ids: list[str], size: dict[str, float]) -> dict[str, float]:
        pos, y = {}, 0.0
        for s in ids:
            pos[s] = y
            y += size[s] + (gap if size[s] else 0.0)
        return pos

    left = {s: float(sum(v for (a, _), v in counts.items() if a == s)) for s in left_ids}
    right = {s: float(sum(v for (_, b), v in counts.items() if b == s)) for s in right_ids}
    lpos, rpos = stack(left_ids, left), stack(right_ids, right)
    fig = Figure(figsize=(9, 6.5))
    ax = fig.subplots()
    lcur, rcur = dict(lpos), dict(rpos)
    for a in left_ids:
        for b in right_ids:
            v = counts.get((a, b), 0)
            if not v:
                continue
            if v / total >= min_share:
                _band(ax, (lcur[a], lcur[a] + v), (rcur[b], rcur[b] + v), colors[a])
            lcur[a] += v
            rcur[b] += v
    for ids, pos, size, x, ha in (
        (left_ids, lpos, left, 0.0, "right"),
        (right_ids, rpos, right, 1.0, "left"),
    ):
        for s in ids:
            if not size[s]:
                continue
            ax.bar(x, size[s], bottom=pos[s], width=0.16, color=colors[s], edgecolor="white")
            label = f"{names[s]} ({int(size[s]):,})"
            off = -0.1 if ha == "right" else 0.1
            ax.text(x + off, pos[s] + size[s] / 2, label, ha=ha, va="center", fontsize=8)
    ax.set_xlim(-0.9, 1.9)
    ax.invert_yaxis()
    ax.axis("off")
    ax.set_title(t("loop.sankey", earlier=m.earlier.isoformat(), later=m.later.isoformat()))
    fig.tight_layout()
    return fig


def expected_mix(summary: Summary, lang: str) -> pd.DataFrame:
    """Customers and shares per segment today and expected one period ahead."""
    m = _migration(summary)
    t = catalogue(lang)
    names = segment_names(summary, lang)
    today = pd.Series(summary.segments.rfm, dtype=float)
    ahead = pd.Series(m.projection.customers, dtype=float).reindex(today.index, fill_value=0.0)
    now, at = m.later.isoformat(), m.projection.at.isoformat()
    out = pd.DataFrame(
        {
            t("loop.today", date=now): today.astype("int64"),
            t("loop.today_share", date=now): (100 * today / today.sum()).round(1),
            t("loop.expected", date=at): ahead.round(0).astype("int64"),
            t("loop.expected_share", date=at): (100 * ahead / ahead.sum()).round(1),
            t("loop.change"): (ahead - today).round(0).astype("int64"),
        }
    )
    out.index = [names[s] for s in out.index]
    out.index.name = t("loop.segment")
    return out


def projection_notes(summary: Summary, lang: str) -> list[str]:
    """How the expected mix was made, which edges scored both dates, and its back-test error."""
    m = _migration(summary)
    t = catalogue(lang)
    p = m.projection
    key = (
        "loop.method_transitions_p_purchase"
        if "p_purchase" in p.method
        else "loop.method_transitions"
    )
    out = [
        t(key, earlier=m.earlier.isoformat(), later=m.later.isoformat()),
        t("loop.edges", later=m.later.isoformat()),
    ]
    b = p.backtest
    if b is None:
        out.append(t("loop.no_backtest", reason=p.backtest_note or "-"))
    else:
        out.append(
            t(
                "loop.backtest",
                fitted_from=b.fitted_from.isoformat(),
                projected_from=b.projected_from.isoformat(),
                checked_at=b.checked_at.isoformat(),
                error=b.error / 2,
                error_raw=b.error,
                naive=b.naive_error / 2,
            )
        )
    return out


def _verdict(g: GroupResult, lang: str) -> str:
    t = catalogue(lang)
    if g.uplift_ci is None:
        return t("loop.too_few")
    if g.uplift_ci[0] > 0:
        return t("loop.paid_off")
    if g.uplift_ci[1] < 0:
        return t("loop.harmful")
    return t("loop.no_evidence")


def campaign_table(fb: Feedback, lang: str, segment_map: str | None = None) -> pd.DataFrame:
    """One row per segment and one for all customers: sizes, response rates (%), uplift (pp)
    with its 95% interval, incremental revenue per contact, ROI and the verdict."""
    t = catalogue(lang)
    names = load_map(segment_map).labels(lang) if segment_map else {}
    rows = [(t("loop.overall"), fb.overall)]
    rows += [(names.get(s, s), g) for s, g in fb.segments.items()]

    def pct(x: float | None) -> float | None:
        return None if x is None else round(100 * x, 1)

    return pd.DataFrame(
        [
            {
                t("loop.campaign_segment"): name,
                t("loop.n_treated"): g.n_treated,
                t("loop.n_control"): g.n_control,
                t("loop.rate_treated"): pct(g.rate_treated),
                t("loop.rate_control"): pct(g.rate_control),
                t("loop.uplift"): pct(g.uplift),
                t("loop.uplift_ci"): "–"
                if g.uplift_ci is None
                else f"{100 * g.uplift_ci[0]:+.1f} ~ {100 * g.uplift_ci[1]:+.1f}",
                t("loop.incremental_revenue"): g.incremental_revenue_per_contact,
                t("loop.roi"): None if g.roi is None else round(g.roi, 2),
                t("loop.verdict"): _verdict(g, lang),
            }
            for name, g in rows
        ]
    ).set_index(t("loop.campaign_segment"))


def campaign_card_line(fb: Feedback | None, segment_id: str, lang: str) -> str | None:
    """One line for a segment card: the latest campaign's uplift and verdict (None if absent)."""
    if fb is None or segment_id not in fb.segments:
        return None
    g = fb.segments[segment_id]
    t = catalogue(lang)
    if g.uplift is None:
        return None
    if g.uplift_ci is None:
        return t("loop.card_no_interval", uplift=g.uplift)
    return t(
        "loop.card",
        uplift=g.uplift,
        lo=g.uplift_ci[0],
        hi=g.uplift_ci[1],
        verdict=_verdict(g, lang),
    )


def mix_by_month(summaries: Sequence[Summary], lang: str) -> pd.DataFrame:
    """Share of customers (%) per segment in each month's report, months as rows (oldest
    first), so the monthly index can show the trend."""
    if not summaries:
        return pd.DataFrame()
    names = load_map(summaries[-1].rfm.segment_map).labels(lang)
    rows: dict[date, pd.Series] = {}
    for s in sorted(summaries, key=lambda x: x.as_of):
        counts = pd.Series(s.segments.rfm, dtype=float)
        rows[s.as_of] = (100 * counts / counts.sum()).round(1) if counts.sum() else counts
    out = pd.DataFrame(rows).T.fillna(0.0)
    out.index = [d.strftime("%Y-%m") for d in out.index]
    out.index.name = catalogue(lang)("loop.month")
    return out.rename(columns=names)
