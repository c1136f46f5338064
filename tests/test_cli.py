import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from segwork.cli import build_parser, main

HEAD = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"


def write_uci_csv(path: Path, n_customers: int = 40) -> Path:
    lines = []
    for c in range(n_customers):
        for o in range(1 + c % 5):
            day = 1 + (c * 7 + o * 3) % 27
            lines.append(
                f"{c}{o},P{o},Mug,{1 + o},2024-0{1 + o % 3}-{day:02d} 10:00,{2.5 + c},{1000 + c},UK"
            )
    path.write_text(HEAD + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "segwork", *args], capture_output=True, text=True)


def test_run_writes_segments_and_summary(tmp_path):
    data = write_uci_csv(tmp_path / "orders.csv")
    out = tmp_path / "out"
    assert main(["run", "--data", str(data), "--out", str(out), "--lang", "en", "--quiet"]) == 0
    seg = pd.read_csv(out / "segments.csv", dtype={"customer_id": str})
    assert list(seg.columns[:8]) == [
        "customer_id", "recency_days", "frequency", "monetary", "r_score", "f_score", "m_score", "rfm_segment",
    ]  # fmt: skip
    assert len(seg) == 40 and seg["customer_id"].is_unique
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    led = summary["ledger"]
    assert (
        led["rows_in"] == 120
        and led["rows_kept"] + sum(d["rows"] for d in led["dropped"].values()) == 120
    )
    assert summary["customers"] == 40
    assert sum(summary["segments"]["rfm"].values()) == 40
    last = pd.read_csv(data, parse_dates=["InvoiceDate"])["InvoiceDate"].max()
    assert summary["as_of"] == (last.normalize() + pd.Timedelta(days=1)).date().isoformat()
    assert {"read", "ledger_rfm", "rfm_segments", "total"} <= set(summary["timings"])
    assert summary["params"]["lang"] == "en"


def test_default_out_is_reports_year_month(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = write_uci_csv(tmp_path / "orders.csv")
    assert main(["run", "--data", str(data), "--as-of", "2024-04-01", "--quiet"]) == 0
    assert (tmp_path / "reports" / "2024-04" / "segments.csv").is_file()


@pytest.mark.parametrize(
    ("content", "args", "needle"),
    [
        (b"", [], "empty"),
        (HEAD.encode(), [], "no data rows"),
        (bytes(range(256)) * 40, [], "orders.csv"),
        (b"Invoice,Qty,Date,Price\n1,2,2024-01-01,3\n", [], "required column"),
        (HEAD.encode() + b"1,P,Mug,1,not a date,2.0,7,UK\n", [], "not dates"),
        (HEAD.encode() + b"1,P,Mug,lots,2024-01-01 10:00,2.0,7,UK\n", [], "Quantity"),
        (
            HEAD.encode() + b"1,P,Mug,1,2024-01-01 10:00,2.0,,UK\n",
            [],
            "no rows left after cleaning",
        ),
        (
            HEAD.encode() + b"1,P,Mug,1,2024-01-01 10:00,2.0,7,UK\n",
            ["--as-of", "2023-01-01"],
            "on or before the first",
        ),
        (
            HEAD.encode() + b"1,P,Mug,1,2024-01-01 10:00,2.0,7,UK\n",
            ["--as-of", "01/02/2024"],
            "YYYY-MM-DD",
        ),
        (
            HEAD.encode() + b"1,P,Mug,1,2024-01-01 10:00,2.0,7,UK\n",
            ["--k-range", "8-3"],
            "--k-range: 8-3",
        ),
    ],
)
def test_bad_input_exit_2_one_line(tmp_path, content, args, needle):
    data = tmp_path / "orders.csv"
    data.write_bytes(content)
    res = run_cli("run", "--data", str(data), "--out", str(tmp_path / "o"), "--quiet", *args)
    assert res.returncode == 2, res.stderr
    err = res.stderr.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith("segwork: ")
    assert needle.lower() in err.lower(), err
    assert not (tmp_path / "o").exists()


def test_failed_run_keeps_the_earlier_report(tmp_path):
    good = write_uci_csv(tmp_path / "orders.csv")
    out = tmp_path / "out"
    assert main(["run", "--data", str(good), "--out", str(out), "--quiet"]) == 0
    before = (out / "segments.csv").read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text(HEAD, encoding="utf-8")
    assert main(["run", "--data", str(bad), "--out", str(out), "--quiet"]) == 2
    assert (out / "segments.csv").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_help_lists_every_option_with_default():
    sub = build_parser()._subparsers._group_actions[0].choices["run"]
    text = sub.format_help()
    for opt in (
        "--data",
        "--config",
        "--as-of",
        "--out",
        "--wait",
        "--lang",
        "--seed",
        "--synth-customers",
    ):
        assert opt in text
    flat = " ".join(text.split())
    for default in (
        "default: ko",
        "default: 0",
        "default: 5000",
        "default: synthetic shop",
        "default: day after the latest kept transaction",
        "default: none",
        "default: 600.0",
    ):
        assert default in flat, default
    assert "default: None" not in flat and "default: False" not in flat  # no empty defaults
    res = run_cli("--help")
    assert res.returncode == 0 and "run" in res.stdout


def test_excel_run_keeps_text_ids_and_states_sheets_and_date_format(tmp_path):
    """End to end: text IDs with leading zeros stay three customers; summary.json says what was read."""
    from datetime import datetime

    from openpyxl import Workbook, load_workbook

    header = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price"]
    header += ["Customer ID", "Country"]
    wb = Workbook()
    wb.remove(wb.active)
    for name, day in (("Year 2009-2010", 1), ("Year 2010-2011", 2)):
        ws = wb.create_sheet(name)
        ws.append(header)
        for i, cid in enumerate(("000123", "0123", "123")):
            ws.append([f"{day}{i}", "85123A", "MUG", 1, datetime(2010, 12, day, 9), 2.5, cid, "KR"])
    wb.create_sheet("Notes").append(["exported by", "admin console"])
    data = tmp_path / "online_retail_II.xlsx"
    wb.save(data)
    out = tmp_path / "out"
    assert main(["run", "--data", str(data), "--out", str(out), "--no-report", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["source"]["sheets"] == ["Year 2009-2010", "Year 2010-2011"]
    assert summary["source"]["sheets_skipped"] == ["Notes"]
    assert summary["source"]["date_format"] == "Excel date cells"
    assert "sheets_skipped" in [w["code"] for w in summary["warnings"]]
    seg = pd.read_csv(out / "segments.csv", dtype={"customer_id": str}, encoding="utf-8-sig")
    assert sorted(seg["customer_id"]) == ["000123", "0123", "123"]
    assert set(seg["frequency"]) == {2}
    ws = load_workbook(out / "segments.xlsx").active
    ids = [ws.cell(row=r, column=1) for r in range(2, 5)]
    assert sorted(c.value for c in ids) == ["000123", "0123", "123"]
    assert {c.data_type for c in ids} == {"s"}


def test_run_with_events_keeps_non_buyers_and_states_the_basis(tmp_path):
    data = write_uci_csv(tmp_path / "tx.csv", n_customers=30)
    ev = tmp_path / "ev.csv"
    rows = [f"{1000 + c},2024-03-0{1 + c % 5} 10:00,page_view" for c in range(30)]
    rows += [f"9{c:03d},2024-03-2{c % 9} 11:00,add_to_cart" for c in range(12)]  # never buy
    rows += ["1000,2099-01-01 10:00,visit", ",2024-03-01 10:00,visit"]  # future, no customer
    ev.write_text("customer_id,timestamp,event_type\n" + "\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ["run", "--data", str(data), "--events", str(ev), "--out", str(out)]
    assert main([*args, "--no-report", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["rfm"]["basis"] == "visits" and summary["rfm"]["segment_map"] == "ko_crm_visits"
    e = summary["events"]
    assert e["rows_in"] == 44 and e["rows_kept"] == 42 and e["non_buyers"] == 12
    assert e["dropped"] == {"missing_customer": 1, "in_future": 1}
    seg = pd.read_csv(out / "segments.csv", dtype={"customer_id": str}, encoding="utf-8-sig")
    assert (
        len(seg) == 42 and (seg.loc[seg["customer_id"].str.startswith("9"), "monetary"] == 0).all()
    )


def test_events_flag_errors_exit_2_one_line(tmp_path, capsys):
    data = write_uci_csv(tmp_path / "tx.csv", n_customers=5)
    base = ["run", "--data", str(data), "--no-report", "--quiet", "--out", str(tmp_path / "o")]
    assert main([*base, "--events", str(tmp_path / "nope.csv")]) == 2
    assert main([*base, "--events", "synthetic"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "nope.csv: file not found" in err[0]
    assert "--events synthetic: only the synthetic shop" in err[1]


def test_out_of_memory_is_one_line_exit_3_and_leaves_nothing(tmp_path, monkeypatch):
    data = tmp_path / "orders.csv"
    data.write_bytes(HEAD.encode() + b"1,P,Mug,1,2024-01-01 10:00,2.0,7,UK\n")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # where the run's DuckDB scratch folder goes
    monkeypatch.setenv("SEGWORK_MEMORY_LIMIT", "1MB")  # too little to read even one line
    res = run_cli("run", "--data", str(data), "--out", str(tmp_path / "o"), "--quiet")
    assert res.returncode == 3, res.stderr
    err = res.stderr.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith("segwork: out of memory in DuckDB") and "SEGWORK_MEMORY_LIMIT" in err
    assert not (tmp_path / "o").exists()
    assert list(scratch.iterdir()) == []  # the scratch folder was removed
