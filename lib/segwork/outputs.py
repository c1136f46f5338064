"""Machine-readable outputs (segments.csv/.xlsx, summary.json); publishing a run folder is in publish.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SEGMENT_COLUMNS = (
    "customer_id",
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "rfm_segment",
)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return None if np.isnan(obj) else float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (pd.Timestamp,)) or hasattr(obj, "isoformat"):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json(path: Path, data: dict[str, Any]) -> None:
    """UTF-8 JSON, Korean kept readable, numpy and dates converted."""
    path.write_text(
        json.dumps(data, ensure_ascii=False, indent=2, default=_json_default) + "\n",
        encoding="utf-8",
    )


def segments_frame(
    table: pd.DataFrame,
    labels: dict[str, str],
    extra: pd.DataFrame | None = None,
    prediction: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per customer in the documented column order; ``prediction`` adds p_purchase,
    expected_orders and expected_revenue after the RFM columns, ``extra`` the cluster columns."""
    out = table[["recency_days", "frequency", "monetary", "r_score", "f_score", "m_score"]].copy()
    out["monetary"] = out["monetary"].round(2)
    out["rfm_segment"] = table["rfm_segment_id"].map(labels)
    out["rfm_segment_id"] = table["rfm_segment_id"]
    if prediction is not None:
        pred = prediction.reindex(out.index)
        out["p_purchase"] = pred["p_purchase"].round(4)
        out["expected_orders"] = pred["expected_orders"].round(3)
        out["expected_revenue"] = pred["expected_revenue"].round(2)
    if extra is not None:
        out = out.join(extra)
    out.index.name = "customer_id"
    return out.reset_index()


#: Text starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _is_text(col: pd.Series) -> bool:
    """True for object or string columns (IDs, labels); numbers stay numbers."""
    return col.dtype == object or pd.api.types.is_string_dtype(col.dtype)


def escape_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix ``'`` to text cells that a spreadsheet would evaluate (=, +, -, @, tab, CR).

    Only text columns are touched, so a negative number stays a number; Parquet outputs keep
    the raw values.
    """
    out = frame.copy(deep=False)  # copy-on-write: only the escaped columns are new
    for name in out.columns:
        col = out[name]
        if not _is_text(col):
            continue
        # non-text cells of an object column never start a formula
        is_str = col.notna() if col.dtype != object else col.map(lambda v: isinstance(v, str))
        text = col.astype("string")
        risky = (text.str.startswith(FORMULA_PREFIXES).fillna(False) & is_str).astype(bool)
        if risky.any():
            out[name] = col.astype(object).where(~risky, "'" + text[risky].astype(str))
    return out


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """CSV that Excel (Korean included) opens correctly: UTF-8 with BOM, formulas escaped.

    Written by Arrow's CSV writer (a 1M-customer table in seconds, not the best part of a
    minute). Nothing is quoted unless a cell holds a comma, quote or line break; then every
    text cell is (RFC 4180 either way).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.Table.from_pandas(escape_formulas(frame), preserve_index=False)

    def write(data: pa.Table, options: pacsv.WriteOptions) -> None:
        with open(path, "wb") as fh:
            fh.write("\ufeff".encode())
            pacsv.write_csv(data, fh, options)

    try:
        write(table, pacsv.WriteOptions(quoting_style="none", quoting_header="none"))
    except pa.ArrowInvalid:  # a comma, quote or line break in a cell: quote the text cells
        write(table, pacsv.WriteOptions())
    del table
    pa.default_memory_pool().release_unused()  # its allocator would keep the table's pages


#: Rows an Excel sheet holds, header included.
EXCEL_MAX_ROWS = 1_048_576
#: segments.xlsx is written up to this many customers: a larger sheet takes minutes to write
#: and to open; segments.csv and lists/ hold every customer whatever the size.
SEGMENTS_XLSX_MAX = 100_000


def write_xlsx(frame: pd.DataFrame, path: Path, sheet: str = "segments") -> bool:
    """An Excel sheet with text columns as text cells (``000123`` keeps its zeros; ``=1+1``
    is shown, never evaluated) and numbers as numbers. False (nothing written) when the
    frame has more rows than a sheet holds."""
    if len(frame) >= EXCEL_MAX_ROWS:
        return False
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    ws.append([str(c) for c in frame.columns])

    def text_cell(value: str) -> Any:
        # openpyxl stores other strings as text already; only '=...' would become a formula
        if not value.startswith("="):
            return value
        cell = WriteOnlyCell(ws, value=value)
        cell.data_type = "s"
        return cell

    columns = []
    for name in frame.columns:
        col = frame[name]
        if _is_text(col):
            columns.append([None if pd.isna(v) else text_cell(str(v)) for v in col])
        else:
            columns.append(col.astype(object).where(col.notna(), None).tolist())
    for row in zip(*columns, strict=True):
        ws.append(row)
    wb.save(path)
    return True


def write_segments(frame: pd.DataFrame, folder: Path) -> bool:
    """``segments.csv`` (UTF-8 with BOM, formulas escaped) and ``segments.xlsx`` (IDs as text);
    False (CSV only) above :data:`SEGMENTS_XLSX_MAX` customers."""
    write_csv(frame, Path(folder) / "segments.csv")
    if len(frame) > SEGMENTS_XLSX_MAX:
        return False
    return write_xlsx(frame, Path(folder) / "segments.xlsx")


#: The folder inside OUT holding one customer list per RFM segment.
LISTS = "lists"


def write_segment_lists(frame: pd.DataFrame, folder: Path) -> dict[str, int]:
    """``lists/<segment id>.csv``: each segment's customers, same columns and escaping as
    ``segments.csv``; returns segment id -> rows written (non-empty segments only)."""
    dest = Path(folder) / LISTS
    dest.mkdir(exist_ok=True)
    written: dict[str, int] = {}
    ids = frame["rfm_segment_id"]
    for seg_id in ids.dropna().unique():  # one segment's rows at a time, not a sorted copy of all
        rows = frame[(ids == seg_id).to_numpy()]
        write_csv(rows, dest / f"{seg_id}.csv")
        written[str(seg_id)] = len(rows)
    return written


def unescape_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Undo :func:`escape_formulas` on text columns (``'=x`` -> ``=x``) after reading a CSV back."""
    out = frame.copy(deep=False)  # copy-on-write: only the escaped columns are new
    for name in out.columns:
        col = out[name]
        if not _is_text(col):
            continue
        out[name] = col.map(
            lambda v: (
                v[1:]
                if isinstance(v, str) and v.startswith("'") and v[1:].startswith(FORMULA_PREFIXES)
                else v
            )
        )
    return out


#: Columns of segments.csv that are text whatever they look like (IDs keep leading zeros).
TEXT_COLUMNS = (
    "customer_id",
    "rfm_segment",
    "rfm_segment_id",
    "previous_segment",
    "previous_segment_id",
)


def read_segments(path: Path) -> pd.DataFrame:
    """A segments.csv written by :func:`write_segments`, IDs as text and formulas unescaped."""
    df = pd.read_csv(
        path,
        encoding="utf-8-sig",
        dtype={c: "string" for c in TEXT_COLUMNS},
        keep_default_na=False,
        na_values={c: [""] for c in TEXT_COLUMNS if c != "customer_id"},
    )
    for c in TEXT_COLUMNS:
        if c in df:
            df[c] = df[c].astype(object).where(df[c].notna(), None)
    return unescape_formulas(df)
