"""audience.py: `segwork export` lists round-trip, keep IDs as text, escape formulas, refuse folders."""

from __future__ import annotations

import json

import openpyxl
import pandas as pd
import pytest

from segwork.cli import main
from segwork.outputs import read_segments
from segwork.publish import read_marker

HEAD = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"


@pytest.fixture(scope="module")
def run_out(tmp_path_factory):
    """A run with leading-zero IDs, a formula-looking ID and a comparison date (movers)."""
    tmp = tmp_path_factory.mktemp("audience")
    lines = []
    ids = [f"{c:05d}" for c in range(40)] + ["=1+1", "-42"]
    for i, cid in enumerate(ids):
        day = 1 + i % 27
        lines.append(
            f"{100 + i},P{i % 5},Mug,{1 + i % 7},2024-02-{day:02d} 10:00,{2.5 + i},{cid},UK"
        )
        if i % 4 == 0:
            lines.append(f"{300 + i},P1,Mug,3,2024-03-{1 + i % 20:02d} 10:00,10.0,{cid},UK")
    data = tmp / "orders.csv"
    data.write_text(HEAD + "\n".join(lines) + "\n", encoding="utf-8")
    out = tmp / "run"
    args = ["run", "--data", str(data), "--out", str(out), "--no-report", "--quiet"]
    assert main([*args, "--as-of", "2024-04-01", "--compare-to", "2024-03-01"]) == 0
    return out


def _read(path, fmt):
    if fmt == "csv":
        return read_segments(path)
    if fmt == "parquet":
        return pd.read_parquet(path)
    wb = openpyxl.load_workbook(path, read_only=True)
    rows = list(wb.worksheets[0].values)
    return pd.DataFrame(rows[1:], columns=rows[0])


@pytest.mark.parametrize("fmt", ["csv", "parquet", "xlsx"])
def test_every_list_reads_back_as_its_segment(run_out, tmp_path, fmt):
    to = tmp_path / "export"
    assert main(["export", "--run", str(run_out), "--to", str(to), "--format", fmt, "--quiet"]) == 0
    seg = read_segments(run_out / "segments.csv")
    desc = json.loads((to / "segments.json").read_text("utf-8"))
    assert read_marker(to)["kind"] == "export"
    total = 0
    for s in desc["segments"]:
        got = _read(to / s["file"], fmt)
        want = seg[seg["rfm_segment_id"] == s["id"]]
        assert got["customer_id"].tolist() == want["customer_id"].tolist()
        assert set(got["segment"]) <= {s["id"]}
        assert got["monetary"].astype(float).tolist() == want["monetary"].tolist()
        assert s["exported"] == len(want) == s["customers"]
        assert s["rule"] and s["actions"]["en"]
        total += len(got)
    assert total == len(seg)
    ids = set(pd.concat([_read(to / s["file"], fmt) for s in desc["segments"]])["customer_id"])
    assert {"00000", "00007", "=1+1", "-42"} <= ids  # zeros kept, formulas round-trip
    movers = _read(to / desc["movers"]["file"], fmt)
    changed = seg[
        seg["previous_segment_id"].notna() & (seg["previous_segment_id"] != seg["rfm_segment_id"])
    ]
    assert sorted(movers["customer_id"]) == sorted(changed["customer_id"]) and len(movers) > 0
    assert desc["movers"]["customers"] == len(movers)


def test_csv_cells_are_escaped_for_spreadsheets(run_out, tmp_path):
    to = tmp_path / "x"
    assert main(["export", "--run", str(run_out), "--to", str(to), "--quiet"]) == 0
    raw = "".join(p.read_text("utf-8-sig") for p in to.glob("*.csv"))
    assert "'=1+1" in raw and "\n=1+1" not in raw and "'-42" in raw
    assert (to / "vip.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # BOM for Excel


def test_export_refuses_folders_it_did_not_make(run_out, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me", "utf-8")
    assert main(["export", "--run", str(run_out), "--to", str(mine)]) == 2
    assert "did not write" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text("utf-8") == "keep me"
    # a run folder is segwork's but not an export: refused too
    before = sorted(p.name for p in run_out.iterdir())
    assert main(["export", "--run", str(run_out), "--to", str(run_out)]) == 2
    assert "not an earlier export" in capsys.readouterr().err
    assert sorted(p.name for p in run_out.iterdir()) == before
    # an earlier export is replaced
    to = tmp_path / "e"
    assert main(["export", "--run", str(run_out), "--to", str(to), "--quiet"]) == 0
    assert (
        main(["export", "--run", str(run_out), "--to", str(to), "--segments", "vip", "--quiet"])
        == 0
    )
    assert sorted(p.name for p in to.iterdir() if not p.name.startswith(".")) == [
        "movers.csv",
        "segments.json",
        "vip.csv",
    ]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--segments", "vip,nope"], "unknown segment id(s) nope"),
        (["--segments", ","], "(none given)"),
    ],
)
def test_bad_arguments_one_line_exit_2(run_out, tmp_path, capsys, extra, needle):
    assert main(["export", "--run", str(run_out), "--to", str(tmp_path / "z"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and needle in err
    assert not (tmp_path / "z").exists()


def test_missing_run_is_one_line(tmp_path, capsys):
    assert main(["export", "--run", str(tmp_path / "nope"), "--to", str(tmp_path / "z")]) == 2
    assert "not a folder" in capsys.readouterr().err
