"""run.py: what a published run writes about customers under --pseudonymise."""

from __future__ import annotations

import json

from segwork.artifacts import pseudonym
from segwork.cli import main

HEAD = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"


def test_warning_examples_are_pseudonymised_in_report_files(tmp_path, monkeypatch, capsys):
    lines = [f"{c}1,P1,Mug,2,2024-01-0{1 + c % 9} 10:00,3.0,K{1000 + c}Z,UK" for c in range(30)]
    lines += [  # K9999Z cancels most of what it bought: a cancel-heavy customer
        "90,P2,Lamp,10,2024-02-01 10:00,20.0,K9999Z,UK",
        "91,P3,Cup,1,2024-02-02 10:00,5.0,K9999Z,UK",
        "C92,P2,Lamp,-10,2024-02-03 10:00,20.0,K9999Z,UK",
    ]
    data = tmp_path / "orders.csv"
    data.write_text(HEAD + "\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("SEGWORK_PSEUDONYM_KEY", "k")
    out = tmp_path / "out"
    args = ["run", "--data", str(data), "--out", str(out), "--no-report", "--pseudonymise"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "K9999Z" in err  # the analyst's terminal keeps the real ID
    raw = (out / "summary.json").read_text(encoding="utf-8")
    assert "K9999Z" not in raw
    (w,) = [w for w in json.loads(raw)["warnings"] if w["code"] == "cancel_heavy_customers"]
    assert w["params"]["examples"] == [pseudonym("K9999Z", b"k")]
    assert pseudonym("K9999Z", b"k") in w["message"]
