import itertools

import numpy as np
import pandas as pd
import pytest

from segwork.errors import SegworkInputError
from segwork.maps import SHIPPED, STAGES, load_map, parse_map


def _probe_values(cuts):
    """Whole numbers on both sides of every cut of a feature, and a huge one."""
    return sorted({v for c in cuts for v in (c - 1, c, c + 1) if v >= 0} | {10**6})


@pytest.mark.parametrize("name", SHIPPED)
def test_every_cell_maps_to_exactly_one_group(name):
    m = load_map(name)
    # parse_map already refuses gaps and overlaps; check the result independently as well, on
    # the extended cube: scores x values either side of every visit-feature condition
    probes = [_probe_values(c) for c in m.cuts]
    rows = []
    for r, f, mm in itertools.product(range(1, m.bins + 1), repeat=3):
        for feats in itertools.product(*probes):
            vals = {
                "r": r,
                "f": f,
                "m": mm,
                "fm": f + mm,
                **dict(zip(m.features, feats, strict=True)),
            }
            hits = [
                s.id
                for s in m.segments
                if any(all(lo <= vals[a] <= hi for a, (lo, hi) in b.items()) for b in s.boxes)
            ]
            assert len(hits) == 1, (vals, hits)
            rows.append({"r_score": r, "f_score": f, "m_score": mm, **vals, "want": hits[0]})
    frame = pd.DataFrame(rows)
    assert list(m.assign(frame)) == list(frame["want"])


@pytest.mark.parametrize("name", SHIPPED)
def test_groups_carry_labels_stage_kpi_actions(name):
    m = load_map(name)
    for s in m.segments:
        assert s.ko and s.en and s.stage in STAGES
        assert s.kpi.get("ko") and s.kpi.get("en")
        assert s.actions.get("ko") and s.actions.get("en")


def test_default_map_is_the_korean_ten():
    m = load_map("ko_crm10")
    assert [s.ko for s in m.segments] == [
        "VIP", "잠재 VIP", "신규 고객", "뜸한 VIP", "신경써야 할 고객",
        "이탈 우려 고객", "지금 잡아야 할 고객", "이탈한 VIP", "이탈한 잠재 VIP", "이탈한 고객",
    ]  # fmt: skip
    assert len(load_map("classic11").segments) == 11


def test_assign_looks_up_cells():
    m = load_map("ko_crm10")
    scores = pd.DataFrame(
        {"r_score": [5, 1, 3, 2], "f_score": [5, 5, 1, 4], "m_score": [5, 5, 1, 4]}
    )
    assert list(m.assign(scores)) == ["vip", "churned_vip", "at_risk", "win_now"]


def _seg(id_, cells):
    return {"id": id_, "ko": id_, "en": id_, "stage": "retention", "cells": cells}


def test_gaps_are_named():
    raw = {"name": "u", "bins": 2, "segments": [_seg("a", [{"r": 1}])]}
    with pytest.raises(SegworkInputError) as exc:
        parse_map(raw, "user.yaml")
    msg = str(exc.value)
    assert "user.yaml" in msg and "4 cells in no group" in msg and "(r=2, f=1, m=1)" in msg


def test_overlaps_are_named():
    raw = {
        "name": "u",
        "bins": 2,
        "segments": [_seg("a", [{"r": [1, 2]}]), _seg("b", [{"r": 2, "f": 2}])],
    }
    with pytest.raises(SegworkInputError) as exc:
        parse_map(raw, "user.yaml")
    assert "cells in several groups" in str(exc.value)
    assert "(r=2, f=2, m=1) in a and b" in str(exc.value)


def test_user_map_from_file(tmp_path):
    p = tmp_path / "two.yaml"
    p.write_text(
        "name: two\nbins: 2\nsegments:\n"
        "  - {id: hot, ko: 활성, en: Active, stage: retention, cells: [{r: 2}]}\n"
        "  - {id: cold, ko: 휴면, en: Dormant, stage: acquisition, cells: [{r: 1}]}\n",
        encoding="utf-8",
    )
    m = load_map(p)
    assert m.labels("ko") == {"hot": "활성", "cold": "휴면"}
    assert np.array_equal(np.unique(m.lookup), [0, 1])


def test_a_segment_id_must_be_a_code_because_it_names_files(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(
        "name: bad\nbins: 2\nsegments:\n"
        "  - {id: ../hot, ko: 활성, en: Active, stage: retention, cells: [{r: 2}]}\n"
        "  - {id: cold, ko: 휴면, en: Dormant, stage: acquisition, cells: [{r: 1}]}\n",
        encoding="utf-8",
    )
    with pytest.raises(SegworkInputError, match=r"segment '../hot': id must be lower-case"):
        load_map(p)


def test_unknown_map_name():
    with pytest.raises(SegworkInputError, match="segment map not found"):
        load_map("nope")


def test_grid_shape():
    g = load_map("ko_crm10").grid("en")
    assert g.shape == (5, 9)
    assert g.loc[5, 10] == "VIP" and g.loc[1, 2] == "Churned"


def test_visit_map_reads_its_conditions():
    m = load_map("ko_crm_visits")
    assert m.features == ("orders", "carts_abandoned", "first_visit_days")
    people = pd.DataFrame(
        {
            "r_score": [5, 4, 4, 1, 5, 2, 5, 1],
            "f_score": [1, 3, 2, 1, 5, 1, 5, 3],
            "m_score": [1, 1, 1, 1, 3, 2, 5, 4],
            "orders": [0, 0, 0, 0, 1, 1, 9, 2],
            "carts_abandoned": [0, 2, 0, 1, 0, 0, 0, 0],
            "first_visit_days": [3, 90, 90, 200, 90, 300, 700, 700],
        }
    )
    assert list(m.assign(people)) == [
        "new", "cart_abandoners", "win_now", "churned",
        "potential_vip", "at_risk", "vip", "churned_repeat",
    ]  # fmt: skip
    stage = {s.id: s.stage for s in m.segments}
    # stages follow orders: none -> acquisition, one -> conversion, two or more -> retention
    for ids, orders in zip(m.assign(people), people["orders"], strict=True):
        want = "acquisition" if orders == 0 else "conversion" if orders == 1 else "retention"
        assert stage[ids] == want


def test_visit_conditions_need_the_features():
    m = load_map("ko_crm_visits")
    scores = pd.DataFrame({"r_score": [5], "f_score": [5], "m_score": [5]})
    with pytest.raises(SegworkInputError, match="only a run with --events"):
        m.assign(scores)


@pytest.mark.parametrize(
    ("cond", "inside", "outside"),
    [
        (0, [0], [1, 5]),
        (">=1", [1, 7, 10**6], [0]),
        (">2", [3], [2]),
        ("<3", [0, 2], [3]),
        ("<=30", [0, 30], [31]),
        ("== 4", [4], [3, 5]),
        ([1, None], [1, 99], [0]),
        ([2, 3], [2, 3], [1, 4]),
    ],
)
def test_feature_conditions(cond, inside, outside):
    raw = {
        "name": "u",
        "bins": 2,
        "segments": [_seg("a", [{"orders": cond}]), _seg("b", [])],
    }
    # "b" takes the complement of "a", so the map is a partition
    lo_hi = {
        0: [(1, None)],
        ">=1": [(0, 0)],
        ">2": [(0, 2)],
        "<3": [(3, None)],
        "<=30": [(31, None)],
        "== 4": [(0, 3), (5, None)],
    }
    key = cond if not isinstance(cond, list) else tuple(cond)
    rest = {(1, None): [(0, 0)], (2, 3): [(0, 1), (4, None)]}.get(key) or lo_hi[cond]
    raw["segments"][1] = _seg("b", [{"orders": [lo, hi]} for lo, hi in rest])
    m = parse_map(raw, "user.yaml")
    frame = pd.DataFrame(
        {
            "r_score": 1,
            "f_score": 1,
            "m_score": 1,
            "orders": inside + outside,
        }
    )
    assert list(m.assign(frame)) == ["a"] * len(inside) + ["b"] * len(outside)


@pytest.mark.parametrize("bad", ["many", -1, ">=x", True, [3, 1], "<0"])
def test_bad_feature_conditions_are_named(bad):
    raw = {"name": "u", "bins": 2, "segments": [_seg("a", [{"carts_abandoned": bad}])]}
    with pytest.raises(SegworkInputError, match="carts_abandoned needs a whole number"):
        parse_map(raw, "user.yaml")


def test_feature_gaps_name_the_interval():
    raw = {
        "name": "u",
        "bins": 2,
        "segments": [_seg("a", [{"orders": 0}]), _seg("b", [{"orders": ">=2"}])],
    }
    with pytest.raises(SegworkInputError) as exc:
        parse_map(raw, "user.yaml")
    msg = str(exc.value)
    assert "8 cells in no group" in msg and "(r=1, f=1, m=1, orders=1)" in msg


def test_visit_map_grid_lists_every_group_a_cell_can_hold():
    g = load_map("ko_crm_visits").grid("en")
    assert g.shape == (5, 9)
    assert "VIP" in g.loc[5, 10] and "New visitors" in g.loc[5, 10]
    assert "Lapsed repeat buyers" in g.loc[1, 2] and "VIP" not in g.loc[1, 2].split(" / ")
