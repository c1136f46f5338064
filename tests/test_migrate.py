"""migrate.py: transition matrix with new and departed customers, same edges, projection."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segwork import migrate
from segwork.cli import main
from segwork.maps import load_map
from segwork.migrate import DEPARTED, NEW
from segwork.outputs import read_segments

HEAD = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"


def _orders(tmp_path: Path) -> Path:
    """30 customers buying in February, one of them again in March; N1 only buys after the
    earlier date (new); D1's February purchase is cancelled in March (departed)."""
    lines = []
    for c in range(30):
        day = 1 + c % 27
        qty = 1 + c % 7
        lines.append(
            f"{100 + c},P{c % 5},Mug,{qty},2024-02-{day:02d} 10:00,{2.5 + c},K{1000 + c},UK"
        )
    lines += [
        "200,P1,Mug,3,2024-03-15 10:00,10.0,K1000,UK",  # K1000 comes back after the earlier date
        "201,P2,Lamp,5,2024-03-10 10:00,10.0,N1,UK",  # new: 50.00 between the dates
        "202,P9,Vase,2,2024-02-10 10:00,10.0,D1,UK",  # D1: 20.00 before the earlier date ...
        "C203,P9,Vase,-2,2024-03-05 10:00,10.0,D1,UK",  # ... cancelled after it
    ]
    data = tmp_path / "orders.csv"
    data.write_text(HEAD + "\n".join(lines) + "\n", encoding="utf-8")
    return data


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("compared")
    data = _orders(tmp_path)
    out = tmp_path / "out"
    args = ["run", "--data", str(data), "--out", str(out), "--no-report", "--quiet"]
    args += ["--as-of", "2024-04-01", "--compare-to", "2024-03-01", "--lang", "en"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return summary, read_segments(out / "segments.csv")


def test_transition_counts_hand_built_union():
    before = pd.Series({"a": "x", "b": "x", "c": "y", "d": "y"})
    after = pd.Series({"a": "x", "b": "y", "c": "y", "e": "x"})
    counts = migrate.transition_counts(before, after, ["x", "y"])
    assert counts.loc["x", "x"] == 1 and counts.loc["x", "y"] == 1
    assert counts.loc["y", "y"] == 1 and counts.loc["y", DEPARTED] == 1  # d left
    assert counts.loc[NEW, "x"] == 1  # e is new
    assert counts.loc[NEW, DEPARTED] == 0
    assert int(counts.to_numpy().sum()) == 5  # union of both customer sets
    rev = migrate.flow_sums(before, after, pd.Series({"b": 7.5, "e": 2.0}), ["x", "y"])
    assert rev.loc["x", "y"] == 7.5 and rev.loc[NEW, "x"] == 2.0 and rev.to_numpy().sum() == 9.5


def test_run_compare_to_counts_new_and_departed(compared):
    summary, seg = compared
    m = summary["migration"]
    assert (m["earlier"], m["later"], m["period_days"]) == ("2024-03-01", "2024-04-01", 31)
    flows = {(f["source"], f["target"]): f for f in m["flows"]}
    # 30 February buyers + N1 + D1 = 32 customers at either date
    assert m["customers_union"] == sum(f["customers"] for f in m["flows"]) == 32
    new = [f for (s, _), f in flows.items() if s == NEW]
    gone = [f for (_, t), f in flows.items() if t == DEPARTED]
    assert [f["customers"] for f in new] == [1] and new[0]["revenue"] == 50.0
    assert [f["customers"] for f in gone] == [1]
    assert gone[0]["revenue_prior"] == 20.0  # D1's purchase counted as kept at the earlier date
    assert gone[0]["revenue"] == 0.0
    assert "D1" not in set(seg["customer_id"])
    n1 = seg.set_index("customer_id").loc["N1"]
    assert pd.isna(n1["previous_segment_id"]) and pd.isna(n1["previous_segment"])
    assert m["edges_from"] == "later"
    assert m["edges"] == {c: e["edges"] for c, e in summary["rfm"]["edges"].items()}


def test_earlier_snapshot_scored_with_the_later_edges(compared):
    """Previous segments equal a hand scoring of the earlier RFM values with the later edges."""
    summary, seg = compared
    smap = load_map("ko_crm10")
    edges = summary["rfm"]["edges"]
    earlier = date(2024, 3, 1)
    rows = {}
    for c in range(30):  # each K customer's February order, as of 2024-03-01
        day, qty, price = 1 + c % 27, 1 + c % 7, 2.5 + c
        rows[f"K{1000 + c}"] = ((earlier - date(2024, 2, day)).days, 1, round(qty * price, 2))
    scores = {}
    for cid, (rec, freq, mon) in rows.items():
        r = 5 - int(np.searchsorted(edges["recency_days"]["edges"], rec, side="left"))
        f = 1 + int(np.searchsorted(edges["frequency"]["edges"], freq, side="left"))
        m = 1 + int(np.searchsorted(edges["monetary"]["edges"], mon, side="left"))
        scores[cid] = (min(5, max(1, r)), min(5, f), min(5, m))
    frame = pd.DataFrame.from_dict(
        scores, orient="index", columns=["r_score", "f_score", "m_score"]
    )
    expected = pd.Series(smap.assign(frame), index=frame.index)
    got = seg.set_index("customer_id")["previous_segment_id"].reindex(expected.index)
    assert got.tolist() == expected.tolist()
    # K1000 bought again: its later segment differs from its previous one, so it is a mover
    k = seg.set_index("customer_id").loc["K1000"]
    assert k["rfm_segment_id"] != k["previous_segment_id"]


def test_projection_and_share_error():
    counts = pd.DataFrame(
        [[8, 2, 0], [0, 10, 0], [5, 0, 0]],
        index=["x", "y", NEW],
        columns=["x", "y", DEPARTED],
    )
    current = pd.Series(["x"] * 13 + ["y"] * 12)
    ahead = migrate.project(current, counts)
    # x: 13 * 0.8 + 5 new = 15.4; y: 13 * 0.2 + 12 = 14.6
    assert ahead.round(6).tolist() == [15.4, 14.6]
    assert migrate.share_error(pd.Series({"x": 1.0, "y": 1.0}), pd.Series({"x": 3, "y": 1})) == 0.5


def test_projection_with_p_purchase_weights_buyer_and_idle_rows():
    before = pd.Series({"a": "x", "b": "x", "c": "x", "d": "x"})
    after = pd.Series({"a": "x", "b": "x", "c": "y", "d": "y"})
    bought = pd.Series({"a": True, "b": True, "c": False, "d": False})
    counts = migrate.transition_counts(before, after, ["x", "y"])
    current = pd.Series({"p": "x", "q": "x"})
    p = pd.Series({"p": 1.0, "q": 0.0})
    ahead = migrate.project(current, counts, p, bought, before, after)
    # p (sure buyer) stays in x like a and b; q (never buys) moves to y like c and d
    assert ahead.tolist() == [1.0, 1.0]


def test_compare_to_after_as_of_is_one_line_exit_2(tmp_path, capsys):
    data = _orders(tmp_path)
    args = ["run", "--data", str(data), "--out", str(tmp_path / "o"), "--no-report", "--quiet"]
    assert main([*args, "--as-of", "2024-04-01", "--compare-to", "2024-05-01"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the data warnings
    assert last.startswith("segwork: --compare-to 2024-05-01: must be before")
    assert not (tmp_path / "o").exists()
    assert main([*args, "--compare-to", "March"]) == 2
    assert "--compare-to: 'March'" in capsys.readouterr().err


def test_earlier_month_report_is_found_automatically(tmp_path, monkeypatch):
    from segwork.config import RunParams
    from segwork.run import run

    data = _orders(tmp_path)
    monkeypatch.chdir(tmp_path)
    fast = RunParams(data_path=str(data), clusters=False, report=False)  # no clusters: quicker
    run(dataclasses.replace(fast, as_of="2024-03-01"))
    camp = tmp_path / "camp.csv"
    rows = [f"K{1000 + c},{'treated' if c % 2 else 'control'},{c % 3 == 0:d},5" for c in range(30)]
    camp.write_text("customer_id,group,converted,revenue\n" + "\n".join(rows) + "\n", "utf-8")
    assert main(["feedback", "--campaign", str(camp), "--quiet"]) == 0  # into the March report
    run(dataclasses.replace(fast, as_of="2024-04-01"))
    march = json.loads((tmp_path / "reports" / "2024-03" / "summary.json").read_text("utf-8"))
    april = json.loads((tmp_path / "reports" / "2024-04" / "summary.json").read_text("utf-8"))
    assert march["migration"] is None
    assert april["migration"]["earlier"] == "2024-03-01"
    assert april["migration"]["previous_report"].endswith("2024-03")
    assert april["feedback"]["run"].endswith("2024-03")  # the next run carries the campaign
    assert april["feedback"]["overall"]["n_treated"] == 15
    run(dataclasses.replace(fast, as_of="2024-04-01", auto_compare=False))
    again = json.loads((tmp_path / "reports" / "2024-04" / "summary.json").read_text("utf-8"))
    assert again["migration"] is None


@pytest.mark.uci
def test_uci_november_to_december_migration_and_backtest(uci_parquet):
    """The issue's evidence: December scored against 1 November, January's mix back-tested."""
    from segwork.config import RunParams
    from segwork.pipeline import compute

    params = RunParams(
        data_path=str(uci_parquet),
        as_of="2011-12-10",
        compare_to="2011-11-01",
        clusters=False,
        report=False,
        auto_compare=False,
    )
    res = compute(params)
    m = res.summary.migration
    assert m is not None and m.edges_from == "later"
    flows = {(f.source, f.target): f.customers for f in m.flows}
    departed = sum(v for (_, t), v in flows.items() if t == DEPARTED)
    new = sum(v for (s, _), v in flows.items() if s == NEW)
    assert m.customers_union == len(res.prep.table) + departed == 4325
    assert new == 362  # first kept purchase between 1 November and 10 December
    bt = m.projection.backtest
    assert bt is not None and bt.checked_at == date(2011, 12, 10)
    assert bt.error < bt.naive_error  # the transitions beat "the mix stays as it is"
    assert abs(sum(m.projection.customers.values()) - (len(res.prep.table) + new - departed)) < 1


def test_snapshot_leaves_none_of_its_relations_behind(tmp_path):
    from segwork.pipeline import prepare
    from segwork.schema import Config

    prep = prepare(_orders(tmp_path), Config(), date(2024, 4, 1))
    con = prep.con

    def relations() -> set[str]:
        rows = con.execute(
            "SELECT table_name FROM duckdb_tables() UNION ALL SELECT view_name FROM duckdb_views()"
        ).fetchall()
        return {r[0] for r in rows}

    before = relations()
    table, _ = migrate.snapshot_table(prep.store, Config(), date(2024, 3, 1))
    assert len(table) > 0
    assert relations() == before  # its per-order table, matched and repeated lines included
    prep.store.close()
