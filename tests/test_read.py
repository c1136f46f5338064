"""open_source: every format, encoding, delimiter, date style and bad input, on tiny known files."""

from __future__ import annotations

import gc
import gzip
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pandas as pd
import pytest

from segwork.errors import SegworkInputError
from segwork.read import SourceInfo, open_source
from segwork.schema import Config, config_from_dict

VIEW_SCHEMA = [
    ("row_id", "BIGINT"),
    ("invoice_id", "VARCHAR"),
    ("customer_id", "VARCHAR"),
    ("invoice_date", "TIMESTAMP"),
    ("quantity", "DOUBLE"),
    ("unit_price", "DOUBLE"),
    ("amount", "DOUBLE"),
    ("product_id", "VARCHAR"),
    ("product_name", "VARCHAR"),
    ("country", "VARCHAR"),
    ("status", "VARCHAR"),
]
UCI_HEADERS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)
#: The canonical view of the three rows in :func:`uci_frame`.
EXPECTED = [
    (
        1,
        "536365",
        "17850",
        datetime(2010, 12, 1, 8, 26),
        6.0,
        2.55,
        6 * 2.55,
        "85123A",
        "HEART HOLDER",
        "United Kingdom",
    ),
    (2, "536366", None, datetime(2010, 12, 2, 9, 0), 2.0, 3.39, 2 * 3.39, "71053", None, "France"),
    (
        3,
        "C536367",
        "13047",
        datetime(2010, 12, 13, 10, 15),
        -1.0,
        1.85,
        -1.85,
        "22633",
        "HAND WARMER",
        "United Kingdom",
    ),
]
KOREAN = {
    "invoice_id": "주문번호",
    "customer_id": "고객번호",
    "invoice_date": "주문일자",
    "quantity": "수량",
    "unit_price": "단가",
    "product_name": "상품명",
    "country": "국가",
}


# --------------------------------------------------------------------------- helpers


def uci_frame(dates: list[str] | None = None) -> pd.DataFrame:
    """Three UCI-layout rows as strings, as a CSV holds them (missing ID and description)."""
    return pd.DataFrame(
        {
            "InvoiceNo": ["536365", "536366", "C536367"],
            "StockCode": ["85123A", "71053", "22633"],
            "Description": ["HEART HOLDER", None, "HAND WARMER"],
            "Quantity": ["6", "2", "-1"],
            "InvoiceDate": dates or ["2010-12-01 08:26", "2010-12-02 09:00", "2010-12-13 10:15"],
            "UnitPrice": ["2.55", "3.39", "1.85"],
            "CustomerID": ["17850", None, "13047"],
            "Country": ["United Kingdom", "France", "United Kingdom"],
        }
    )


def typed_frame() -> pd.DataFrame:
    """The same rows typed the way pandas reads them (float IDs because of the NaN)."""
    df = uci_frame()
    df["Quantity"] = df["Quantity"].astype("int64")
    df["UnitPrice"] = df["UnitPrice"].astype("float64")
    df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"])
    df["CustomerID"] = pd.to_numeric(df["CustomerID"])  # 17850.0, NaN, 13047.0
    return df


def open_view(
    path: Path, cfg: Config | None = None, view: str = "tx"
) -> tuple[SourceInfo, list[tuple[Any, ...]], duckdb.DuckDBPyConnection]:
    """Open ``path`` on a fresh connection and return the info and all view rows (no status)."""
    con = duckdb.connect()
    info = open_source(path, cfg or Config(), con, view=view)
    rows = con.execute(f"SELECT * EXCLUDE (status) FROM {view} ORDER BY row_id").fetchall()
    return info, rows, con


def assert_rows(rows: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> None:
    """Rows equal, with money compared to 1e-9."""
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected, strict=True):
        assert got[:4] == want[:4] and got[7:] == want[7:]
        assert got[4:7] == pytest.approx(want[4:7], abs=1e-9)


def input_error(path: Path, cfg: Config | None = None) -> str:
    """The one-line SegworkInputError message opening ``path`` raises."""
    with pytest.raises(SegworkInputError) as info:
        open_source(path, cfg or Config(), duckdb.connect())
    msg = str(info.value)
    assert "\n" not in msg
    assert str(path) in msg
    return msg


def write_xlsx(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    """A workbook with one sheet per entry (first row = headers)."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def excel_rows(df: pd.DataFrame) -> list[list[Any]]:
    """Header plus typed rows of a frame, None for missing."""
    body = df.astype(object).where(df.notna(), None).values.tolist()
    return [list(df.columns), *body]


# --------------------------------------------------------------------------- parquet


def test_parquet_typed_uci_layout(tmp_path: Path) -> None:
    path = tmp_path / "retail.parquet"
    typed_frame().to_parquet(path)
    info, rows, con = open_view(path)
    assert info.format == "parquet" and info.layout == "uci_online_retail"
    assert info.encoding is None and info.sheets is None
    assert info.headers == UCI_HEADERS
    assert info.mapping["customer_id"] == "CustomerID"
    assert list(info.mapping) == [
        "invoice_id",
        "customer_id",
        "invoice_date",
        "quantity",
        "unit_price",
        "product_id",
        "product_name",
        "country",
    ]
    assert [(r[0], r[1]) for r in con.execute("DESCRIBE tx").fetchall()] == VIEW_SCHEMA
    assert_rows(rows, EXPECTED)


def test_parquet_view_is_lazy_over_read_parquet(tmp_path: Path) -> None:
    path = tmp_path / "retail.parquet"
    typed_frame().to_parquet(path)
    con = duckdb.connect()
    open_source(path, Config(), con)
    sql = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'tx'").fetchall()[0][0]
    assert "read_parquet" in sql and "file_row_number" in sql
    assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchall() == [(0,)]


def test_parquet_string_typed_matches_typed(tmp_path: Path) -> None:
    path = tmp_path / "strings.parquet"
    uci_frame().to_parquet(path)
    _, rows, _ = open_view(path)
    assert_rows(rows, EXPECTED)


def test_parquet_string_dates_in_uci_original_format(tmp_path: Path) -> None:
    path = tmp_path / "strings.parquet"
    uci_frame(["12/1/2010 8:26", "12/2/2010 9:00", "12/13/2010 10:15"]).to_parquet(path)
    _, rows, _ = open_view(path)
    assert_rows(rows, EXPECTED)


def test_parquet_bad_string_dates_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    uci_frame(["2010-12-01 08:26", "yesterday", "2010-12-13 10:15"]).to_parquet(path)
    msg = input_error(path)
    assert "column 'InvoiceDate' has 1 values that are not dates, e.g. row 2: 'yesterday'" in msg


def test_parquet_bad_string_numbers_named(tmp_path: Path) -> None:
    df = uci_frame()
    df.loc[1, "Quantity"] = "two"
    path = tmp_path / "bad.parquet"
    df.to_parquet(path)
    msg = input_error(path)
    assert "'Quantity'" in msg and "1 values that are not numbers" in msg and "row 2: 'two'" in msg


# --------------------------------------------------------------------------- csv


def test_csv_utf8_auto_layout_equals_parquet(tmp_path: Path) -> None:
    path = tmp_path / "retail.csv"
    uci_frame().to_csv(path, index=False)
    info, rows, _ = open_view(path)
    assert (info.format, info.layout, info.encoding) == ("csv", "uci_online_retail", "utf-8")
    assert info.headers == UCI_HEADERS
    assert_rows(rows, EXPECTED)


def test_csv_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    uci_frame().to_csv(path, index=False, encoding="utf-8-sig")
    info, rows, _ = open_view(path)
    assert info.encoding == "utf-8-sig"
    assert info.headers[0] == "InvoiceNo"
    assert_rows(rows, EXPECTED)


def korean_frame() -> pd.DataFrame:
    """Korean headers and Korean text values."""
    df = uci_frame().drop(columns=["StockCode"])
    df["Description"] = ["머그컵", None, "손난로"]
    df["Country"] = ["대한민국", "일본", "대한민국"]
    return df.rename(
        columns={
            "InvoiceNo": "주문번호",
            "Description": "상품명",
            "Quantity": "수량",
            "InvoiceDate": "주문일자",
            "UnitPrice": "단가",
            "CustomerID": "고객번호",
            "Country": "국가",
        }
    )


@pytest.mark.parametrize("encoding", ["cp949", "euc-kr"])
def test_csv_korean_cp949_equals_utf8(tmp_path: Path, encoding: str) -> None:
    cfg = config_from_dict({"columns": KOREAN})
    utf8, korean = tmp_path / "utf8.csv", tmp_path / "korean.csv"
    korean_frame().to_csv(utf8, index=False, encoding="utf-8")
    korean_frame().to_csv(korean, index=False, encoding=encoding)
    info_u, rows_u, _ = open_view(utf8, cfg)
    info_k, rows_k, _ = open_view(korean, cfg)
    assert info_k.encoding == "cp949" and info_u.encoding == "utf-8"
    assert info_k.layout == "config" and info_k.headers == info_u.headers
    assert rows_k == rows_u
    assert rows_k[0][8:] == ("머그컵", "대한민국")
    explicit = config_from_dict({"columns": KOREAN, "read": {"encoding": "euc-kr"}})
    assert open_view(korean, explicit)[1] == rows_u


def test_csv_latin1(tmp_path: Path) -> None:
    df = uci_frame()
    df["Description"] = ["CAFÉ MUG", None, "crème brûlée dish"]
    path = tmp_path / "latin1.csv"
    df.to_csv(path, index=False, encoding="latin-1")
    info, rows, _ = open_view(path)
    assert info.encoding == "latin-1"
    assert [r[8] for r in rows] == ["CAFÉ MUG", None, "crème brûlée dish"]


def test_csv_wrong_explicit_encoding_is_input_error(tmp_path: Path) -> None:
    path = tmp_path / "korean.csv"
    korean_frame().to_csv(path, index=False, encoding="cp949")
    cfg = config_from_dict({"columns": KOREAN, "read": {"encoding": "utf-8"}})
    msg = input_error(path, cfg)
    assert "not valid utf-8" in msg and "line 1" in msg and "read.encoding" in msg


def test_unknown_encoding_name(tmp_path: Path) -> None:
    path = tmp_path / "retail.csv"
    uci_frame().to_csv(path, index=False)
    msg = input_error(path, config_from_dict({"read": {"encoding": "klingon"}}))
    assert "unknown encoding 'klingon'" in msg


def test_csv_utf16_tab_excel_unicode_text(tmp_path: Path) -> None:
    path = tmp_path / "unicode.txt"
    korean_frame().to_csv(path, index=False, sep="\t", encoding="utf-16")
    info, rows, _ = open_view(path, config_from_dict({"columns": KOREAN}))
    assert info.encoding == "utf-16"
    assert rows[0][8:] == ("머그컵", "대한민국")


def test_csv_gz(tmp_path: Path) -> None:
    path = tmp_path / "retail.csv.gz"
    path.write_bytes(gzip.compress(uci_frame().to_csv(index=False).encode("utf-8")))
    info, rows, _ = open_view(path)
    assert info.format == "csv"
    assert_rows(rows, EXPECTED)


@pytest.mark.parametrize(("sep", "name"), [(";", "semi.csv"), ("\t", "tab.tsv"), ("|", "pipe.txt")])
def test_csv_delimiters(tmp_path: Path, sep: str, name: str) -> None:
    df = uci_frame()
    df["Description"] = ["HEART, HOLDER; BIG", None, "HAND WARMER"]  # other delimiters inside
    path = tmp_path / name
    df.to_csv(path, index=False, sep=sep)
    _, rows, _ = open_view(path)
    assert rows[0][8] == "HEART, HOLDER; BIG"
    assert [r[6] for r in rows] == pytest.approx([e[6] for e in EXPECTED])


def test_thousands_separator_comma(tmp_path: Path) -> None:
    df = uci_frame()
    df["Quantity"] = ["1,200", "2", "-1"]
    df["UnitPrice"] = ["1,234.5", "3.39", "1.85"]
    path = tmp_path / "thousands.csv"
    df.to_csv(path, index=False)
    msg = input_error(path)
    assert "'Quantity'" in msg and "row 1: '1,200'" in msg and "read.thousands" in msg
    _, rows, _ = open_view(path, config_from_dict({"read": {"thousands": ","}}))
    assert rows[0][4:7] == pytest.approx((1200.0, 1234.5, 1200 * 1234.5))


def test_thousands_dot_means_decimal_comma(tmp_path: Path) -> None:
    df = uci_frame()
    df["UnitPrice"] = ["1.234,50", "3,39", "1,85"]
    path = tmp_path / "european.csv"
    df.to_csv(path, index=False, sep=";")
    _, rows, _ = open_view(path, config_from_dict({"read": {"thousands": "."}}))
    assert [r[5] for r in rows] == pytest.approx([1234.5, 3.39, 1.85])


@pytest.mark.parametrize(
    "dates",
    [
        ["12/1/2010 8:26", "12/2/2010 9:00", "12/13/2010 10:15"],  # UCI original, %m/%d/%Y
        ["01/12/2010 08:26", "02/12/2010 09:00", "13/12/2010 10:15"],  # %d/%m/%Y
        ["2010-12-01T08:26:00", "2010-12-02T09:00:00", "2010-12-13T10:15:00"],
        ["2010/12/01 08:26", "2010/12/02 09:00", "2010/12/13 10:15"],
        ["2010.12.01 08:26", "2010.12.02 09:00", "2010.12.13 10:15"],
        ["01.12.2010 08:26", "02.12.2010 09:00", "13.12.2010 10:15"],
    ],
)
def test_date_formats_detected(tmp_path: Path, dates: list[str]) -> None:
    path = tmp_path / "dates.csv"
    uci_frame(dates).to_csv(path, index=False)
    _, rows, _ = open_view(path)
    assert_rows(rows, EXPECTED)


def test_date_only_formats(tmp_path: Path) -> None:
    want = [datetime(2010, 12, 1), datetime(2010, 12, 2), datetime(2010, 12, 13)]
    for dates in (["20101201", "20101202", "20101213"], ["2010-12-01", "2010-12-02", "2010-12-13"]):
        path = tmp_path / "dates.csv"
        uci_frame(dates).to_csv(path, index=False)
        assert [r[3] for r in open_view(path)[1]] == want


def test_day_first_found_after_ambiguous_rows(tmp_path: Path) -> None:
    dates = [f"{d:02d}/01/2011 10:00" for d in (1, 2, 3, 4, 5)] + ["25/01/2011 10:00"]
    df = pd.DataFrame(
        {
            "customer_id": ["1"] * 6,
            "invoice_date": dates,
            "quantity": ["1"] * 6,
            "unit_price": ["2"] * 6,
        }
    )
    path = tmp_path / "dayfirst.csv"
    df.to_csv(path, index=False)
    info, rows, _ = open_view(path)
    assert info.layout == "segwork"
    assert [r[3].day for r in rows] == [1, 2, 3, 4, 5, 25]


def test_explicit_date_format(tmp_path: Path) -> None:
    path = tmp_path / "dates.csv"
    uci_frame(["01-Dec-2010 08:26", "02-Dec-2010 09:00", "13-Dec-2010 10:15"]).to_csv(
        path, index=False
    )
    _, rows, _ = open_view(path, config_from_dict({"read": {"date_format": "%d-%b-%Y %H:%M"}}))
    assert_rows(rows, EXPECTED)


def test_float_customer_ids_normalised(tmp_path: Path) -> None:
    df = uci_frame()
    df["CustomerID"] = ["17850.0", " ", " 13047 "]
    path = tmp_path / "floats.csv"
    df.to_csv(path, index=False)
    assert [r[2] for r in open_view(path)[1]] == ["17850", None, "13047"]
    df["CustomerID"] = ["17850.0", "nan", "13047.00"]
    df.to_csv(path, index=False)
    assert [r[2] for r in open_view(path)[1]] == ["17850", None, "13047"]


def test_float_customer_ids_from_typed_parquet(tmp_path: Path) -> None:
    path = tmp_path / "floats.parquet"
    df = typed_frame()
    assert df["CustomerID"].dtype == "float64"
    df.to_parquet(path)
    assert [r[2] for r in open_view(path)[1]] == ["17850", None, "13047"]


# --------------------------------------------------------------------------- layouts and mapping


def test_online_retail_ii_layout(tmp_path: Path) -> None:
    df = uci_frame().rename(
        columns={"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"}
    )
    path = tmp_path / "ii.csv"
    df.to_csv(path, index=False)
    info, rows, _ = open_view(path)
    assert info.layout == "online_retail_ii"
    assert info.mapping["customer_id"] == "Customer ID"
    assert_rows(rows, EXPECTED)


def test_segwork_layout_with_and_without_amount(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "invoice_id": ["A1", "A2"],
            "customer_id": ["c1", "c2"],
            "invoice_date": ["2024-01-05", "2024-02-06"],
            "quantity": ["2", "3"],
            "unit_price": ["10", "5"],
        }
    )
    path = tmp_path / "shop.csv"
    df.to_csv(path, index=False)
    info, rows, _ = open_view(path)
    assert info.layout == "segwork" and "amount" not in info.mapping
    assert [r[6] for r in rows] == [20.0, 15.0]
    assert rows[0][7:] == (None, None, None)
    df["amount"] = ["19.5", "14"]  # e.g. after a discount
    df.to_csv(path, index=False)
    info, rows, _ = open_view(path)
    assert info.mapping["amount"] == "amount"
    assert [r[4:7] for r in rows] == [(2.0, 10.0, 19.5), (3.0, 5.0, 14.0)]


def test_amount_only_mapping(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "회원": ["u1", "u2"],
            "결제일": ["2024-03-01", "2024-03-02"],
            "결제금액": ["12,000", "500"],
        }
    )
    path = tmp_path / "payments.csv"
    df.to_csv(path, index=False)
    cfg = config_from_dict(
        {
            "columns": {"customer_id": "회원", "invoice_date": "결제일", "amount": "결제금액"},
            "read": {"thousands": ","},
        }
    )
    info, rows, _ = open_view(path, cfg)
    assert info.layout == "config"
    assert info.mapping == {"customer_id": "회원", "invoice_date": "결제일", "amount": "결제금액"}
    assert [r[4:7] for r in rows] == [(1.0, 12000.0, 12000.0), (1.0, 500.0, 500.0)]


def test_missing_invoice_id_means_one_order_per_row(tmp_path: Path) -> None:
    df = uci_frame().drop(columns=["InvoiceNo"])
    path = tmp_path / "noinvoice.csv"
    df.to_csv(path, index=False)
    cfg = config_from_dict(
        {
            "columns": {
                "customer_id": "CustomerID",
                "invoice_date": "InvoiceDate",
                "quantity": "Quantity",
                "unit_price": "UnitPrice",
            }
        }
    )
    _, rows, _ = open_view(path, cfg)
    assert [r[1] for r in rows] == ["1", "2", "3"]
    assert [r[7:] for r in rows] == [(None, None, None)] * 3


def test_reopen_replaces_view_and_cleans_up(tmp_path: Path) -> None:
    csv_path, pq_path = tmp_path / "a.csv", tmp_path / "b.parquet"
    uci_frame().to_csv(csv_path, index=False)
    typed_frame().iloc[:2].to_parquet(pq_path)
    con = duckdb.connect()
    open_source(csv_path, Config(), con)
    gc.collect()  # the view must not depend on a Python object
    assert con.execute("SELECT count(*), sum(quantity) FROM tx").fetchall() == [(3, 7.0)]
    open_source(pq_path, Config(), con)
    con.register("after", pd.DataFrame({"a": [1]}))  # no half-read result left on con
    assert con.execute("SELECT count(*) FROM tx").fetchall() == [(2,)]
    names = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    assert not names and not any(v.startswith("__segwork") for v in views)


# --------------------------------------------------------------------------- excel


def test_excel_first_sheet_typed_cells(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "retail.xlsx",
        {"2010": excel_rows(typed_frame()), "notes": [["just", "notes"], ["x", "y"]]},
    )
    info, rows, _ = open_view(path)
    assert (info.format, info.sheets, info.layout) == ("excel", ("2010",), "uci_online_retail")
    assert_rows(rows, EXPECTED)


def test_excel_named_indexed_list_and_all_sheets(tmp_path: Path) -> None:
    typed = typed_frame()
    path = write_xlsx(
        tmp_path / "years.xlsx",
        {"y1": excel_rows(typed.iloc[:2]), "y2": excel_rows(typed.iloc[2:])},
    )
    info, rows, _ = open_view(path)  # by default every sheet with the data's header
    assert info.sheets == ("y1", "y2") and info.sheets_skipped == () and info.warnings == ()
    assert_rows(rows, EXPECTED)
    info, rows, _ = open_view(path, config_from_dict({"read": {"sheet": "y2"}}))
    assert info.sheets == ("y2",) and [r[1] for r in rows] == ["C536367"]
    info, rows, _ = open_view(path, config_from_dict({"read": {"sheet": 1}}))
    assert info.sheets == ("y2",)
    info, rows, _ = open_view(path, config_from_dict({"read": {"sheet": ["y1", "y2"]}}))
    assert info.sheets == ("y1", "y2")
    assert_rows(rows, EXPECTED)
    info, rows, _ = open_view(path, config_from_dict({"read": {"sheet": "all"}}))
    assert info.sheets == ("y1", "y2")
    assert_rows(rows, EXPECTED)


def test_excel_text_dates_and_mixed_cells(tmp_path: Path) -> None:
    rows = excel_rows(uci_frame(["12/1/2010 8:26", "12/2/2010 9:00", "12/13/2010 10:15"]))
    rows[1][6] = 17850  # a number cell among text IDs
    path = write_xlsx(tmp_path / "text.xlsx", {"data": rows})
    _, got, _ = open_view(path)
    assert_rows(got, EXPECTED)


def test_excel_sheets_with_different_headers(tmp_path: Path) -> None:
    typed = typed_frame()
    other = typed.rename(columns={"UnitPrice": "Price"})
    path = write_xlsx(tmp_path / "mixed.xlsx", {"a": excel_rows(typed), "b": excel_rows(other)})
    msg = input_error(path, config_from_dict({"read": {"sheet": "all"}}))
    assert "'a' and 'b' have different headers" in msg
    assert "lacks UnitPrice" in msg and "extra Price" in msg


def test_excel_missing_sheet(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "one.xlsx", {"Sales": excel_rows(typed_frame())})
    msg = input_error(path, config_from_dict({"read": {"sheet": "sales2"}}))
    assert "sheet 'sales2' not found" in msg and "Sales" in msg
    msg = input_error(path, config_from_dict({"read": {"sheet": 3}}))
    assert "index 3 out of range" in msg


def test_excel_header_only(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "empty.xlsx", {"s": [list(UCI_HEADERS)]})
    assert "no data rows" in input_error(path)


# --------------------------------------------------------------------------- bad input


def test_file_not_found(tmp_path: Path) -> None:
    assert "file not found" in input_error(tmp_path / "nope.csv")


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "retail.json"
    path.write_text("{}")
    msg = input_error(path)
    assert "unsupported file type '.json'" in msg and ".parquet" in msg and ".xlsx" in msg


@pytest.mark.parametrize("name", ["empty.csv", "empty.parquet", "empty.xlsx"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    assert "file is empty (0 bytes)" in input_error(path)


def test_header_only_csv_and_parquet(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text(",".join(UCI_HEADERS) + "\n")
    msg = input_error(path)
    assert "no data rows" in msg and "InvoiceNo" in msg
    pq = tmp_path / "header.parquet"
    typed_frame().iloc[:0].to_parquet(pq)
    assert "no data rows" in input_error(pq)


def test_whitespace_only_csv(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text("\n\n  \n")
    assert "no content" in input_error(path)


@pytest.mark.parametrize(
    "name", ["garbage.csv", "garbage.parquet", "garbage.xlsx", "garbage.csv.gz"]
)
def test_binary_garbage(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(bytes(range(256)) * 8 + os.urandom(2048))
    msg = input_error(path)
    assert any(word in msg for word in ("binary", "not a Parquet", "Excel", "gzip")), msg


def test_excel_renamed_csv(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "book.xlsx", {"s": excel_rows(typed_frame())})
    renamed = path.rename(tmp_path / "book.csv")
    assert "save it as .xlsx" in input_error(renamed)


def test_ragged_csv(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text(uci_frame().to_csv(index=False) + "1,2,3,4,5,6,7,8,9,10\n")
    assert "not a valid CSV file" in input_error(path)


def test_required_column_missing_suggests_closest(tmp_path: Path) -> None:
    path = tmp_path / "custom.csv"
    pd.DataFrame(
        {
            "InvoiceNo": ["1"],
            "Qty": ["1"],
            "Date": ["2024-01-01"],
            "Price": ["1"],
            "CustomerNo": ["7"],
        }
    ).to_csv(path, index=False)
    msg = input_error(path)
    assert "required column 'customer_id' not found" in msg
    assert "headers are InvoiceNo, Qty, Date, Price, CustomerNo" in msg
    assert "closest: 'CustomerNo'?" in msg
    assert "columns.customer_id" in msg and "uci_online_retail" in msg


def test_no_layout_names_nearest_and_what_it_lacks(tmp_path: Path) -> None:
    df = uci_frame().rename(columns={"UnitPrice": "Unit Price"})
    path = tmp_path / "almost.csv"
    df.to_csv(path, index=False)
    msg = input_error(path)
    assert "nearest is 'uci_online_retail'" in msg and "lacks 'UnitPrice'" in msg
    assert "closest: 'Unit Price'?" in msg


def test_configured_header_not_in_file(tmp_path: Path) -> None:
    path = tmp_path / "retail.csv"
    uci_frame().to_csv(path, index=False)
    cfg = config_from_dict(
        {
            "columns": {
                "customer_id": "CustomerId",
                "invoice_date": "InvoiceDate",
                "amount": "UnitPrice",
            }
        }
    )
    msg = input_error(path, cfg)
    assert "columns.customer_id = 'CustomerId' is not in the file" in msg
    assert "closest: 'CustomerID'?" in msg


def test_bad_dates_named_with_rows(tmp_path: Path) -> None:
    dates = ["01/12/2010 08:26", "02/12/2010", "not a date", "04/12/2010", "05/12/2010"]
    dates += ["06/12/2010", "31/31/2011", "13/12/2010"]
    df = pd.DataFrame(
        {
            "customer_id": ["1"] * 8,
            "invoice_date": dates,
            "quantity": ["1"] * 8,
            "unit_price": ["1"] * 8,
        }
    )
    path = tmp_path / "baddates.csv"
    df.to_csv(path, index=False)
    msg = input_error(path)
    assert "column 'invoice_date' has 2 values that are not dates" in msg
    assert "row 3: 'not a date', row 7: '31/31/2011'" in msg
    assert "set read.date_format" in msg


def test_bad_dates_with_explicit_format(tmp_path: Path) -> None:
    path = tmp_path / "dates.csv"
    uci_frame(["20101201", "2010-12-02", "20101213"]).to_csv(path, index=False)
    msg = input_error(path, config_from_dict({"read": {"date_format": "%Y%m%d"}}))
    assert "'InvoiceDate' has 1 values that are not dates, e.g. row 2: '2010-12-02'" in msg
    msg = input_error(path, config_from_dict({"read": {"date_format": "%Q"}}))
    assert "read.date_format '%Q' is not a valid pattern" in msg


def test_text_in_numeric_columns(tmp_path: Path) -> None:
    df = uci_frame()
    df["UnitPrice"] = ["£2.55", "3.39 each", "n/a"]  # 'n/a' is missing, not bad
    path = tmp_path / "prices.csv"
    df.to_csv(path, index=False)
    msg = input_error(path)
    assert "column 'UnitPrice' has 1 values that are not numbers, e.g. row 2: '3.39 each'" in msg


def test_duplicate_header(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text(",".join([*UCI_HEADERS, "Quantity"]) + "\n" + "1," * 8 + "1\n")
    assert "header 'Quantity' appears more than once" in input_error(path)


# --------------------------------------------------------------------------- real exports (issue 8)


def shop_frame(dates: list[str], prices: list[str] | None = None) -> pd.DataFrame:
    """A small shop export in segwork's own layout, all text (as a CSV holds it)."""
    n = len(dates)
    return pd.DataFrame(
        {
            "invoice_id": [f"A{i}" for i in range(1, n + 1)],
            "customer_id": [f"c{i}" for i in range(1, n + 1)],
            "invoice_date": dates,
            "quantity": ["1"] * n,
            "unit_price": prices or ["10"] * n,
        }
    )


def test_excel_text_ids_stay_text_like_the_csv(tmp_path: Path) -> None:
    header = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price"]
    header += ["Customer ID", "Country"]
    when = datetime(2010, 12, 1, 8, 26)
    body = [
        ["000123", "85123A", "MUG", 1, when, 2.5, "000123", "Korea"],  # text cells
        ["0123", "85123A", "MUG", 1, when, 2.5, "0123", "Korea"],
        ["123", "85123A", "MUG", 1, when, 2.5, "123", "Korea"],
        [536365, "85123A", "MUG", 1, when, 2.5, 17850.0, "Korea"],  # number cells
    ]
    path = write_xlsx(tmp_path / "ids.xlsx", {"Sheet1": [header, *body]})
    _, rows, _ = open_view(path)
    assert [r[2] for r in rows] == ["000123", "0123", "123", "17850"]
    assert [r[1] for r in rows] == ["000123", "0123", "123", "536365"]
    csv_path = tmp_path / "ids.csv"  # what "Save as CSV" writes for the same cells
    csv_path.write_text(
        ",".join(header)
        + "\n"
        + "".join(
            f"{inv},85123A,MUG,1,2010-12-01 08:26,2.5,{cust},Korea\n"
            for inv, cust in [("000123",) * 2, ("0123",) * 2, ("123",) * 2, ("536365", "17850")]
        )
    )
    assert [r[1:3] for r in open_view(csv_path)[1]] == [r[1:3] for r in rows]


def test_excel_reads_every_sheet_with_the_data_header(tmp_path: Path) -> None:
    ii = typed_frame().rename(
        columns={"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"}
    )
    notes = [["Online Retail II", None], ["Source", "UCI"]]
    pivot = [["Country", "Revenue"], ["United Kingdom", 15.3]]
    path = write_xlsx(
        tmp_path / "online_retail_II.xlsx",
        {
            "Year 2009-2010": excel_rows(ii.iloc[:2]),
            "Notes": notes,
            "Year 2010-2011": excel_rows(ii.iloc[2:]),
            "Pivot": pivot,
            "Empty": [],
        },
    )
    info, rows, _ = open_view(path)
    assert info.layout == "online_retail_ii"
    assert info.sheets == ("Year 2009-2010", "Year 2010-2011")
    assert info.sheets_skipped == ("Notes", "Pivot")
    assert_rows(rows, EXPECTED)
    (code, message, shown), *_ = [w for w in info.warnings if w[0] == "sheets_skipped"]
    assert "'Notes', 'Pivot'" in message and "read.sheet" in message and "\n" not in message
    assert shown == {"skipped": "'Notes', 'Pivot'", "read": "'Year 2009-2010', 'Year 2010-2011'"}
    info, rows, _ = open_view(path, config_from_dict({"read": {"sheet": "Year 2010-2011"}}))
    assert info.sheets == ("Year 2010-2011",) and info.sheets_skipped == ()
    assert [r[1] for r in rows] == ["C536367"]
    msg = input_error(path, config_from_dict({"read": {"sheet": ["Year 2009-2010", "Notes"]}}))
    assert "different headers" in msg


def test_ambiguous_day_month_dates_refused(tmp_path: Path) -> None:
    dates = ["01/12/2011 10:00", "02/11/2011 09:30", "03/10/2011 18:00", "12/01/2011 08:00"]
    path = tmp_path / "dates.csv"
    shop_frame(dates).to_csv(path, index=False)
    msg = input_error(path)
    assert "'invoice_date' has dates that read two ways" in msg
    assert "row 1: '01/12/2011 10:00' is 2011-01-12 10:00 as '%m/%d/%Y %H:%M'" in msg
    assert "or 2011-12-01 10:00 as '%d/%m/%Y %H:%M'" in msg
    assert "read.date_format" in msg


def test_date_format_settles_ambiguous_dates_with_a_warning(tmp_path: Path) -> None:
    dates = ["01/12/2011 10:00", "02/11/2011 09:30", "03/10/2011 18:00"]
    path = tmp_path / "dates.csv"
    shop_frame(dates).to_csv(path, index=False)
    info, rows, _ = open_view(path, config_from_dict({"read": {"date_format": "%d/%m/%Y %H:%M"}}))
    assert [r[3] for r in rows] == [
        datetime(2011, 12, 1, 10, 0),
        datetime(2011, 11, 2, 9, 30),
        datetime(2011, 10, 3, 18, 0),
    ]
    assert info.date_format == "%d/%m/%Y %H:%M"
    [(code, message, shown)] = info.warnings
    assert code == "ambiguous_dates"
    assert "'%m/%d/%Y %H:%M'" in message and "2011-01-12 10:00" in message
    assert shown == {
        "column": "'invoice_date'",
        "row": 1,
        "raw": "'01/12/2011 10:00'",
        "value": "2011-12-01 10:00",
        "other": "2011-01-12 10:00",
        "other_format": "'%m/%d/%Y %H:%M'",
    }


def test_unambiguous_dates_record_their_format(tmp_path: Path) -> None:
    path = tmp_path / "dates.csv"
    shop_frame(["01/01/2011", "02/02/2011", "03/03/2011"]).to_csv(path, index=False)
    info, rows, _ = open_view(path)  # day == month: both orders agree, nothing to ask
    assert info.date_format == "%m/%d/%Y" and info.warnings == ()
    assert [r[3] for r in rows][1] == datetime(2011, 2, 2)
    shop_frame(["12/1/2010 8:26", "12/13/2010 10:15"]).to_csv(path, index=False)
    assert open_view(path)[0].date_format == "%m/%d/%Y %H:%M"
    shop_frame(["2010-12-01 08:26", "2010-12-13 10:15"]).to_csv(path, index=False)
    assert open_view(path)[0].date_format == "ISO 8601"
    xlsx = write_xlsx(tmp_path / "cells.xlsx", {"s": excel_rows(typed_frame())})
    assert open_view(xlsx)[0].date_format == "Excel date cells"


def test_utc_offsets_keep_the_clock_time_written(tmp_path: Path) -> None:
    dates = ["2011-12-01T00:30:00+09:00", "2011-12-01 23:10:00Z", "2011-12-02 08:00:00-05:00"]
    path = tmp_path / "offsets.csv"
    shop_frame(dates).to_csv(path, index=False)
    info, rows, _ = open_view(path)
    assert info.date_format == "ISO 8601"
    assert [r[3] for r in rows] == [
        datetime(2011, 12, 1, 0, 30),
        datetime(2011, 12, 1, 23, 10),
        datetime(2011, 12, 2, 8, 0),
    ]


def test_parquet_time_zone_timestamps_read_in_utc(tmp_path: Path) -> None:
    df = typed_frame()
    df["InvoiceDate"] = df["InvoiceDate"].dt.tz_localize("Asia/Seoul")
    path = tmp_path / "tz.parquet"
    df.to_parquet(path)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'America/New_York'")  # the machine's zone must not matter
    info = open_source(path, Config(), con)
    got = [r[0] for r in con.execute("SELECT invoice_date FROM tx ORDER BY row_id").fetchall()]
    assert got[0] == datetime(2010, 11, 30, 23, 26)  # 08:26 in Seoul
    assert info.date_format == "Parquet timestamps (in UTC)"


def test_cr_only_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "mac.csv"
    text = uci_frame().to_csv(index=False, lineterminator="\r")
    path.write_bytes(text.encode("cp949"))
    info, rows, _ = open_view(path)
    assert info.layout == "uci_online_retail"
    assert_rows(rows, EXPECTED)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12,900원", 12900.0),
        ("₩12,900", 12900.0),
        ("￦12,900", 12900.0),
        ("KRW 12,900", 12900.0),
        ("1,200 원", 1200.0),
        ("1,200\u00a0원", 1200.0),
        ("£3.50", 3.5),
        ("$1,200.00", 1200.0),
        ("-₩12,900", -12900.0),
        ("₩-500", -500.0),
        ("-3,000원", -3000.0),
        ("12900원", 12900.0),
        ("usd 7", 7.0),
    ],
)
def test_money_written_as_text(tmp_path: Path, text: str, value: float) -> None:
    path = tmp_path / "money.csv"
    shop_frame(["2024-03-01", "2024-03-02"], prices=[text, "5"]).to_csv(path, index=False)
    _, rows, _ = open_view(path)
    assert [r[5] for r in rows] == [value, 5.0]


def test_money_still_refuses_what_is_not_a_number(tmp_path: Path) -> None:
    path = tmp_path / "money.csv"
    prices = ["₩12,900", "약 3,000원", "₩", "-", "12,90원"]
    shop_frame([f"2024-03-0{i}" for i in range(1, 6)], prices).to_csv(path, index=False)
    msg = input_error(path)
    assert "'unit_price' has 3 values that are not numbers" in msg
    assert "row 2: '약 3,000원', row 3: '₩', row 5: '12,90원'" in msg


def test_money_with_european_thousands(tmp_path: Path) -> None:
    path = tmp_path / "money.csv"
    shop_frame(["2024-03-01", "2024-03-02"], ["€1.234,50", "2,5"]).to_csv(
        path, index=False, sep=";"
    )
    _, rows, _ = open_view(path, config_from_dict({"read": {"thousands": "."}}))
    assert [r[5] for r in rows] == [1234.5, 2.5]


def test_excel_money_text_cells(tmp_path: Path) -> None:
    rows = [["customer_id", "invoice_date", "amount"], ["c1", "2024-03-01", "12,900원"]]
    rows.append(["c2", "2024-03-02", 5000])
    path = write_xlsx(tmp_path / "money.xlsx", {"s": rows})
    assert [r[6] for r in open_view(path)[1]] == [12900.0, 5000.0]


KOREAN_TIMES = [
    ("2024-03-05 오후 3:12:00", datetime(2024, 3, 5, 15, 12)),
    ("2024-03-05 오전 9:05:30", datetime(2024, 3, 5, 9, 5, 30)),
    ("2024-03-05 오전 12:10:00", datetime(2024, 3, 5, 0, 10)),
    ("2024-03-05 오후 12:10:00", datetime(2024, 3, 5, 12, 10)),
]


def test_korean_am_pm_times_detected(tmp_path: Path) -> None:
    path = tmp_path / "korean_times.csv"
    shop_frame([t for t, _ in KOREAN_TIMES]).to_csv(path, index=False, encoding="cp949")
    info, rows, _ = open_view(path)
    assert [r[3] for r in rows] == [want for _, want in KOREAN_TIMES]
    assert info.date_format == "%Y-%m-%d %p %I:%M:%S"
    dotted = ["2024.03.05 오전 9:05", "2024.03.06 오후 11:59"]
    shop_frame(dotted).to_csv(path, index=False)
    assert [r[3] for r in open_view(path)[1]] == [
        datetime(2024, 3, 5, 9, 5),
        datetime(2024, 3, 6, 23, 59),
    ]


def test_korean_am_pm_times_with_date_format(tmp_path: Path) -> None:
    path = tmp_path / "korean_times.csv"
    shop_frame(["2024/3/5 오후 3:12", "2024/3/6 오전 12:00"]).to_csv(path, index=False)
    cfg = config_from_dict({"read": {"date_format": "%Y/%m/%d %p %I:%M"}})
    info, rows, _ = open_view(path, cfg)
    assert [r[3] for r in rows] == [datetime(2024, 3, 5, 15, 12), datetime(2024, 3, 6, 0, 0)]
    assert info.date_format == "%Y/%m/%d %p %I:%M"


def test_status_column_mapped_trimmed(tmp_path: Path) -> None:
    df = korean_frame()
    df["주문상태"] = [" 배송완료 ", "", "취소"]
    path = tmp_path / "orders.csv"
    df.to_csv(path, index=False)
    cfg = config_from_dict({"columns": {**KOREAN, "status": "주문상태"}})
    con = duckdb.connect()
    info = open_source(path, cfg, con)
    assert info.mapping["status"] == "주문상태"
    got = con.execute("SELECT status FROM tx ORDER BY row_id").fetchall()
    assert got == [("배송완료",), (None,), ("취소",)]
    con = duckdb.connect()
    open_source(path, config_from_dict({"columns": KOREAN}), con)  # not mapped: NULL
    assert con.execute("SELECT count(status) FROM tx").fetchall() == [(0,)]


def test_status_column_in_segwork_layout_and_parquet(tmp_path: Path) -> None:
    df = shop_frame(["2024-03-01", "2024-03-02"])
    df["status"] = ["paid", "returned "]
    path = tmp_path / "shop.parquet"
    df.to_parquet(path)
    con = duckdb.connect()
    assert open_source(path, Config(), con).mapping["status"] == "status"
    assert con.execute("SELECT status FROM tx ORDER BY row_id").fetchall() == [
        ("paid",),
        ("returned",),
    ]


TITLE = "주문내역 조회 (2024-03-01 ~ 2024-03-31)"


def test_csv_title_rows_above_the_header(tmp_path: Path) -> None:
    path = tmp_path / "admin_export.csv"
    body = korean_frame().to_csv(index=False)
    path.write_text(f"{TITLE}\n\n{body}", encoding="cp949")
    cfg = config_from_dict({"columns": KOREAN})
    info, rows, _ = open_view(path, cfg)
    assert info.header_row == 3 and info.headers[0] == "주문번호"
    plain = tmp_path / "plain.csv"
    korean_frame().to_csv(plain, index=False)
    assert rows == open_view(plain, cfg)[1]
    explicit = config_from_dict({"columns": KOREAN, "read": {"header_row": 3}})
    assert open_view(path, explicit)[1] == rows
    past = config_from_dict({"columns": KOREAN, "read": {"header_row": 40}})
    assert "read.header_row 40 is past the last line" in input_error(path, past)
    uci = tmp_path / "uci_titled.csv"  # a known layout is found the same way
    uci.write_text(
        f'"Sales report, Dec 2010"\nexported 2011-01-05\n{uci_frame().to_csv(index=False)}'
    )
    assert_rows(open_view(uci)[1], EXPECTED)


def test_excel_title_rows_above_the_header(tmp_path: Path) -> None:
    rows = excel_rows(korean_frame())
    path = write_xlsx(
        tmp_path / "admin_export.xlsx", {"주문내역": [[TITLE], [], *rows], "메모": [["note"]]}
    )
    cfg = config_from_dict({"columns": KOREAN})
    info, got, _ = open_view(path, cfg)
    assert info.header_row == 3
    assert [r[1:4] for r in got] == [
        ("536365", "17850", datetime(2010, 12, 1, 8, 26)),
        ("536366", None, datetime(2010, 12, 2, 9, 0)),
        ("C536367", "13047", datetime(2010, 12, 13, 10, 15)),
    ]
    assert info.sheets == ("주문내역",) and info.sheets_skipped == ("메모",)
    explicit = config_from_dict({"columns": KOREAN, "read": {"header_row": 3}})
    info, again, _ = open_view(path, explicit)  # the short note sheet has no row 3: left out
    assert again == got and info.sheets_skipped == ("메모",)
    named = config_from_dict({"columns": KOREAN, "read": {"header_row": 3, "sheet": "메모"}})
    assert "row 3 of sheet '메모' is empty" in input_error(path, named)
    wrong = config_from_dict({"columns": KOREAN, "read": {"header_row": 1}})
    assert "columns.customer_id = '고객번호' is not in the file" in input_error(path, wrong)


# --------------------------------------------------------------------------- real data


def uci_sources() -> dict[str, Path]:
    """The shared UCI files: skip when SEGWORK_UCI_DIR is unset, fail (not error) when wrong."""
    raw = os.environ.get("SEGWORK_UCI_DIR", "").strip()
    if not raw:
        pytest.skip("SEGWORK_UCI_DIR not set: real-data test skipped")
    files = {kind: Path(raw) / f"online_retail.{kind}" for kind in ("parquet", "csv.gz")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        pytest.fail(f"SEGWORK_UCI_DIR={raw} but {', '.join(missing)} is missing")
    return files


@pytest.mark.uci
def test_uci_parquet_and_csv_gz_agree() -> None:
    sql = (
        "SELECT count(*), count(customer_id), count(DISTINCT customer_id), sum(amount), "
        "min(invoice_date), max(invoice_date) FROM tx"
    )
    results = {}
    for kind, path in uci_sources().items():
        con = duckdb.connect()
        info = open_source(path, Config(), con)
        assert info.layout == "uci_online_retail"
        results[kind] = con.execute(sql).fetchall()[0]
    n, with_id, customers, total, first, last = results["parquet"]
    assert (n, with_id, customers) == (541_909, 406_829, 4_372)
    assert total == pytest.approx(9_747_747.93, abs=0.01)
    assert (first, last) == (datetime(2010, 12, 1, 8, 26), datetime(2011, 12, 9, 12, 50))
    assert results["csv.gz"][:3] == results["parquet"][:3]
    assert results["csv.gz"][3] == pytest.approx(total, abs=0.01)
    assert results["csv.gz"][4:] == results["parquet"][4:]
