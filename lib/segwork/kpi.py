"""Current values of the journey-stage KPIs, per segment: what a campaign is measured against.

Each stage has its KPIs (:data:`STAGE_KPIS`, ids only; the catalogue words them): acquisition
is measured by how many come back for a second order, conversion by order value and repeat
rate, retention by repeat rate and how long since the last order.
"""

from __future__ import annotations

import pandas as pd

#: KPI ids per journey stage, most important first.
STAGE_KPIS: dict[str, tuple[str, ...]] = {
    "acquisition": ("repeat_rate", "avg_order_value"),
    "conversion": ("avg_order_value", "repeat_rate"),
    "retention": ("repeat_rate", "median_days_since_last_order"),
}
#: Every KPI id and how it is shown: a share, money, or a number of days.
KPI_KINDS: dict[str, str] = {
    "repeat_rate": "share",
    "avg_order_value": "money",
    "median_days_since_last_order": "days",
    "revenue_per_customer": "money",
    # the visits basis (segwork.visitkpi)
    "visit_to_first_order": "share",
    "second_order_rate": "share",
    "cart_recovery": "share",
    "recent_repeat_rate": "share",
    "revenue_per_repeat_customer": "money",
}


def kpi_table(customers: pd.DataFrame, column: str = "rfm_segment_id") -> pd.DataFrame:
    """Per group of ``column``: every KPI in :data:`KPI_KINDS` (NaN for an empty group)."""
    # on the visits basis frequency counts visits; orders are their own column
    count = "orders" if "orders" in customers else "frequency"
    g = customers.groupby(column, sort=False, observed=True)
    orders = g[count].sum()
    revenue = g["monetary"].sum()
    out = pd.DataFrame(
        {
            "repeat_rate": g[count].apply(lambda f: float((f >= 2).mean())),
            "avg_order_value": revenue / orders.where(orders > 0),
            "median_days_since_last_order": g["recency_days"].median(),
            "revenue_per_customer": revenue / g.size(),
        }
    )
    out.index = out.index.map(str)
    return out.astype(float)


def stage_kpis(stage: str) -> tuple[str, ...]:
    """The KPI ids of one journey stage (none for an unknown stage)."""
    return STAGE_KPIS.get(stage, ())
