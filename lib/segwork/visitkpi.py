"""The journey stages' KPIs on the visits basis, with their current values.

Acquisition is managed on visit-to-first-order conversion, conversion on the second-order rate
and cart recovery, retention on the repeat rate and revenue per customer. Each KPI is a share or
an amount over the customers it is defined on; ``None`` when that population is empty. Reads
the customer table with visit features (:mod:`segwork.visitbasis`); ids only, no display text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from segwork.maps import STAGES, SegmentMap

#: KPI ids per journey stage, in display order.
STAGE_KPIS: dict[str, tuple[str, ...]] = {
    "acquisition": ("visit_to_first_order",),
    "conversion": ("second_order_rate", "cart_recovery"),
    "retention": ("recent_repeat_rate", "revenue_per_repeat_customer"),
}
KPIS: tuple[str, ...] = tuple(k for s in STAGES for k in STAGE_KPIS[s])
#: Columns the KPIs read from the customer table.
NEEDED = ("orders", "visits", "carts_abandoned", "carts_decided", "last_order_days", "monetary")


def _share(hits: int, of: int) -> float | None:
    return None if of == 0 else round(hits / of, 4)


def kpi_values(customers: pd.DataFrame, repeat_window_days: int = 90) -> dict[str, float | None]:
    """Every KPI over one group of customers (a stage, a segment or everyone).

    visit_to_first_order: of customers with a visit, the share with an order;
    second_order_rate: of buyers, the share with two or more orders;
    cart_recovery: of carts whose window has passed, the share followed by an order;
    recent_repeat_rate: of repeat buyers, the share who ordered within ``repeat_window_days``;
    revenue_per_repeat_customer: mean order revenue of repeat buyers.
    """
    missing = [c for c in NEEDED if c not in customers.columns]
    if missing:
        raise ValueError(f"the customer table has no {', '.join(missing)}: run with --events")
    orders = customers["orders"]
    visitors = customers["visits"] > 0
    repeat = customers[orders >= 2]
    decided = int(customers["carts_decided"].sum())
    revenue = float(repeat["monetary"].mean()) if len(repeat) else math.nan
    return {
        "visit_to_first_order": _share(int((visitors & (orders >= 1)).sum()), int(visitors.sum())),
        "second_order_rate": _share(int((orders >= 2).sum()), int((orders >= 1).sum())),
        "cart_recovery": _share(decided - int(customers["carts_abandoned"].sum()), decided),
        "recent_repeat_rate": _share(
            int((repeat["last_order_days"] <= repeat_window_days).sum()), len(repeat)
        ),
        "revenue_per_repeat_customer": None if math.isnan(revenue) else round(revenue, 2),
    }


def stage_kpis(
    table: pd.DataFrame, repeat_window_days: int = 90
) -> dict[str, dict[str, float | None]]:
    """Stage -> its KPI ids -> current value over the whole customer base (the index card)."""
    values = kpi_values(table, repeat_window_days)
    return {s: {k: values[k] for k in STAGE_KPIS[s]} for s in STAGES}


def map_stages(segment_map: SegmentMap | Mapping[str, Any]) -> dict[str, str]:
    """Segment id -> stage id in map order, from a loaded map or its artefact (segment_map.json)."""
    if isinstance(segment_map, SegmentMap):
        return {s.id: s.stage for s in segment_map.segments}
    return {str(s["id"]): str(s["stage"]) for s in segment_map["segments"]}


def segment_kpis(
    table: pd.DataFrame,
    segment_map: SegmentMap | Mapping[str, Any],
    repeat_window_days: int = 90,
    column: str = "rfm_segment_id",
) -> dict[str, dict[str, float | None]]:
    """Segment id -> its stage's KPI ids -> value over the segment's customers (map order).

    ``table`` is the customer table of a run with events (``prep.table``, or the customers
    artefact); ``segment_map`` a loaded map or the artefact's ``segment_map.json`` dict.
    """
    groups: Mapping[str, pd.DataFrame] = dict(tuple(table.groupby(column, sort=False)))
    out: dict[str, dict[str, float | None]] = {}
    for seg, stage in map_stages(segment_map).items():
        members = groups.get(seg, table.iloc[0:0])
        values = kpi_values(members, repeat_window_days)
        out[seg] = {k: values[k] for k in STAGE_KPIS[stage]}
    return out
