import itertools

import numpy as np
import pandas as pd
import pytest

from segwork.errors import SegworkInputError
from segwork.maps import SHIPPED, STAGES, load_map, parse_map


@pytest.mark.parametrize("name", SHIPPED)
def test_every_cell_maps_to_exactly_one_group(name):
    m = load_map(name)
    # parse_map already refuses gaps and overlaps; check the result independently as well
    for r, f, mm in itertools.product(range(1, m.bins + 1), repeat=3):
        hits = [
            s.id
            for s in m.segments
            if any(
                all(
                    lo <= {"r": r, "f": f, "m": mm, "fm": f + mm}[a] <= hi
                    for a, (lo, hi) in b.items()
                )
                for b in s.boxes
            )
        ]
        assert len(hits) == 1, (r, f, mm, hits)
        assert m.segments[m.lookup[r - 1, f - 1, mm - 1]].id == hits[0]


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
