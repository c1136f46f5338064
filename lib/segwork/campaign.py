"""A seeded synthetic campaign with a planted uplift per segment, for testing the feedback loop.

Each customer is assigned to treated (share ``treated_share``) or control at random; a control
customer converts with the segment's base rate, a treated one with base rate + planted uplift.
Converters spend a log-normal amount around ``order_value``. The result has the columns
``segwork feedback`` reads (customer_id, group, converted, revenue, cost), so tests can check
that the intervals cover the planted uplift and that a zero-uplift segment is not called a win.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class CampaignSpec:
    """The planted truth: base response rate and uplift per segment id (missing: defaults)."""

    uplift: dict[str, float] = field(default_factory=dict)
    base_rate: dict[str, float] = field(default_factory=dict)
    default_base_rate: float = 0.05
    default_uplift: float = 0.0
    treated_share: float = 0.5
    order_value: float = 50.0
    cost_per_contact: float = 0.5
    seed: int = 0


def simulate_campaign(segments: pd.Series, spec: CampaignSpec) -> pd.DataFrame:
    """One outcome row per customer of ``segments`` (customer id -> segment id), seeded."""
    rng = np.random.default_rng(spec.seed)
    seg = segments.astype(str).to_numpy()
    n = len(seg)
    base = np.array([spec.base_rate.get(s, spec.default_base_rate) for s in seg])
    lift = np.array([spec.uplift.get(s, spec.default_uplift) for s in seg])
    treated = rng.random(n) < spec.treated_share
    p = np.clip(base + np.where(treated, lift, 0.0), 0.0, 1.0)
    converted = rng.random(n) < p
    spend = rng.lognormal(np.log(spec.order_value), 0.5, n)
    return pd.DataFrame(
        {
            "customer_id": segments.index.astype(str),
            "group": np.where(treated, "treated", "control"),
            "converted": converted.astype("int64"),
            "revenue": np.where(converted, spend.round(2), 0.0),
            "cost": np.where(treated, spec.cost_per_contact, 0.0),
        }
    )
