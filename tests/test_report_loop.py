"""report/loop.py: migration tables and words, expected mix and campaign results for readers."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.figure import Figure

from segwork.campaign import CampaignSpec, simulate_campaign
from segwork.cli import main
from segwork.feedback import analyse
from segwork.outputs import read_segments
from segwork.report import loop
from segwork.summary import read_summary

HEAD = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"


@pytest.fixture(scope="module")
def run_out(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("loop")
    lines = []
    for i in range(60):  # three months of buyers; every third returns in the last month
        month = 1 + i % 3
        lines.append(
            f"{100 + i},P{i % 5},Mug,{1 + i % 7},2024-0{month}-{1 + i % 27:02d} 10:00,{2.5 + i},K{i},UK"
        )
        if i % 3 == 0:
            lines.append(f"{300 + i},P1,Mug,3,2024-03-{1 + i % 27:02d} 12:00,10.0,K{i},UK")
    data = tmp / "orders.csv"
    data.write_text(HEAD + "\n".join(lines) + "\n", encoding="utf-8")
    out = tmp / "run"
    args = ["run", "--data", str(data), "--out", str(out), "--no-report", "--quiet"]
    assert main([*args, "--as-of", "2024-04-01", "--compare-to", "2024-03-01"]) == 0
    return out


def test_matrix_totals_and_names(run_out):
    s = read_summary(run_out / "summary.json")
    en = loop.migration_matrix(s, "en")
    assert en.iloc[-1, -1] == s.migration.customers_union == 60
    assert en.iloc[:-1, -1].sum() == 60 and en.iloc[-1, :-1].sum() == 60
    assert "VIP" in en.columns and "New (absent on 2024-03-01)" in en.index
    assert en.loc["Total"].drop("Total").drop("Left the table").tolist() == list(
        s.segments.rfm.values()
    )
    ko = loop.migration_matrix(s, "ko")
    assert "신규 (2024-03-01에 없던 고객)" in ko.index
    rev = loop.revenue_matrix(s, "en")
    assert rev.iloc[-1, -1] == pytest.approx(sum(f.revenue for f in s.migration.flows), abs=1)


def test_biggest_flows_in_words(run_out):
    s = read_summary(run_out / "summary.json")
    words = loop.biggest_flows(s, "en", n=2)
    moves = sorted(
        (f for f in s.migration.flows if f.source != f.target), key=lambda f: -f.customers
    )
    assert len(words) == 2 and words[0].startswith(f"{moves[0].customers:,} ")
    assert "31 days to 2024-04-01" in words[0]
    assert all("{" not in w for w in loop.biggest_flows(s, "ko", n=3))


def test_expected_mix_and_notes(run_out):
    s = read_summary(run_out / "summary.json")
    mix = loop.expected_mix(s, "en")
    assert mix.iloc[:, 0].sum() == 60
    assert mix.iloc[:, 1].sum() == pytest.approx(100, abs=0.6)
    expected = pd.Series(s.migration.projection.customers)
    assert mix.iloc[:, 2].sum() == pytest.approx(expected.sum(), abs=len(expected))
    notes = loop.projection_notes(s, "en")
    assert "bin edges of the 2024-04-01 run" in notes[1]
    bt = s.migration.projection.backtest
    assert (bt is None) == notes[2].startswith("No back-test")


def test_figure_and_campaign_table(run_out):
    s = read_summary(run_out / "summary.json")
    fig = loop.migration_figure(s, "ko")
    assert isinstance(fig, Figure) and len(fig.axes[0].collections) >= 2  # bands drawn
    seg = read_segments(run_out / "segments.csv").set_index("customer_id")["rfm_segment_id"]
    camp = simulate_campaign(seg, CampaignSpec(seed=0))
    fb = analyse(camp.assign(treated=camp["group"] == "treated"), seg)
    table = loop.campaign_table(fb, "en", "ko_crm10")
    assert table.index[0] == "All customers" and len(table) == len(fb.segments) + 1
    assert table.loc["All customers", "Treated"] == fb.overall.n_treated
    sid = next(iter(fb.segments))
    line = loop.campaign_card_line(fb, sid, "en")
    assert line is not None and line.startswith("Last campaign: uplift")
    assert loop.campaign_card_line(None, sid, "en") is None


def test_mix_by_month(run_out):
    s = read_summary(run_out / "summary.json")
    older = s.model_copy(update={"as_of": s.migration.earlier})
    mix = loop.mix_by_month([s, older], "en")
    assert mix.index.tolist() == ["2024-03", "2024-04"]
    assert mix.sum(axis=1).round(0).tolist() == [100.0, 100.0]
