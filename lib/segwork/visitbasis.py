"""The customer table on the basis the team chooses: orders, or visits from the events.

Joins the order-based RFM table with the per-customer visit aggregate of :mod:`segwork.events`,
keeping every customer of either side (customers seen only in events are non-buyers: no
orders, monetary 0), and sets recency and frequency from orders or from visits (``rfm.basis``).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from segwork.errors import SegworkInputError

BASES = ("orders", "visits")
#: Visit features added to the customer table (all customers; 0 or NaN when they have none).
VISIT_FEATURES = (
    "orders",
    "visits",
    "views",
    "carts",
    "carts_abandoned",
    "first_visit_days",
    "visit_conversion",
    "days_to_first_order",
)


def resolve_basis(basis: str | None, has_events: bool, where: str = "config") -> str:
    """rfm.basis as run: visits by default when events are given, else orders."""
    if basis is None:
        return "visits" if has_events else "orders"
    if basis == "visits" and not has_events:
        raise SegworkInputError(
            f"{where}: rfm.basis is visits but no events file is given; pass --events FILE "
            "or set rfm.basis: orders"
        )
    return basis


def _days(as_of: dt.date, when: pd.Series) -> pd.Series:
    """Whole days from each timestamp's date to ``as_of`` (NaN where missing)."""
    day = pd.to_datetime(when).dt.normalize()
    return (pd.Timestamp(as_of) - day).dt.days


def customer_table(
    orders: pd.DataFrame,
    visits: pd.DataFrame,
    basis: str,
    as_of: dt.date,
    first_date: dt.date,
) -> pd.DataFrame:
    """The order-based RFM table joined with visit features, every customer of either side kept.

    Customers seen only in events are non-buyers: orders, frequency and monetary 0. On the
    ``visits`` basis recency is days since the last visit (an order counts as one) and frequency
    is the number of visits (at least the orders); monetary stays order revenue. On the
    ``orders`` basis a non-buyer's recency is the whole observed window (from ``first_date``).
    """
    ids = orders.index.union(visits.index)
    out = orders.reindex(ids)
    out.index.name = "customer_id"
    vis = visits.reindex(ids)
    n_orders = out["frequency"].fillna(0).astype("int64")
    out["monetary"] = out["monetary"].fillna(0.0)
    for col in ("visits", "views", "carts", "carts_abandoned", "carts_decided"):
        out[col] = vis[col].fillna(0).astype("int64")
    out["orders"] = n_orders
    seen = pd.concat([vis["first_visit"], vis["signup"], out["first_purchase"]], axis=1).min(axis=1)
    out["first_visit_days"] = _days(as_of, seen).astype("int64")
    came = pd.concat([vis["first_visit"], vis["signup"]], axis=1).min(axis=1)
    to_first = (
        pd.to_datetime(out["first_purchase"]).dt.normalize() - pd.to_datetime(came).dt.normalize()
    ).dt.days
    out["days_to_first_order"] = to_first.where(to_first >= 0)  # NaN: no order, or before events
    out["visit_conversion"] = (n_orders / out["visits"].where(out["visits"] > 0)).astype(float)
    out["last_order_days"] = out["recency_days"].astype(float)  # NaN for non-buyers
    out["tenure_days"] = out["tenure_days"].fillna(out["first_visit_days"]).astype("int64")
    out["avg_order_value"] = out["avg_order_value"].fillna(0.0)
    if basis == "visits":
        last_seen = pd.concat([vis["last_visit"], out["last_purchase"]], axis=1).max(axis=1)
        out["recency_days"] = _days(as_of, last_seen).astype("int64")
        out["frequency"] = np.maximum(out["visits"], n_orders).astype("int64")
    else:
        window = (as_of - first_date).days
        out["recency_days"] = out["recency_days"].fillna(window).astype("int64")
        out["frequency"] = n_orders
    out["first_visit"] = vis["first_visit"]
    out["last_visit"] = vis["last_visit"]
    return out


def map_for_basis(segment_map: str, basis: str) -> str:
    """The default Korean map reads its visit rules on the visits basis (ko_crm_visits)."""
    return "ko_crm_visits" if basis == "visits" and segment_map == "ko_crm10" else segment_map
