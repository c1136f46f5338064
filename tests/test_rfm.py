import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from segwork import clean, rfm
from segwork.errors import SegworkInputError
from segwork.schema import CleanRules
from tests.test_clean import tx_con


def table_from(rows, as_of):
    con = tx_con(rows)
    clean.create_classified_view(con, CleanRules(), None)
    clean.aggregate_by_customer(con)
    return rfm.rfm_table(con, as_of)


def test_rfm_table_known_answer():
    rows = [
        ("1", "a", "2024-01-01 09:00", 2, 5.0, "P1", "Mug", "UK"),
        ("1", "a", "2024-01-01 09:00", 1, 4.0, "P2", "Cup", "UK"),
        ("2", "a", "2024-01-11 09:00", 1, 6.0, "P1", "Mug", "FR"),
        ("3", "a", "2024-01-21 09:00", 1, 10.0, "P1", "Mug", "FR"),
        ("9", "b", "2024-01-30 18:00", 1, 1.0, "P1", "Mug", "UK"),
    ]
    t = table_from(rows, date(2024, 2, 1))
    a = t.loc["a"]
    assert a.recency_days == 11 and a.frequency == 3 and a.monetary == pytest.approx(30.0)
    assert a.tenure_days == 31 and a.avg_order_value == pytest.approx(10.0)
    assert a.mean_interpurchase_days == pytest.approx(10.0)
    assert a.country == "FR"  # country of the latest order
    b = t.loc["b"]
    assert b.recency_days == 2 and b.frequency == 1 and np.isnan(b.mean_interpurchase_days)


def test_default_as_of_is_day_after_last_kept_purchase():
    con = tx_con([("1", "a", "2024-03-05 23:00", 1, 1.0, "P", "x", "UK")])
    clean.create_classified_view(con, CleanRules(), None)
    clean.aggregate_by_customer(con)
    assert rfm.default_as_of(con) == date(2024, 3, 6)


def test_equal_values_get_equal_scores_and_edges_are_reported():
    vals = pd.Series([1, 1, 1, 1, 1, 1, 2, 2, 3, 8], name="frequency")
    df = pd.DataFrame(
        {"recency_days": range(10, 0, -1), "frequency": vals, "monetary": np.arange(10.0)}
    )
    edges = rfm.fit_edges(df, 5)
    s = rfm.score(df, edges, 5)
    assert s.loc[df.frequency == 1, "f_score"].nunique() == 1
    assert s.loc[df.frequency == 2, "f_score"].nunique() == 1
    assert s["f_score"].is_monotonic_increasing
    assert s["f_score"].iloc[0] == 1 and s["f_score"].iloc[-1] == 5
    assert edges["frequency"].on_boundary[0] == 6  # six customers sit on the first edge (1.0)
    # recency is reversed: the most recent customer gets the top score
    assert s["r_score"].iloc[-1] == 5 and s["r_score"].iloc[0] == 1


def test_fixed_edges_from_config():
    df = pd.DataFrame(
        {"recency_days": [5, 40, 400], "frequency": [1, 3, 9], "monetary": [10.0, 100.0, 1000.0]}
    )
    fixed = {
        "recency_days": [30, 60, 90, 180],
        "frequency": [1, 2, 4, 8],
        "monetary": [50, 100, 500, 900],
    }
    s = rfm.score(df, rfm.fit_edges(df, 5, fixed), 5)
    assert s.r_score.tolist() == [5, 4, 1]
    assert s.f_score.tolist() == [1, 3, 5]
    assert s.m_score.tolist() == [1, 2, 5]
    with pytest.raises(SegworkInputError, match="needs 4 increasing edges"):
        rfm.fit_edges(df, 5, {"frequency": [3, 1]})


def _random_rfm(n=500, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "recency_days": rng.integers(1, 400, n),
            "frequency": rng.geometric(0.3, n),
            "monetary": rng.lognormal(5, 1, n),
        },
        index=[f"c{i}" for i in range(n)],
    )


def test_segmenter_follows_sklearn_conventions():
    X = _random_rfm()
    seg = rfm.RFMSegmenter()
    assert seg.get_params() == {
        "segment_map": "ko_crm10",
        "bins": 5,
        "fixed_edges": None,
        "label_lang": None,
    }
    seg2 = clone(seg).set_params(segment_map="classic11")
    assert seg2.fit(X) is seg2
    assert len(seg2.labels_) == len(X)
    assert set(seg2.labels_) <= {s.id for s in seg2.map_.segments}
    assert list(seg2.predict(X)) == list(seg2.labels_)


def test_predict_uses_fitted_edges():
    X = _random_rfm()
    seg = rfm.RFMSegmenter().fit(X)
    best = pd.DataFrame({"recency_days": [1], "frequency": [100], "monetary": [1e6]})
    worst = pd.DataFrame({"recency_days": [999], "frequency": [1], "monetary": [0.0]})
    assert seg.predict(best)[0] == "vip"
    assert seg.predict(worst)[0] == "churned"


def test_segmenter_rejects_bins_the_map_does_not_cover():
    with pytest.raises(SegworkInputError, match="defined for 5 bins"):
        rfm.RFMSegmenter(bins=4).fit(_random_rfm())


def test_label_lang_gives_display_names_for_the_same_cells():
    X = _random_rfm()
    ids = rfm.RFMSegmenter().fit(X).labels_
    ko = rfm.RFMSegmenter(label_lang="ko").fit(X).labels_
    names = rfm.load_map("ko_crm10").labels("ko")
    assert [names[i] for i in ids] == list(ko)
    assert "VIP" in set(ko) or "신규 고객" in set(ko)


def test_equal_cents_get_equal_scores_whatever_the_float_path():
    """1.1 + 202.45 is 203.54999999999998 in floating point; 203.55 on one line is not."""
    rows = [
        ("1", "a", "2024-01-05", 1, 1.1, "P1", "Mug", "UK"),
        ("2", "a", "2024-01-06", 1, 202.45, "P2", "Cup", "UK"),
        ("3", "b", "2024-01-05", 1, 203.55, "P1", "Mug", "UK"),
        ("4", "c", "2024-01-05", 1, 10.0, "P1", "Mug", "UK"),
        ("5", "d", "2024-01-05", 1, 300.0, "P1", "Mug", "UK"),
        ("6", "e", "2024-01-05", 1, 400.0, "P1", "Mug", "UK"),
        ("7", "f", "2024-01-05", 1, 500.0, "P1", "Mug", "UK"),
    ]
    t = table_from(rows, date(2024, 2, 1))
    assert t.loc["a", "monetary"] == t.loc["b", "monetary"] == 203.55
    seg = rfm.RFMSegmenter().fit(t)
    # six customers: the first quintile edge sits exactly on the second value (203.55)
    assert seg.edges_["monetary"].edges[0] == 203.55
    assert seg.scores_.loc["a", "m_score"] == seg.scores_.loc["b", "m_score"] == 1
    assert seg.edges_["monetary"].on_boundary[0] == 2
    assert "203.5499" not in json.dumps(rfm.edges_report(seg.edges_))


def test_reported_edges_are_clean_numbers():
    df = pd.DataFrame(
        {
            "recency_days": [1, 2, 3, 4, 5, 6, 7],
            "frequency": [1, 1, 2, 2, 3, 3, 4],
            "monetary": [0.1, 0.2, 0.30000000000000004, 0.7, 1.1, 2.2, 3.3],
        }
    )
    edges = rfm.fit_edges(df, 5)
    for e in edges.values():
        assert all(x == round(x, 2) for x in e.edges)
    assert json.dumps(edges["monetary"].edges) == "[0.22, 0.46, 0.94, 1.98]"
