"""Open a transaction file (Parquet, CSV, Excel) as one canonical, typed DuckDB view.

Parquet stays lazy: the view is a projection with casts straight over ``read_parquet``, so it
streams. CSV and Excel are read with pandas (strings, or typed Excel cells), registered on the
connection only while they are validated and parsed into a temp table, then unregistered; the
view reads that table, so nothing in Python has to be kept alive.

Real exports are messy, so the reader finds the header below title rows, reads every Excel sheet
that shares the data's header, keeps Excel ID cells as text, reads money written with a currency
('12,900원', '$1,200.00') and Korean AM/PM times, and refuses dates that read two ways.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import difflib
import gzip
import io
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from segwork.errors import SegworkInputError
from segwork.schema import CANONICAL, KNOWN_LAYOUTS, REQUIRED, ColumnMap, Config, ReadOptions
from segwork.store import TX

#: File endings we read, longest first so ``.csv.gz`` wins over ``.gz``.
SUPPORTED_SUFFIXES: tuple[tuple[str, str], ...] = (
    (".csv.gz", "csv"),
    (".tsv.gz", "csv"),
    (".txt.gz", "csv"),
    (".parquet", "parquet"),
    (".csv", "csv"),
    (".tsv", "csv"),
    (".txt", "csv"),
    (".xlsx", "excel"),
    (".xlsm", "excel"),
    (".xls", "excel"),
)
#: Cell texts that mean "missing" in ID, date and number columns (compared lower-cased).
NA_TOKENS = ("nan", "na", "n/a", "#n/a", "null", "none", "-")
#: Encodings tried, in order, when ``read.encoding`` is ``auto``.
AUTO_ENCODINGS = ("utf-8-sig", "cp949", "latin-1")
#: Delimiters the CSV sniffer chooses between.
DELIMITERS = (",", ";", "\t", "|")
#: Date formats tried when ``read.date_format`` is unset; ``None`` means ISO 8601 via CAST.
DATE_FAMILIES: tuple[tuple[str, tuple[str, ...] | None], ...] = (
    ("ISO (YYYY-MM-DD[ HH:MM[:SS]])", None),
    ("%m/%d/%Y %H:%M", ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y")),
    ("%d/%m/%Y %H:%M", ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y")),
    ("%Y%m%d", ("%Y%m%d %H:%M:%S", "%Y%m%d %H:%M", "%Y%m%d%H%M%S", "%Y%m%d")),
    ("%Y.%m.%d", ("%Y.%m.%d %H:%M:%S", "%Y.%m.%d %H:%M", "%Y.%m.%d")),
    ("%Y/%m/%d", ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d")),
    ("%d.%m.%Y", ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y")),
    ("%d-%m-%Y", ("%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d-%m-%Y")),
    ("%m/%d/%y %H:%M", ("%m/%d/%y %H:%M:%S", "%m/%d/%y %H:%M", "%m/%d/%y")),
    ("%d/%m/%y %H:%M", ("%d/%m/%y %H:%M:%S", "%d/%m/%y %H:%M", "%d/%m/%y")),
    # Korean Excel's default display; 오전/오후 are read as AM/PM for %p (see _date_sql).
    ("%Y-%m-%d %p %I:%M:%S", ("%Y-%m-%d %p %I:%M:%S", "%Y-%m-%d %p %I:%M")),
    ("%Y.%m.%d %p %I:%M:%S", ("%Y.%m.%d %p %I:%M:%S", "%Y.%m.%d %p %I:%M")),
    ("%Y/%m/%d %p %I:%M:%S", ("%Y/%m/%d %p %I:%M:%S", "%Y/%m/%d %p %I:%M")),
    ("%Y. %m. %d. %p %I:%M:%S", ("%Y. %m. %d. %p %I:%M:%S", "%Y. %m. %d. %p %I:%M")),
)
#: What ``SourceInfo.date_format`` says for the ISO family and for typed date cells.
ISO_LABEL, EXCEL_DATES, PARQUET_DATES = "ISO 8601", "Excel date cells", "Parquet timestamps"
#: Korean meridiem markers, rewritten for strptime's %p.
MERIDIEM = (("오전", "AM"), ("오후", "PM"))
#: Currency symbols and codes allowed before or after a number written as text ('₩12,900').
CURRENCY = r"(?:US\$|₩|￦|\$|£|€|¥|원|(?i:KRW|USD|GBP|EUR|JPY|CNY))"
#: Whitespace around a currency, including the no-break space spreadsheets like to write.
_BLANK = r"[\s\x{00A0}]*"
#: How many rows (lines in CSV) are searched for the header row.
HEADER_SCAN_ROWS = 20
#: Canonical columns read as text from Excel, so '000123' stays '000123' (as in the CSV).
ID_COLUMNS = ("invoice_id", "customer_id")
#: Auto-detected dates outside these years count as unparsed (e.g. ``%Y`` reading '10').
PLAUSIBLE_YEARS = (1900, 2100)
NUMERIC_TYPES = frozenset(
    {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
        "FLOAT",
        "REAL",
        "DOUBLE",
    }
)
VIEW_TYPES: tuple[tuple[str, str], ...] = (
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
)
ROW_ID_COLUMN = "__segwork_row_id"
SAMPLE_BYTES = 1 << 16
DATE_SAMPLE_ROWS = 2000


#: A data-quality warning: (code, English message for the log, params the report's text
#: catalogue words the code with).
Notice = tuple[str, str, Mapping[str, Any]]


@dataclass(frozen=True)
class SourceInfo:
    """What :func:`open_source` found: format, layout, encoding, headers and the mapping used."""

    path: Path
    format: str  # "parquet" | "csv" | "excel"
    layout: str  # "uci_online_retail" | "online_retail_ii" | "segwork" | "config"
    encoding: str | None  # the encoding actually used for CSV, else None
    headers: tuple[str, ...]  # headers found in the file
    mapping: dict[str, str]  # canonical name -> header used
    sheets: tuple[str, ...] | None  # Excel sheets read
    date_format: str | None = None  # "ISO 8601", a strftime pattern, "Excel date cells", ...
    sheets_skipped: tuple[str, ...] = ()  # Excel sheets left out because their header differs
    warnings: tuple[Notice, ...] = ()  # (code, message, params), e.g. ("ambiguous_dates", ...)
    header_row: int = 1  # 1-based row of the header (of the first sheet read)


@dataclass(frozen=True)
class _Relation:
    """A SQL FROM item holding the file's columns, plus how to number its data rows."""

    sql: str
    row_id: str
    types: dict[str, str]
    typed: bool = False  # Parquet: values are stored typed, not as text from an export


@dataclass(frozen=True)
class _Book:
    """The sheets of a workbook that were stacked into one frame, and those left out."""

    frame: pd.DataFrame
    sheets: tuple[str, ...]
    skipped: tuple[str, ...]
    header_row: int


@dataclass(frozen=True)
class _Sheet:
    """One sheet cut at its header row: the frame, that row (1-based), and whether it maps."""

    frame: pd.DataFrame
    header_row: int
    fits: bool


@dataclass(frozen=True)
class _Dates:
    """SQL for the date column, the format it uses, and warnings for the run summary."""

    expr: str
    label: str | None
    warnings: tuple[Notice, ...] = ()


# --------------------------------------------------------------------------- public entry


def open_source(
    path: str | Path, cfg: Config, con: duckdb.DuckDBPyConnection, view: str = TX
) -> SourceInfo:
    """Validate ``path`` and create the temp view ``view`` with the canonical typed columns."""
    p = Path(path)
    fmt = _check_file(p)
    raw_name, table = f"__segwork_raw_{view}", f"__segwork_src_{view}"
    _unregister(con, raw_name)
    encoding: str | None = None
    book: _Book | None = None
    header_row = 1
    if fmt == "parquet":
        headers, rel = _parquet_relation(p, con)
        layout, mapping = _resolve_mapping(p, headers, cfg.columns)
        exprs, dates = _column_exprs(p, con, rel, mapping, cfg.read)
        _create_view(con, view, rel, exprs, table=None)
        con.execute(f"DROP TABLE IF EXISTS temp.main.{_ident(table)}")
    else:
        if fmt == "csv":
            df, encoding, header_row, _ = _read_csv(p, cfg.read, cfg.columns)
        else:
            book = _read_excel(p, cfg.read, cfg.columns)
            df, header_row = book.frame, book.header_row
        headers = tuple(df.columns)
        layout, mapping = _resolve_mapping(p, headers, cfg.columns)
        used = _used_columns(df, mapping)
        if book is not None:
            used = _excel_types(used, {mapping[c] for c in ID_COLUMNS if c in mapping})
        rel = _register_frame(con, raw_name, used)
        try:
            exprs, dates = _column_exprs(p, con, rel, mapping, cfg.read)
            _create_view(con, view, rel, exprs, table=table)
        finally:
            _unregister(con, raw_name)
    notes = list(dates.warnings)
    if book is not None and book.skipped:
        shown = {
            "skipped": ", ".join(repr(s) for s in book.skipped),
            "read": ", ".join(repr(s) for s in book.sheets),
        }
        notes.append(("sheets_skipped", _skipped_note(p, book), shown))
    return SourceInfo(
        path=p,
        format=fmt,
        layout=layout,
        encoding=encoding,
        headers=headers,
        mapping=mapping,
        sheets=book.sheets if book else None,
        date_format=dates.label,
        sheets_skipped=book.skipped if book else (),
        warnings=tuple(notes),
        header_row=header_row,
    )


# --------------------------------------------------------------------------- file checks


def _check_file(path: Path) -> str:
    """Fail early on a missing, empty or unsupported file; return its format."""
    if not path.exists():
        raise SegworkInputError(f"{path}: file not found")
    if not path.is_file():
        raise SegworkInputError(f"{path}: not a file")
    fmt = _format_of(path)
    if path.stat().st_size == 0:
        raise SegworkInputError(f"{path}: file is empty (0 bytes)")
    return fmt


def _format_of(path: Path) -> str:
    """The format implied by the file name, or an error listing what is supported."""
    name = path.name.lower()
    for suffix, fmt in SUPPORTED_SUFFIXES:
        if name.endswith(suffix):
            return fmt
    supported = ", ".join(s for s, _ in SUPPORTED_SUFFIXES)
    raise SegworkInputError(
        f"{path}: unsupported file type '{''.join(path.suffixes) or path.name}'; "
        f"supported: {supported}"
    )


def _first_line(exc: BaseException) -> str:
    """The first line of an exception message, for embedding in a one-line error."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _ident(name: str) -> str:
    """Quote a SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    """Quote a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _show_headers(headers: tuple[str, ...] | list[str], limit: int = 30) -> str:
    """Headers joined for a message, cut short for very wide files."""
    shown = ", ".join(str(h) for h in headers[:limit])
    return shown + (f", ... ({len(headers)} in all)" if len(headers) > limit else "")


# --------------------------------------------------------------------------- parquet


def _parquet_relation(
    path: Path, con: duckdb.DuckDBPyConnection
) -> tuple[tuple[str, ...], _Relation]:
    """A lazy ``read_parquet`` relation; only the footer is read here."""
    with path.open("rb") as fh:
        head = fh.read(4)
        fh.seek(-4, io.SEEK_END)
        tail = fh.read(4)
    if head != b"PAR1" or tail != b"PAR1":
        raise SegworkInputError(
            f"{path}: not a Parquet file (no PAR1 magic bytes); is it misnamed?"
        )
    abs_path = _lit(str(path.resolve()))
    sql = f"read_parquet({abs_path}, file_row_number = true)"
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {sql}").fetchall()
        n_rows = _one(con, f"SELECT sum(num_rows) FROM parquet_file_metadata({abs_path})")
    except duckdb.Error as exc:
        raise SegworkInputError(
            f"{path}: not a readable Parquet file ({_first_line(exc)})"
        ) from None
    types = {str(r[0]): str(r[1]) for r in described if r[0] != "file_row_number"}
    if not n_rows[0]:
        raise SegworkInputError(f"{path}: Parquet file has columns but no data rows")
    rel = _Relation(sql=sql, row_id="(file_row_number + 1)", types=types, typed=True)
    return tuple(types), rel


# --------------------------------------------------------------------------- csv


def _read_csv(
    path: Path, opts: ReadOptions, columns: ColumnMap | None
) -> tuple[pd.DataFrame, str, int, str]:
    """Decode, sniff and parse a (possibly gzipped) CSV into strings; also the encoding, the
    header's 1-based line and the delimiter."""
    data = _raw_bytes(path)
    text, encoding = _decode(path, data, opts.encoding)
    if not text.strip():
        raise SegworkInputError(f"{path}: file has no content (only whitespace)")
    text = _lf_newlines(text)
    skip = _csv_header_line(text, opts.header_row, columns)
    if skip:
        text = _drop_lines(text, skip)
        if not text.strip():
            raise SegworkInputError(
                f"{path}: read.header_row {opts.header_row} is past the last line of the file"
            )
    sep = _sniff_delimiter(
        text[:SAMPLE_BYTES], default="\t" if ".tsv" in path.name.lower() else ","
    )
    _check_duplicate_headers(path, text, sep)
    try:
        df = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
        )
    except pd.errors.EmptyDataError:
        raise SegworkInputError(f"{path}: file has no header and no data") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise SegworkInputError(f"{path}: not a valid CSV file ({_first_line(exc)})") from None
    df.columns = [str(c).strip() for c in df.columns]
    if df.empty:
        raise SegworkInputError(
            f"{path}: file has a header ({_show_headers(list(df.columns))}) but no data rows"
        )
    return df, encoding, skip + 1, sep


def resolve_csv(path: Path, cfg: Config) -> tuple[SourceInfo, str]:
    """What :func:`open_source` finds in a CSV before reading its values (encoding, header row,
    headers, layout, mapping) and its delimiter: how another engine reads the file the same way."""
    fmt = _check_file(path)
    if fmt != "csv":
        raise SegworkInputError(f"{path}: not a CSV file")
    df, encoding, header_row, sep = _read_csv(path, cfg.read, cfg.columns)
    headers = tuple(df.columns)
    layout, mapping = _resolve_mapping(path, headers, cfg.columns)
    info = SourceInfo(path, fmt, layout, encoding, headers, mapping, None, header_row=header_row)
    return info, sep


def _lf_newlines(text: str) -> str:
    """Old Excel for Mac ends lines with CR only: make them LF so every parser sees the rows."""
    sample = text[:SAMPLE_BYTES]
    if sample.count("\r") > sample.count("\n"):
        return text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _csv_header_line(text: str, header_row: int | None, columns: ColumnMap | None) -> int:
    """0-based line of the header: ``read.header_row``, else the first of the first lines that
    fits the mapping (title rows above it are skipped), else the first line."""
    if header_row is not None:
        return header_row - 1
    for i, line in enumerate(text[:SAMPLE_BYTES].split("\n")[:HEADER_SCAN_ROWS]):
        for sep in DELIMITERS:
            try:
                cells = next(csv.reader([line.rstrip("\r")], delimiter=sep), [])
            except csv.Error:
                continue
            if len(cells) > 1 and _header_fits(tuple(c.strip() for c in cells), columns):
                return i
    return 0


def _drop_lines(text: str, n: int) -> str:
    """``text`` without its first ``n`` lines."""
    pos = 0
    for _ in range(n):
        nxt = text.find("\n", pos)
        if nxt < 0:
            return ""
        pos = nxt + 1
    return text[pos:]


def _header_fits(cells: tuple[str, ...], columns: ColumnMap | None) -> bool:
    """True when a row of cells holds the configured headers, or a known layout's."""
    if columns is not None:
        return set(columns.as_dict().values()) <= set(cells)
    return any(_layout_mapping(n, layout, cells) for n, layout in KNOWN_LAYOUTS.items())


def _raw_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped if needed, refusing binary content."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise SegworkInputError(f"{path}: corrupt gzip file ({_first_line(exc)})") from None
        if not data:
            raise SegworkInputError(f"{path}: gzip file contains no data")
    elif path.name.lower().endswith(".gz"):
        raise SegworkInputError(f"{path}: not a gzip file although it ends in .gz")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data  # UTF-16 with BOM (Excel "Unicode text"): NUL bytes are expected
    _reject_binary(path, data[:SAMPLE_BYTES])
    return data


def _reject_binary(path: Path, sample: bytes) -> None:
    """Refuse files whose first bytes show they are not text (zip, Parquet, random bytes)."""
    if sample.startswith(b"PK\x03\x04"):
        raise SegworkInputError(f"{path}: this is a zip/Excel file, not CSV; save it as .xlsx")
    if sample.startswith(b"PAR1"):
        raise SegworkInputError(f"{path}: this is a Parquet file, not CSV; rename it .parquet")
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 13)) + sample.count(127)
    if b"\x00" in sample or controls > max(8, len(sample) // 100):
        raise SegworkInputError(
            f"{path}: binary content ({controls} control bytes in the first {len(sample)}); "
            "not a text CSV file"
        )


def _decode(path: Path, data: bytes, encoding: str) -> tuple[str, str]:
    """Decode the whole file; ``auto`` tries UTF-8 (BOM or not), CP949 then Latin-1."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") and encoding.lower() in ("auto", "utf-16"):
        return _decode_with(path, data, "utf-16"), "utf-16"
    if encoding.lower() != "auto":
        codec = _codec_name(path, encoding)
        text = _decode_with(path, data, codec)
        return text, _reported_encoding(codec, data)
    for codec in AUTO_ENCODINGS:
        try:
            codecs.getincrementaldecoder(codec)().decode(data[:SAMPLE_BYTES], final=False)
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        return text, _reported_encoding(codec, data)
    raise SegworkInputError(f"{path}: could not decode the file as {', '.join(AUTO_ENCODINGS)}")


def _codec_name(path: Path, encoding: str) -> str:
    """Python's codec for a configured encoding; UTF-8 strips a BOM, EUC-KR means CP949."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise SegworkInputError(
            f"{path}: unknown encoding {encoding!r} in read.encoding; use auto, utf-8, cp949 or latin-1"
        ) from None
    return {"utf-8": "utf-8-sig", "euc_kr": "cp949"}.get(name, name)


def _reported_encoding(codec: str, data: bytes) -> str:
    """The encoding to report: 'utf-8-sig' only when a BOM was actually there."""
    if codec == "utf-8-sig" and not data.startswith(codecs.BOM_UTF8):
        return "utf-8"
    return codec


def _decode_with(path: Path, data: bytes, codec: str) -> str:
    """Decode strictly, naming the line of the first bad byte."""
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start : exc.start + 1].hex()
        raise SegworkInputError(
            f"{path}: not valid {codec} (byte 0x{bad} on line {line}); "
            "set read.encoding to the file's encoding, or auto"
        ) from None


def _sniff_delimiter(sample: str, default: str = ",") -> str:
    """The delimiter giving the most rows with the header's field count (and >1 field)."""
    cut = sample.rfind("\n")
    sample = sample[:cut] if cut > 0 else sample
    best, best_score = default, (0.0, 0)
    for sep in DELIMITERS:
        rows = [r for r in csv.reader(io.StringIO(sample), delimiter=sep) if r]
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        score = (sum(len(r) == width for r in rows) / len(rows), width)
        if score > best_score:
            best, best_score = sep, score
    return best


def _check_duplicate_headers(path: Path, text: str, sep: str) -> None:
    """Refuse a header row naming the same column twice (pandas would silently rename one)."""
    header = next(csv.reader(io.StringIO(text[:SAMPLE_BYTES]), delimiter=sep), [])
    names = [h.strip() for h in header if h.strip()]
    dupes = sorted({h for h in names if names.count(h) > 1})
    if dupes:
        raise SegworkInputError(f"{path}: header {dupes[0]!r} appears more than once")


# --------------------------------------------------------------------------- excel


def _read_excel(path: Path, opts: ReadOptions, columns: ColumnMap | None) -> _Book:
    """Read the workbook's sheets with calamine, cut each at its header row and stack them.

    By default every sheet with the same header as the first one that fits the mapping is read
    (Online Retail II ships as two yearly sheets); sheets with another header are left out and
    named in ``_Book.skipped``. With ``read.sheet`` the sheets named must share one header.
    """
    try:
        with pd.ExcelFile(path, engine="calamine") as book:
            names = [str(s) for s in book.sheet_names]
            wanted = _pick_sheets(path, opts.sheet, names)
            raws = {
                name: pd.read_excel(book, sheet_name=name, header=None, dtype=object)
                for name in wanted
            }
    except SegworkInputError:
        raise
    except Exception as exc:  # calamine raises its own error types for corrupt workbooks
        raise SegworkInputError(
            f"{path}: not a readable Excel workbook ({_first_line(exc)})"
        ) from None
    sheets = {
        name: _cut_sheet(path, name, raw, opts.header_row, columns, strict=opts.sheet is not None)
        for name, raw in raws.items()
    }
    skipped: list[str] = []
    if opts.sheet is None or opts.sheet == "all":
        present = {k: v for k, v in sheets.items() if v is not None}
        if not present:
            raise SegworkInputError(f"{path}: every sheet is empty ({', '.join(names)})")
        if opts.sheet is None:
            first = next((k for k, v in present.items() if v.fits), next(iter(present)))
            same = set(present[first].frame.columns)
            skipped = [k for k, v in present.items() if set(v.frame.columns) != same]
            present = {k: v for k, v in present.items() if k not in skipped}
        sheets = present
    for name, sheet in sheets.items():
        if sheet is None:
            raise SegworkInputError(f"{path}: sheet {name!r} is empty")
    frames = {name: sheet.frame for name, sheet in sheets.items() if sheet is not None}
    _check_sheet_headers(path, frames)
    df = (
        pd.concat(list(frames.values()), ignore_index=True)
        if len(frames) > 1
        else next(iter(frames.values())).reset_index(drop=True)
    )
    if df.empty:
        raise SegworkInputError(
            f"{path}: sheet(s) {', '.join(frames)} have a header but no data rows"
        )
    first_sheet = next(iter(sheets.values()))
    assert first_sheet is not None
    return _Book(df, tuple(frames), tuple(skipped), first_sheet.header_row)


def _cut_sheet(
    path: Path,
    name: str,
    raw: pd.DataFrame,
    header_row: int | None,
    columns: ColumnMap | None,
    strict: bool,
) -> _Sheet | None:
    """The sheet below its header row (given, or the first that fits the mapping); None if empty.

    ``raw`` is read with ``header=None``, so its index is the sheet's row number minus one.
    Empty rows are dropped (as in CSV) and so are unnamed columns with nothing in them. A
    ``read.header_row`` that is empty on this sheet is an error only for sheets named in config.
    """
    raw = raw.dropna(how="all")
    if raw.empty:
        return None
    if header_row is not None:
        at = header_row - 1
        if at not in raw.index and not strict:
            return _Sheet(pd.DataFrame(), header_row, False)  # left out as a different header
        if at not in raw.index:
            raise SegworkInputError(
                f"{path}: read.header_row {header_row}: row {header_row} of sheet {name!r} is empty"
            )
        fits = True
    else:
        head = raw.head(HEADER_SCAN_ROWS)
        rows = {label: tuple(_header_text(v) for v in row) for label, row in head.iterrows()}
        found = [label for label, cells in rows.items() if _header_fits(cells, columns)]
        at, fits = (found[0], True) if found else (raw.index[0], False)
    body = raw.loc[raw.index > at]
    body.columns = _column_names([_header_text(v) for v in raw.loc[at]])
    blank = [c for c in body.columns if c.startswith("Unnamed: ") and body[c].isna().all()]
    return _Sheet(body.drop(columns=blank), int(at) + 1, fits)


def _header_text(value: Any) -> str:
    """A header cell as text: '' for empty, 2024 (a number cell) as '2024'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return (_cell_text(value) or "").strip()


def _column_names(cells: list[str]) -> list[str]:
    """Header cells as unique column names, the way pandas makes them ('Unnamed: 3', 'X.1')."""
    names: list[str] = []
    for i, cell in enumerate(cells):
        name, k = cell or f"Unnamed: {i}", 0
        while name in names:
            k += 1
            name = f"{cell}.{k}"
        names.append(name)
    return names


def _excel_types(df: pd.DataFrame, ids: set[str]) -> pd.DataFrame:
    """Type the raw cells: ID columns as text, all-number columns as numbers, all-date columns
    as timestamps, anything mixed as text (dates in ISO form) for the text parsers."""
    out = df.copy()
    for col in out.columns:
        if col == ROW_ID_COLUMN:
            continue
        values = out[col]
        kind = pd.api.types.infer_dtype(values, skipna=True)
        if kind in ("string", "empty"):  # all text cells: no per-cell work
            out[col] = values.astype("str")
        elif col in ids:
            out[col] = pd.Series([_id_text(v) for v in values], index=out.index, dtype="str")
        elif kind in ("integer", "floating", "mixed-integer-float", "decimal"):
            out[col] = pd.to_numeric(values)
        elif kind in ("datetime", "datetime64"):
            out[col] = pd.to_datetime(values)
        else:
            out[col] = pd.Series([_cell_text(v) for v in values], index=out.index, dtype="str")
    return out


def _id_text(value: Any) -> str | None:
    """An ID cell as the CSV export writes it: text as typed ('000123'), 17850.0 as '17850'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return _cell_text(value)


def _skipped_note(path: Path, book: _Book) -> str:
    """The warning for sheets left out of a workbook."""
    left = ", ".join(repr(s) for s in book.skipped)
    read = ", ".join(repr(s) for s in book.sheets)
    return (
        f"{path}: skipped sheet(s) {left}: their header differs from the data sheet(s) {read}; "
        "name the sheets to read with read.sheet"
    )


def _pick_sheets(path: Path, sheet: Any, names: list[str]) -> list[str]:
    """Resolve ``read.sheet`` (None, name, index, list or 'all') to sheet names."""
    if not names:
        raise SegworkInputError(f"{path}: workbook has no sheets")
    if sheet is None or sheet == "all":
        return list(names)
    items = sheet if isinstance(sheet, list | tuple) else [sheet]
    picked: list[str] = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            if not -len(names) <= item < len(names):
                raise SegworkInputError(
                    f"{path}: read.sheet index {item} out of range; sheets are {', '.join(names)}"
                )
            picked.append(names[item])
        elif str(item) in names:
            picked.append(str(item))
        else:
            close = difflib.get_close_matches(str(item), names, n=1, cutoff=0.5)
            tip = f"; closest: {close[0]!r}?" if close else ""
            raise SegworkInputError(
                f"{path}: sheet {item!r} not found; sheets are {', '.join(names)}{tip}"
            )
    return list(dict.fromkeys(picked))


def _check_sheet_headers(path: Path, frames: dict[str, pd.DataFrame]) -> None:
    """Several sheets can only be stacked when they have the same headers."""
    items = list(frames.items())
    first_name, first = items[0]
    for name, frame in items[1:]:
        lacks = [c for c in first.columns if c not in set(frame.columns)]
        extra = [c for c in frame.columns if c not in set(first.columns)]
        if lacks or extra:
            parts = ([f"lacks {', '.join(map(str, lacks))}"] if lacks else []) + (
                [f"has extra {', '.join(map(str, extra))}"] if extra else []
            )
            raise SegworkInputError(
                f"{path}: sheets {first_name!r} and {name!r} have different headers "
                f"({name!r} {' and '.join(parts)}); pick one with read.sheet or align the headers"
            )


def _cell_text(value: Any) -> str | None:
    """A mixed-type Excel cell as text (dates in ISO form), or None when empty."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dt.datetime | pd.Timestamp):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


# --------------------------------------------------------------------------- mapping


def _resolve_mapping(
    path: Path, headers: tuple[str, ...], columns: ColumnMap | None
) -> tuple[str, dict[str, str]]:
    """Canonical name -> header, from the config or a recognised layout."""
    if columns is not None:
        mapping = columns.as_dict()
        for canon, header in mapping.items():
            if header not in headers:
                raise SegworkInputError(
                    f"{path}: configured header columns.{canon} = {header!r} is not in the file; "
                    f"headers are {_show_headers(headers)}{_closest_tip([header], headers)}"
                )
        _check_config_complete(path, mapping)
        return "config", _ordered(mapping)
    for name, layout in KNOWN_LAYOUTS.items():
        mapping = _layout_mapping(name, layout, headers)
        if mapping is not None:
            return name, mapping
    raise _no_layout_error(path, headers)


def _ordered(mapping: dict[str, str]) -> dict[str, str]:
    """The mapping in canonical column order."""
    return {c: mapping[c] for c in CANONICAL if c in mapping}


def _check_config_complete(path: Path, mapping: dict[str, str]) -> None:
    """A hand-built ColumnMap must still map the required columns and something to price."""
    for canon in REQUIRED:
        if canon not in mapping:
            raise SegworkInputError(f"{path}: columns.{canon} is not mapped in the config")
    if "amount" not in mapping and not {"quantity", "unit_price"} <= set(mapping):
        raise SegworkInputError(
            f"{path}: map columns.amount, or both columns.quantity and columns.unit_price"
        )


def _layout_mapping(
    name: str, layout: dict[str, str], headers: tuple[str, ...]
) -> dict[str, str] | None:
    """The mapping if the headers fit this layout, else None."""
    present = set(headers)
    if name != "segwork":
        return _ordered(dict(layout)) if set(layout.values()) <= present else None
    mapping = {c: c for c in CANONICAL if c in present}
    complete = set(REQUIRED) <= set(mapping) and (
        "amount" in mapping or {"quantity", "unit_price"} <= set(mapping)
    )
    return mapping if complete else None


def _layout_missing(name: str, layout: dict[str, str], headers: tuple[str, ...]) -> dict[str, str]:
    """Canonical -> expected header for what this layout needs but the file lacks."""
    present = set(headers)
    if name != "segwork":
        return {c: h for c, h in layout.items() if h not in present}
    need = list(REQUIRED) + ([] if "amount" in present else ["quantity", "unit_price"])
    return {c: c for c in need if c not in present}


def _no_layout_error(path: Path, headers: tuple[str, ...]) -> SegworkInputError:
    """Name the nearest layout, what it lacks, and the closest headers to map instead."""
    scored = []
    for name, layout in KNOWN_LAYOUTS.items():
        missing = _layout_missing(name, layout, headers)
        found = sum(h in set(headers) for h in layout.values())
        scored.append((-found, len(missing), name, missing))
    _, _, nearest, missing = min(scored, key=lambda s: (s[0], s[1]))
    lacks = ", ".join(repr(h) for h in missing.values())
    shown = _show_headers(headers)
    for canon in REQUIRED:
        aliases = [layout[canon] for layout in KNOWN_LAYOUTS.values() if canon in layout]
        if not set(aliases) & set(headers):
            return SegworkInputError(
                f"{path}: required column {canon!r} not found; headers are {shown}"
                f"{_closest_tip(aliases, headers)}; map it in config.yaml under columns.{canon} "
                f"(nearest known layout {nearest!r} lacks {lacks})"
            )
    tips = "".join(
        f"; for {h!r}{_closest_tip([h], headers, prefix=' ')}"
        for h in missing.values()
        if _closest_tip([h], headers)
    )
    return SegworkInputError(
        f"{path}: headers match no known layout; nearest is {nearest!r}, which lacks {lacks}"
        f"{tips}; headers are {shown}; map the columns in config.yaml under columns"
    )


def _closest_tip(wanted: list[str], headers: tuple[str, ...], prefix: str = "; ") -> str:
    """'; closest: 'X'?' for the header most like any of ``wanted`` (case-insensitive)."""
    lowered = {str(h).lower(): str(h) for h in headers}
    best: tuple[float, str] | None = None
    for word in wanted:
        for match in difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.5):
            ratio = difflib.SequenceMatcher(None, word.lower(), match).ratio()
            if best is None or ratio > best[0]:
                best = (ratio, lowered[match])
    return f"{prefix}closest: {best[1]!r}?" if best else ""


# --------------------------------------------------------------------------- frame -> duckdb


def _used_columns(df: pd.DataFrame, mapping: dict[str, str]) -> pd.DataFrame:
    """Only the mapped columns plus a 1-based row number, so little memory stays pinned."""
    used = list(dict.fromkeys(mapping.values()))
    out = df[used].copy() if used != list(df.columns) else df
    out.insert(0, ROW_ID_COLUMN, np.arange(1, len(out) + 1, dtype=np.int64))
    return out


def _register_frame(con: duckdb.DuckDBPyConnection, name: str, df: pd.DataFrame) -> _Relation:
    """Register the frame on the connection (which keeps it alive) and describe its columns."""
    con.register(name, df)
    described = con.execute(f"DESCRIBE SELECT * FROM {_ident(name)}").fetchall()
    types = {str(r[0]): str(r[1]) for r in described if r[0] != ROW_ID_COLUMN}
    return _Relation(sql=_ident(name), row_id=_ident(ROW_ID_COLUMN), types=types)


def _unregister(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop a frame registered by an earlier call for the same view."""
    with contextlib.suppress(duckdb.Error):
        con.unregister(name)


# --------------------------------------------------------------------------- expressions


def _kind(duck_type: str) -> str:
    """'temporal', 'numeric' or 'text' for a DuckDB column type."""
    t = duck_type.upper()
    if t.startswith("TIMESTAMP") or t == "DATE":
        return "temporal"
    if t in NUMERIC_TYPES or t.startswith("DECIMAL"):
        return "numeric"
    return "text"


def _text(header: str, duck_type: str) -> str:
    """The column as VARCHAR."""
    col = _ident(header)
    return col if duck_type.upper() == "VARCHAR" else f"CAST({col} AS VARCHAR)"


def _trimmed(header: str, duck_type: str) -> str:
    """The column as trimmed VARCHAR."""
    return f"trim({_text(header, duck_type)})"


def _is_na(value: str) -> str:
    """SQL true when trimmed text is empty or an NA marker ('nan', 'NULL', '#N/A', ...)."""
    tokens = ", ".join(_lit(t) for t in NA_TOKENS)
    return f"({value} = '' OR lower({value}) IN ({tokens}))"


def _bad_text(value: str, parsed: str) -> str:
    """SQL true when non-missing text failed to parse (trim and NA test run only on failures)."""
    return f"({parsed} IS NULL AND {value} IS NOT NULL AND NOT {_is_na(f'trim({value})')})"


def _ungrouped(value: str, thousands: str | None) -> str:
    """Text with thousands separators dropped ('.' means decimal comma: '1.234,5' -> '1234.5')."""
    if thousands == ".":
        return f"replace(replace({value}, '.', ''), ',', '.')"
    if thousands:
        return f"replace({value}, {_lit(thousands)}, '')"
    return value


def _number_sql(value: str, thousands: str | None) -> str:
    """Parse text as DOUBLE; failing that, as money with a currency ('₩12,900', '1,200 원').

    The money branch runs only on values the plain cast rejects, so clean files stay fast. With a
    currency and no ``read.thousands``, commas count as thousands separators only in a strict
    grouping ('12,900', '1,234.50'): these currencies write no decimal comma.
    """
    plain = f"NULLIF(TRY_CAST({_ungrouped(value, thousands)} AS DOUBLE), 'NaN'::DOUBLE)"
    head = _lit(f"^{_BLANK}([+-]?){_BLANK}{CURRENCY}{_BLANK}")
    tail = _lit(f"{_BLANK}{CURRENCY}{_BLANK}$")
    bare = f"regexp_replace(regexp_replace({value}, {head}, '\\1'), {tail}, '')"
    if thousands:
        number = _ungrouped(bare, thousands)
    else:
        grouped = _lit(r"[+-]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?")
        number = f"CASE WHEN regexp_full_match({bare}, {grouped}) THEN replace({bare}, ',', '') ELSE {bare} END"
    money = f"CASE WHEN {bare} <> {value} THEN TRY_CAST({number} AS DOUBLE) END"
    # CASE, not COALESCE: DuckDB evaluates a CASE branch only for the rows that reach it.
    return f"CASE WHEN {plain} IS NULL THEN {money} ELSE {plain} END"


def _date_sql(value: str, formats: tuple[str, ...] | None) -> str:
    """Parse text as TIMESTAMP: ISO via CAST, else TRY_STRPTIME over ``formats``.

    A UTC offset in ISO text is dropped and the clock time kept as written ('00:30+09:00' is
    00:30), so each row stays on the calendar day the shop recorded. For ``%p`` the Korean
    오전/오후 are read as AM/PM (12 오전 is 00h, 12 오후 is noon).
    """
    if formats is None:
        return f"TRY_CAST({value} AS TIMESTAMP)"
    if any("%p" in f for f in formats):
        for korean, latin in MERIDIEM:
            value = f"replace({value}, {_lit(korean)}, {_lit(latin)})"
    listed = ", ".join(_lit(f) for f in formats)
    fmt = _lit(formats[0]) if len(formats) == 1 else f"[{listed}]"
    return f"CAST(TRY_STRPTIME({value}, {fmt}) AS TIMESTAMP)"


def _column_exprs(
    path: Path,
    con: duckdb.DuckDBPyConnection,
    rel: _Relation,
    mapping: dict[str, str],
    opts: ReadOptions,
) -> tuple[dict[str, str], _Dates]:
    """SQL for each canonical column, after validating dates and numbers in text columns."""
    exprs: dict[str, str] = {"row_id": rel.row_id}
    for canon in ("invoice_id", "product_id", "product_name", "country"):
        header = mapping.get(canon)
        exprs[canon] = _text(header, rel.types[header]) if header else "NULL"
    status = mapping.get("status")
    exprs["status"] = (
        f"NULLIF({_trimmed(status, rel.types[status])}, '')" if status is not None else "NULL"
    )
    exprs["customer_id"] = _customer_expr(
        mapping["customer_id"], rel.types[mapping["customer_id"]], rel.typed
    )
    dates = _date_expr(path, con, rel, mapping["invoice_date"], opts.date_format)
    exprs["invoice_date"] = dates.expr
    for canon in ("quantity", "unit_price", "amount"):
        header = mapping.get(canon)
        exprs[canon] = _number_expr(path, con, rel, header, opts.thousands) if header else "NULL"
    return exprs, dates


def _customer_expr(header: str, duck_type: str, typed: bool = False) -> str:
    """Trimmed ID, NA markers -> NULL, and '17850.0' -> '17850' (pandas' float IDs).

    A Parquet text ID is taken as stored (only '' counts as missing): per-row trimming and
    pattern tests would triple the cost of the 10M-row scan, and typed files rarely need them.
    A float-typed ID column is still rendered without its '.0'.
    """
    if typed and duck_type.upper() == "VARCHAR":
        return f"NULLIF({_ident(header)}, '')"
    value = _trimmed(header, duck_type)
    if _kind(duck_type) == "numeric" and not duck_type.upper().startswith(
        ("FLOAT", "DOUBLE", "REAL", "DECIMAL")
    ):
        return value
    return (
        f"regexp_replace(CASE WHEN {_is_na(value)} THEN NULL ELSE {value} END, "
        "'^([0-9]+)\\.0+$', '\\1')"
    )


def _number_expr(
    path: Path, con: duckdb.DuckDBPyConnection, rel: _Relation, header: str, thousands: str | None
) -> str:
    """DOUBLE SQL for a number column; text columns are checked for unparsable values."""
    duck_type = rel.types[header]
    if _kind(duck_type) == "numeric":
        return f"CAST({_ident(header)} AS DOUBLE)"
    value = _text(header, duck_type)  # DuckDB casts ignore surrounding spaces
    expr = _number_sql(value, thousands)
    cond = _bad_text(value, expr)
    bad = _bad_values(con, rel, header, cond)
    if bad:
        looks_grouped = any("," in v and any(ch.isdigit() for ch in v) for _, v in bad)
        hint = (
            "set read.thousands in the config"
            if looks_grouped and not thousands
            else "fix them or map another column"
        )
        raise SegworkInputError(
            f"{path}: column {header!r} has {_values(_count_where(con, rel, cond), 'number')}, "
            f"e.g. {_examples(bad)}; {hint}"
        )
    return expr


def _date_expr(
    path: Path,
    con: duckdb.DuckDBPyConnection,
    rel: _Relation,
    header: str,
    date_format: str | None,
) -> _Dates:
    """TIMESTAMP SQL for the date column; text is parsed with the given or detected format.

    Detection refuses dates that two orders read differently ('01/12/2011' with every day <= 12);
    a given ``read.date_format`` settles it, with a warning that the data were ambiguous.
    """
    duck_type = rel.types[header]
    if _kind(duck_type) == "temporal":
        col = _ident(header)
        if "TIME ZONE" in duck_type.upper():  # not the session's zone: the same on every machine
            return _Dates(f"timezone('UTC', {col})", f"{PARQUET_DATES} (in UTC)")
        return _Dates(f"CAST({col} AS TIMESTAMP)", PARQUET_DATES if rel.typed else EXCEL_DATES)
    value = _text(header, duck_type)  # casts and strptime ignore surrounding spaces
    if date_format:
        _check_date_format(path, con, date_format)
        expr = _date_sql(value, (date_format,))
        _raise_bad_dates(path, con, rel, header, _bad_text(value, expr), None)
        return _Dates(expr, date_format, _ambiguity_warning(path, con, rel, header, date_format))
    formats = _detect_date_format(path, con, rel, header, value)
    return _Dates(_date_sql(value, formats), _format_label(con, rel, header, formats))


def _check_date_format(path: Path, con: duckdb.DuckDBPyConnection, date_format: str) -> None:
    """Refuse a strftime pattern DuckDB cannot use."""
    try:
        con.execute("SELECT TRY_STRPTIME('2000-01-01', ?)", [date_format]).fetchall()
    except duckdb.Error as exc:
        raise SegworkInputError(
            f"{path}: read.date_format {date_format!r} is not a valid pattern ({_first_line(exc)})"
        ) from None


def _plausible(expr: str) -> str:
    """The parsed date, or NULL when its year is unlikely (``%Y`` happily reads '10')."""
    lo, hi = PLAUSIBLE_YEARS
    return (
        f"(CASE WHEN {expr} BETWEEN TIMESTAMP '{lo}-01-01' AND TIMESTAMP '{hi}-12-31' THEN 1 END)"
    )


def _sample_fails(
    path: Path, con: duckdb.DuckDBPyConnection, rel: _Relation, header: str, value: str
) -> list[int]:
    """Per date family, how many values of a sample of the column it fails to parse.

    A column with no values at all is an error: nothing to detect, nothing to keep.
    """
    sample = (
        f"(SELECT {value} AS v FROM {rel.sql} WHERE {_ident(header)} IS NOT NULL "
        f"AND NOT {_is_na(f'trim({value})')} LIMIT {DATE_SAMPLE_ROWS})"
    )
    fails = ", ".join(
        f"count(*) FILTER (WHERE {_plausible(_date_sql('v', f))} IS NULL)" for _, f in DATE_FAMILIES
    )
    row = _one(con, f"SELECT count(*), {fails} FROM {sample}")
    if row[0] == 0:
        raise SegworkInputError(f"{path}: date column {header!r} has no values")
    return [int(n) for n in row[1:]]


def _parses_all(
    con: duckdb.DuckDBPyConnection,
    rel: _Relation,
    header: str,
    value: str,
    formats: tuple[str, ...] | None,
) -> bool:
    """True when the family reads every non-missing value (stops at the first failure)."""
    cond = _bad_text(value, _plausible(_date_sql(value, formats)))
    return not con.execute(f"SELECT 1 FROM {rel.sql} WHERE {cond} LIMIT 1").fetchall()


def _families_parsing_all(
    path: Path, con: duckdb.DuckDBPyConnection, rel: _Relation, header: str, value: str
) -> tuple[list[int], list[int]]:
    """Families (indices) that read the whole column, and all families, fewest sample fails first."""
    fails = _sample_fails(path, con, rel, header, value)
    order = sorted(range(len(DATE_FAMILIES)), key=lambda i: fails[i])
    fits = [
        i
        for i in order
        if not fails[i] and _parses_all(con, rel, header, value, DATE_FAMILIES[i][1])
    ]
    return fits, order


def _detect_date_format(
    path: Path, con: duckdb.DuckDBPyConnection, rel: _Relation, header: str, value: str
) -> tuple[str, ...] | None:
    """The date family parsing every value; an error when none does or two read them differently."""
    fits, order = _families_parsing_all(path, con, rel, header, value)
    if not fits:
        label, formats = DATE_FAMILIES[order[0]]
        cond = _bad_text(value, _plausible(_date_sql(value, formats)))
        _raise_bad_dates(path, con, rel, header, cond, label)
    first = DATE_FAMILIES[fits[0]][1]
    for other in fits[1:]:
        clash = _first_clash(con, rel, header, value, first, DATE_FAMILIES[other][1])
        if clash is not None:
            row, raw, one, two = clash
            f1 = _format_of_value(con, raw, first)
            f2 = _format_of_value(con, raw, DATE_FAMILIES[other][1])
            raise SegworkInputError(
                f"{path}: column {header!r} has dates that read two ways, e.g. row {row}: "
                f"{raw!r} is {_show_ts(one)} as {f1!r} or {_show_ts(two)} as {f2!r}; "
                f"set read.date_format to the file's order ({f1!r} or {f2!r}) in the config"
            )
    return first


def _first_clash(
    con: duckdb.DuckDBPyConnection,
    rel: _Relation,
    header: str,
    value: str,
    one: tuple[str, ...] | None,
    two: tuple[str, ...] | None,
) -> tuple[int, str, dt.datetime, dt.datetime] | None:
    """The first (row, raw text, reading one, reading two) where two parsings disagree."""
    a, b = _date_sql(value, one), _date_sql(value, two)
    found = con.execute(
        f"SELECT {rel.row_id} AS row_id, {_text(header, rel.types[header])}, {a}, {b} "
        f"FROM {rel.sql} WHERE {a} IS DISTINCT FROM {b} ORDER BY row_id LIMIT 1"
    ).fetchall()
    return (int(found[0][0]), str(found[0][1]), found[0][2], found[0][3]) if found else None


def _ambiguity_warning(
    path: Path, con: duckdb.DuckDBPyConnection, rel: _Relation, header: str, date_format: str
) -> tuple[Notice, ...]:
    """('ambiguous_dates', ...) when a detected order also reads every value, differently."""
    value = _text(header, rel.types[header])
    fits, _ = _families_parsing_all(path, con, rel, header, value)
    for i in fits:
        clash = _first_clash(con, rel, header, value, (date_format,), DATE_FAMILIES[i][1])
        if clash is not None:
            row, raw, mine, other = clash
            fmt = _format_of_value(con, raw, DATE_FAMILIES[i][1])
            return (
                (
                    "ambiguous_dates",
                    f"{path}: column {header!r}: every date also reads as {fmt!r}, e.g. row {row}: "
                    f"{raw!r} is {_show_ts(mine)} with read.date_format {date_format!r} but "
                    f"{_show_ts(other)} as {fmt!r}; check that read.date_format is the file's order",
                    {
                        "column": repr(header),
                        "row": row,
                        "raw": repr(raw),
                        "value": _show_ts(mine),
                        "other": _show_ts(other),
                        "other_format": repr(fmt),
                    },
                ),
            )
    return ()


def _format_of_value(
    con: duckdb.DuckDBPyConnection, raw: str, formats: tuple[str, ...] | None
) -> str:
    """The pattern of ``formats`` that reads ``raw`` (to quote in a message or SourceInfo)."""
    if formats is None:
        return ISO_LABEL
    for fmt in formats:
        if _one(con, f"SELECT {_date_sql(_lit(raw), (fmt,))} IS NOT NULL")[0]:
            return fmt
    return formats[0]


def _format_label(
    con: duckdb.DuckDBPyConnection, rel: _Relation, header: str, formats: tuple[str, ...] | None
) -> str:
    """The detected format as SourceInfo reports it: 'ISO 8601' or the first value's pattern."""
    if formats is None:
        return ISO_LABEL
    raw = _text(header, rel.types[header])
    first = con.execute(
        f"SELECT {raw} FROM {rel.sql} WHERE {_date_sql(raw, formats)} IS NOT NULL LIMIT 1"
    ).fetchall()
    return _format_of_value(con, str(first[0][0]), formats) if first else formats[0]


def _show_ts(value: dt.datetime) -> str:
    """A timestamp for a message: the date alone at midnight, else to the minute (or second)."""
    if value.time() == dt.time(0):
        return value.date().isoformat()
    return value.strftime("%Y-%m-%d %H:%M" + (":%S" if value.second else ""))


def _raise_bad_dates(
    path: Path,
    con: duckdb.DuckDBPyConnection,
    rel: _Relation,
    header: str,
    cond: str,
    label: str | None,
) -> None:
    """Raise naming rows whose date text does not parse, if there are any."""
    bad = _bad_values(con, rel, header, cond)
    if not bad:
        return
    most = f"; most values look like {label}" if label else ""
    raise SegworkInputError(
        f"{path}: column {header!r} has {_values(_count_where(con, rel, cond), 'date')}, "
        f"e.g. {_examples(bad)}{most}; set read.date_format in the config"
    )


def _bad_values(
    con: duckdb.DuckDBPyConnection, rel: _Relation, header: str, cond: str, limit: int = 3
) -> list[tuple[int, str]]:
    """The first few (row, raw text) where ``cond`` holds."""
    raw = _text(header, rel.types[header])
    return [
        (int(r[0]), str(r[1]))
        for r in con.execute(
            f"SELECT {rel.row_id} AS row_id, {raw} AS raw FROM {rel.sql} "
            f"WHERE {cond} ORDER BY row_id LIMIT {limit}"
        ).fetchall()
    ]


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    """The single row of an aggregate query, fully fetched (DuckDB 2 keeps a half-read result
    open and then refuses ``register``/``unregister`` on the connection)."""
    return tuple(con.execute(sql).fetchall()[0])


def _count_where(con: duckdb.DuckDBPyConnection, rel: _Relation, cond: str) -> int:
    """How many rows satisfy ``cond`` (only run once a problem is known)."""
    return int(_one(con, f"SELECT count(*) FROM {rel.sql} WHERE {cond}")[0])


def _values(count: int, noun: str) -> str:
    """'2 values that are not dates': the wording other code and tests match on, even for 1."""
    return f"{count} values that are not {noun}s"


def _examples(bad: list[tuple[int, str]]) -> str:
    """'row 3: 'x', row 7: 'y'' for an error message."""
    return ", ".join(f"row {row}: {value!r}" for row, value in bad)


# --------------------------------------------------------------------------- the view


def create_text_view(
    path: Path,
    con: duckdb.DuckDBPyConnection,
    relation: str,
    row_id: str,
    mapping: dict[str, str],
    opts: ReadOptions,
    view: str = TX,
) -> tuple[str | None, tuple[Notice, ...]]:
    """The canonical view over ``relation``, whose mapped columns are text (a CSV another engine
    read): checked and parsed as :func:`open_source` does a CSV; returns the date format found
    and its warnings. ``con`` is anything with DuckDB's ``execute`` (the Spark engine's too)."""
    types = {h: "VARCHAR" for h in mapping.values()}
    rel = _Relation(sql=relation, row_id=row_id, types=types)
    exprs, dates = _column_exprs(path, con, rel, mapping, opts)
    _create_view(con, view, rel, exprs, table=f"__segwork_src_{view}")
    return dates.label, dates.warnings


def _create_view(
    con: duckdb.DuckDBPyConnection,
    view: str,
    rel: _Relation,
    exprs: dict[str, str],
    table: str | None,
) -> None:
    """CREATE OR REPLACE TEMP VIEW with the canonical columns, deriving amount/quantity/price.

    With ``table`` the parsed columns are first stored in that temp table (CSV and Excel), so
    later queries do not re-parse text; Parquet stays a lazy, streaming view.
    """
    q, p, a = exprs["quantity"], exprs["unit_price"], exprs["amount"]
    has_q, has_p = q != "NULL", p != "NULL"
    if a == "NULL":
        amount, quantity, price = "_q * _p", "_q", "_p"
    else:
        amount = "_a"
        quantity = "_q" if has_q else ("_a / NULLIF(_p, 0)" if has_p else "1")
        price = "_p" if has_p else ("_a / NULLIF(_q, 0)" if has_q else "_a")
    invoice = (
        exprs["invoice_id"] if exprs["invoice_id"] != "NULL" else f"CAST({rel.row_id} AS VARCHAR)"
    )
    inner = ",\n  ".join(
        [
            f"CAST({exprs['row_id']} AS BIGINT) AS _row",
            f"CAST({invoice} AS VARCHAR) AS _invoice",
            f"CAST({exprs['customer_id']} AS VARCHAR) AS _customer",
            f"CAST({exprs['invoice_date']} AS TIMESTAMP) AS _date",
            f"CAST({q} AS DOUBLE) AS _q",
            f"CAST({p} AS DOUBLE) AS _p",
            f"CAST({a} AS DOUBLE) AS _a",
            f"CAST({exprs['product_id']} AS VARCHAR) AS _product_id",
            f"CAST({exprs['product_name']} AS VARCHAR) AS _product_name",
            f"CAST({exprs['country']} AS VARCHAR) AS _country",
            f"CAST({exprs['status']} AS VARCHAR) AS _status",
        ]
    )
    inner_sql = f"SELECT\n  {inner}\nFROM {rel.sql}"
    if table is not None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_ident(table)} AS {inner_sql}")
        source = _ident(table)
    else:
        source = f"({inner_sql}) AS _src"
    outer_src = {
        "row_id": "_row",
        "invoice_id": "_invoice",
        "customer_id": "_customer",
        "invoice_date": "_date",
        "quantity": quantity,
        "unit_price": price,
        "amount": amount,
        "product_id": "_product_id",
        "product_name": "_product_name",
        "country": "_country",
        "status": "_status",
    }
    outer = ",\n  ".join(f"CAST({outer_src[c]} AS {t}) AS {c}" for c, t in VIEW_TYPES)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {_ident(view)} AS SELECT\n  {outer}\nFROM {source}")
