"""Display helpers for behaviour events: the events ledger, the RFM basis, the stages' KPIs.

Small frames and sentences in the reader's language, from ``summary.json`` (typed) and the
catalogue sections ``event_reasons``, ``visits`` and ``kpis``; the report pages place them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd

from segwork.text import catalogue

if TYPE_CHECKING:  # pragma: no cover
    from segwork.summary import Events, Summary

__all__ = [
    "events_ledger_table",
    "event_types_table",
    "basis_statement",
    "events_sentence",
    "kpi_label",
    "kpi_value",
    "stage_kpi_table",
    "segment_kpi_table",
]
#: KPIs that are amounts (money), not shares.
_AMOUNTS = frozenset({"revenue_per_repeat_customer"})


def events_ledger_table(events: Events, lang: str) -> pd.DataFrame:
    """Events read, dropped per reason (negative) and kept, with shares of the events read."""
    t = catalogue(lang)
    v, reasons = t["visits"], t["event_reasons"]
    rows = [(v["read"], events.rows_in)]
    rows += [(reasons.get(r, r), -n) for r, n in events.dropped.items()]
    rows.append((v["kept"], events.rows_kept))
    total = events.rows_in
    return pd.DataFrame(
        {
            v["step"]: [name for name, _ in rows],
            v["rows"]: [n for _, n in rows],
            v["row_share"]: [round(100 * abs(n) / total, 2) if total else 0.0 for _, n in rows],
        }
    )


def event_types_table(events: Events, lang: str) -> pd.DataFrame:
    """Kept events by type (visit, view, cart, purchase, sign-up, other)."""
    v = catalogue(lang)["visits"]
    return pd.DataFrame(
        {
            v["step"]: [v.get(f"type_{k}", k) for k in events.kept_by_type],
            v["rows"]: list(events.kept_by_type.values()),
        }
    )


def basis_statement(summary: Summary, lang: str) -> str:
    """One sentence saying what R, F and M count in this run (and who is included)."""
    t = catalogue(lang)
    ev = summary.events
    as_of = summary.as_of.isoformat()
    if summary.rfm.basis == "visits" and ev is not None:
        return t("visits.basis_visits", as_of=as_of, non_buyers=ev.non_buyers)
    if ev is not None:
        return t("visits.basis_orders_events", non_buyers=ev.non_buyers)
    return t("visits.basis_orders", as_of=as_of)


def events_sentence(summary: Summary, lang: str) -> str:
    """'x of y events kept (v visits by c customers)', or that no events were given."""
    ev = summary.events
    if ev is None:
        return catalogue(lang)("visits.no_events")
    return catalogue(lang)(
        "visits.events_summary",
        rows_kept=ev.rows_kept,
        rows_in=ev.rows_in,
        visits=ev.visits,
        customers=ev.customers_kept,
    )


def kpi_label(kpi: str, lang: str, repeat_window_days: int = 90) -> str:
    """A KPI id in words (the repeat rate names its window)."""
    return catalogue(lang)(f"kpis.{kpi}", days=repeat_window_days)


def kpi_value(kpi: str, value: float | None, lang: str) -> str:
    """A KPI value for reading: shares as percentages, amounts with thousands separators."""
    if value is None:
        return catalogue(lang)("kpis.none")
    return f"{value:,.0f}" if kpi in _AMOUNTS else f"{value:.1%}"


def stage_kpi_table(
    stage_kpis: Mapping[str, Mapping[str, float | None]], lang: str, repeat_window_days: int = 90
) -> pd.DataFrame:
    """Stage, KPI and its current value, one row per KPI in stage order (summary.events.stage_kpis)."""
    t = catalogue(lang)
    v = t["visits"]
    rows = [
        (
            t["stages"].get(stage, stage),
            kpi_label(k, lang, repeat_window_days),
            kpi_value(k, x, lang),
        )
        for stage, kpis in stage_kpis.items()
        for k, x in kpis.items()
    ]
    return pd.DataFrame(rows, columns=[v["stage"], v["kpi"], v["value"]])


def segment_kpi_table(
    values: Mapping[str, Mapping[str, float | None]],
    labels: Mapping[str, str],
    stages: Mapping[str, str],
    lang: str,
    repeat_window_days: int = 90,
) -> pd.DataFrame:
    """Segment, stage, KPI and value (from ``visitkpi.segment_kpis``), in map order.

    ``labels`` is segment id -> display name and ``stages`` segment id -> stage id.
    """
    t = catalogue(lang)
    v = t["visits"]
    rows = [
        (
            labels.get(seg, seg),
            t["stages"].get(stages.get(seg, ""), stages.get(seg, "")),
            kpi_label(k, lang, repeat_window_days),
            kpi_value(k, x, lang),
        )
        for seg, kpis in values.items()
        for k, x in kpis.items()
    ]
    return pd.DataFrame(rows, columns=[v["segment"], v["stage"], v["kpi"], v["value"]])
