"""campaign.py: the synthetic campaign plants the rates it is given, reproducibly."""

from __future__ import annotations

import pandas as pd

from segwork.campaign import CampaignSpec, simulate_campaign


def test_planted_rates_and_seed():
    ids = pd.Index([f"{i:07d}" for i in range(40_000)])
    segs = pd.Series(["a", "b"] * 20_000, index=ids)
    spec = CampaignSpec(uplift={"a": 0.1}, base_rate={"a": 0.2, "b": 0.05}, seed=1)
    camp = simulate_campaign(segs, spec)
    assert camp["customer_id"].tolist()[:2] == ["0000000", "0000001"]  # IDs stay text
    rates = camp.assign(seg=segs.to_numpy()).groupby(["seg", "group"])["converted"].mean()
    assert abs(rates["a", "control"] - 0.20) < 0.015 and abs(rates["a", "treated"] - 0.30) < 0.015
    assert abs(rates["b", "treated"] - rates["b", "control"]) < 0.01  # no planted effect
    assert (camp.loc[camp["converted"] == 0, "revenue"] == 0).all()
    assert camp.equals(simulate_campaign(segs, spec))
    assert not camp.equals(simulate_campaign(segs, CampaignSpec(**{**spec.__dict__, "seed": 2})))
