import csv
import io
import json
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd

from segwork.cli import main
from segwork.outputs import escape_formulas, write_csv, write_xlsx

HEAD = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
#: IDs a spreadsheet would evaluate, one that loses its zeros as a number, and plain ones.
RISKY_IDS = ['=HYPERLINK("http://x")', "+821012345678", "-5", "@SUM(A1)", "000123"]


def orders_csv(path: Path) -> Path:
    """A UCI-layout export whose customer IDs include formulas and a zero-padded number."""
    ids = RISKY_IDS + [str(2000 + c) for c in range(25)]
    lines = []
    for c, cid in enumerate(ids):
        quoted = '"' + cid.replace('"', '""') + '"'
        for o in range(1 + c % 4):
            day = 1 + (c * 7 + o * 3) % 27
            lines.append(
                f"{c}{o},P{o},Mug,{1 + o},2024-0{1 + o % 3}-{day:02d} 10:00,{2.5 + c},{quoted},UK"
            )
    path.write_text(HEAD + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_escape_formulas_touches_text_cells_only():
    df = pd.DataFrame(
        {
            "customer_id": ["=1+1", "+1", "-1", "@a", "\tx", "\rx", "a=1", "000123"],
            "monetary": [-5.5, 1.0, -2.0, 0.0, 3.0, 4.0, 5.0, 6.0],
            "hdbscan_cluster": np.array([-1, 0, 1, -1, 2, 0, 1, 1]),
        }
    )
    out = escape_formulas(df)
    assert out["customer_id"].tolist() == [
        "'=1+1", "'+1", "'-1", "'@a", "'\tx", "'\rx", "a=1", "000123",
    ]  # fmt: skip
    pd.testing.assert_series_equal(out["monetary"], df["monetary"])
    pd.testing.assert_series_equal(out["hdbscan_cluster"], df["hdbscan_cluster"])
    assert df["customer_id"].iloc[0] == "=1+1"  # the input frame is not changed


def test_csv_has_bom_and_escaped_text_but_plain_negative_numbers(tmp_path):
    df = pd.DataFrame({"customer_id": ["-7", "고객1"], "monetary": [-12.5, 3.0]})
    write_csv(df, tmp_path / "s.csv")
    raw = (tmp_path / "s.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows == [["customer_id", "monetary"], ["'-7", "-12.5"], ["고객1", "3"]]


def test_xlsx_keeps_ids_as_text_cells_and_numbers_as_numbers(tmp_path):
    df = pd.DataFrame(
        {
            "customer_id": ["000123", "=1+1", "17850"],
            "monetary": [-1.25, 2.0, np.nan],
            "hdbscan_cluster": [-1, 0, 1],
        }
    )
    assert write_xlsx(df, tmp_path / "s.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "s.xlsx").active
    rows = [[(c.value, c.data_type) for c in r] for r in ws.iter_rows(min_row=2)]
    assert rows[0] == [("000123", "s"), (-1.25, "n"), (-1, "n")]
    assert rows[1][0] == ("=1+1", "s")  # shown as text, never a formula
    assert rows[2][0] == ("17850", "s") and rows[2][1][0] is None


def test_run_writes_safe_segments_csv_and_xlsx(tmp_path):
    data = orders_csv(tmp_path / "orders.csv")
    out = tmp_path / "out"
    assert main(["run", "--data", str(data), "--out", str(out), "--no-report", "--quiet"]) == 0
    raw = (out / "segments.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Korean Excel reads the labels as UTF-8
    seg = pd.read_csv(out / "segments.csv", dtype={"customer_id": str}, encoding="utf-8-sig")
    ids = set(seg["customer_id"])
    assert {'\'=HYPERLINK("http://x")', "'+821012345678", "'-5", "'@SUM(A1)", "000123"} <= ids
    assert not any(i.startswith(("=", "+", "-", "@")) for i in ids)
    assert seg["monetary"].dtype == float and seg["hdbscan_cluster"].min() >= -1
    ws = openpyxl.load_workbook(out / "segments.xlsx").active
    header = [c.value for c in ws[1]]
    col = header.index("customer_id")
    cells = {r[col].value: r[col].data_type for r in ws.iter_rows(min_row=2)}
    assert cells["000123"] == "s" and cells['=HYPERLINK("http://x")'] == "s"
    assert len(cells) == len(seg) == 30
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert isinstance(summary["warnings"], list)
    # the predictions sit after the RFM columns and before the clusters
    cols = list(seg.columns)
    i = cols.index("rfm_segment_id")
    assert cols[i + 1 : i + 4] == ["p_purchase", "expected_orders", "expected_revenue"]
    assert cols[i + 4] == "kmeans_cluster"
    assert seg["p_purchase"].between(0, 1).all() and (seg["expected_revenue"] >= 0).all()
    assert summary["prediction"]["customers"] == 30


def test_no_predict_leaves_the_columns_and_block_out(tmp_path):
    data = orders_csv(tmp_path / "orders.csv")
    out = tmp_path / "out"
    args = ["run", "--data", str(data), "--out", str(out), "--no-report", "--quiet"]
    assert main([*args, "--no-predict"]) == 0
    seg = pd.read_csv(out / "segments.csv", encoding="utf-8-sig")
    assert "p_purchase" not in seg.columns
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["prediction"] is None and "predict" not in summary["timings"]


def test_warnings_are_in_summary_and_printed_once(tmp_path, capsys):
    data = orders_csv(tmp_path / "orders.csv")
    out = tmp_path / "out"
    args = ["run", "--data", str(data), "--out", str(out), "--as-of", "2024-09-01"]
    assert main([*args, "--no-report", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    # 30 customers over three months: too little history to back-test a 90-day prediction
    assert [w["code"] for w in summary["warnings"]] == ["stale_data", "predict_short_history"]
    assert "days after the latest kept transaction" in summary["warnings"][0]["message"]
    err = capsys.readouterr().err
    assert err.count("[stale_data]") == 1 and err.count("[predict_short_history]") == 1


def test_segment_lists_hold_exactly_each_segments_customers_escaped(tmp_path):
    from segwork.outputs import write_segment_lists

    frame = pd.DataFrame(
        {
            "customer_id": ["007", "=1+1", "42"],
            "monetary": [1.0, 2.0, 3.0],
            "rfm_segment": ["VIP", "VIP", "신규 고객"],
            "rfm_segment_id": ["vip", "vip", "new"],
        }
    )
    assert write_segment_lists(frame, tmp_path) == {"vip": 2, "new": 1}
    vip = pd.read_csv(tmp_path / "lists" / "vip.csv", dtype=str, encoding="utf-8-sig")
    assert list(vip["customer_id"]) == ["007", "'=1+1"]  # zeros kept, formula defused
    assert (tmp_path / "lists" / "vip.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    new = pd.read_csv(tmp_path / "lists" / "new.csv", dtype=str, encoding="utf-8-sig")
    assert list(new["rfm_segment"]) == ["신규 고객"]


def test_segments_xlsx_is_skipped_above_its_size_and_the_csv_keeps_everyone(tmp_path, monkeypatch):
    from segwork import outputs

    monkeypatch.setattr(outputs, "SEGMENTS_XLSX_MAX", 2)
    df = pd.DataFrame({"customer_id": ["001", "002", "003"], "rfm_segment_id": ["vip"] * 3})
    assert outputs.write_segments(df, tmp_path) is False
    assert not (tmp_path / "segments.xlsx").exists()
    assert len(outputs.read_segments(tmp_path / "segments.csv")) == 3
    assert outputs.write_segments(df.head(2), tmp_path) is True
    assert (tmp_path / "segments.xlsx").is_file()


def test_csv_quotes_only_when_a_cell_needs_it_and_reads_back_the_same(tmp_path):
    plain = pd.DataFrame({"customer_id": ["K1", "000123"], "monetary": [1.5, 2.0]})
    write_csv(plain, tmp_path / "a.csv")
    assert (tmp_path / "a.csv").read_text(encoding="utf-8-sig").splitlines()[1] == "K1,1.5"
    odd = pd.DataFrame({"customer_id": ["a,b", 'say "hi"', "x\ny"], "monetary": [1.0, 2.0, 3.0]})
    write_csv(odd, tmp_path / "b.csv")
    back = pd.read_csv(tmp_path / "b.csv", encoding="utf-8-sig", dtype={"customer_id": str})
    assert back["customer_id"].tolist() == odd["customer_id"].tolist()
    assert back["monetary"].tolist() == [1.0, 2.0, 3.0]
