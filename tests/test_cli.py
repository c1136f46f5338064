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
