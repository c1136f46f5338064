"""The Spark engine's readers: Parquet, CSV (plain or gzipped, a file or a folder) and Excel.

Each is resolved by the DuckDB reader itself, so ``--engine spark`` maps, types and refuses a
file exactly as the default engine does. Parquet: see :func:`segwork.spark.open_spark_source`.
CSV: the DuckDB reader resolves the encoding, header row, delimiter and column mapping on the
first lines of the (first) file; Spark reads every line as text with that dialect, and the
reader's own checks and parsing SQL (numbers, money, the date format and its refusal of dates
that read two ways) run on Spark over every line. Excel: a sheet holds at most 1,048,576 rows,
so the DuckDB reader reads the workbook on the driver and the typed lines are handed to Spark.
"""

from __future__ import annotations

import dataclasses
import gzip
import tempfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from segwork.errors import SegworkInputError
from segwork.read import (
    ROW_ID_COLUMN,
    SUPPORTED_SUFFIXES,
    SourceInfo,
    create_text_view,
    open_source,
    resolve_csv,
)
from segwork.spark import (
    SAMPLE_ROWS,
    SparkCon,
    is_remote,
    open_spark_source,
    session,
    source_format,
)
from segwork.store import TX, Store

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from segwork.schema import Config

#: The lines of the text every CSV line is read into, as a Spark temp view.
CSV_RAW = "__segwork_csv_raw"
#: Python codecs the DuckDB reader reports -> Java charsets Spark decodes with.
JAVA_CHARSETS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8",
    "cp949": "x-windows-949",
    "latin-1": "ISO-8859-1",
    "iso8859-1": "ISO-8859-1",
    "utf-16": "UTF-16",
}
#: Charsets Spark 4 reads CSV in without ``spark.sql.legacy.javaCharsets``.
SPARK_CHARSETS = frozenset({"UTF-8", "ISO-8859-1", "UTF-16"})
_CSV_SUFFIXES = tuple(s for s, fmt in SUPPORTED_SUFFIXES if fmt == "csv")


def csv_files(path: str) -> list[str]:
    """The CSV file, or every CSV file under the folder (sorted by path)."""
    if is_remote(path) or Path(path).is_file():
        return [path]
    found = sorted(
        str(p)
        for p in Path(path).rglob("*")
        if p.is_file() and p.name.lower().endswith(_CSV_SUFFIXES)
    )
    if not found:
        raise SegworkInputError(f"--data {path}: the folder holds no CSV files")
    return found


def head_sample(path: Path, lines: int, dest: Path) -> None:
    """The first ``lines`` lines of a (gzipped) text file, uncompressed, into ``dest``."""
    with path.open("rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    try:
        with gzip.open(path, "rb") if gz else path.open("rb") as fh, dest.open("wb") as out:
            size = 0
            for i, line in enumerate(fh):
                if i >= lines:
                    break
                size += out.write(line)
            if size % 2 and dest.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff"):
                out.write(b"\x00")  # UTF-16: the cut fell between the two bytes of a newline
    except (OSError, EOFError, zlib.error) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SegworkInputError(f"{path}: corrupt gzip file ({first})") from None


def _plain_name(path: str) -> str:
    """The file name without a .gz ending: the sample is written uncompressed."""
    name = Path(path).name
    return name[:-3] if name.lower().endswith(".gz") else name


def read_csv_text(
    spark: SparkSession,
    files: list[str],
    headers: tuple[str, ...],
    sep: str,
    encoding: str,
    skip: int,
) -> DataFrame:
    """Every data line of the CSV files as text columns named by ``headers`` plus a row id.

    Quoting as pandas reads it (``"`` doubled inside quotes, line breaks inside quotes kept);
    empty cells are NULL. One file: its lines up to the header are dropped and the row id is
    the data line's number (1-based, as the DuckDB reader numbers it); a folder: each file's
    first line is its header and row ids are unique but not line numbers.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    schema = StructType([StructField(f"_c{i}", StringType()) for i in range(len(headers))])
    charset = JAVA_CHARSETS.get(encoding, encoding)
    if charset not in SPARK_CHARSETS:  # Spark 4 decodes others (CP949) only when allowed
        spark.conf.set("spark.sql.legacy.javaCharsets", "true")
    reader = spark.read.options(
        sep=sep,
        encoding=charset,
        multiLine=True,  # whole files: quoted line breaks as pandas reads them
        quote='"',
        escape='"',
        header=len(files) > 1,
        mode="PERMISSIVE",
    )
    uris = [f if is_remote(f) else f"file://{Path(f).resolve()}" for f in files]  # not %-escaped
    text = reader.schema(schema).csv(uris)
    line = F.monotonically_increasing_id()  # one file is one partition: the record's index
    if len(files) == 1:
        text = text.withColumn(ROW_ID_COLUMN, line).where(F.col(ROW_ID_COLUMN) > skip)
        text = text.withColumn(ROW_ID_COLUMN, F.col(ROW_ID_COLUMN) - skip)
    else:
        text = text.withColumn(ROW_ID_COLUMN, line + 1)
    cols = [F.nullif(F.col(f"_c{i}"), F.lit("")).alias(h) for i, h in enumerate(headers)]
    text = text.select(*cols, ROW_ID_COLUMN)
    cores = spark.sparkContext.defaultParallelism
    return text.repartition(cores) if len(files) < cores else text


def _resolve_on_sample(path: str, cfg: Config) -> tuple[SourceInfo, str]:
    """The DuckDB reader's encoding, header row, mapping and delimiter, found on the first
    lines; its one-line errors name ``path``, not the sample. Values are checked later, on all
    lines."""
    with tempfile.TemporaryDirectory(prefix="segwork-spark-") as tmp:
        sample = Path(tmp) / _plain_name(path)
        head_sample(Path(path), SAMPLE_ROWS, sample)
        try:
            return resolve_csv(sample, cfg)
        except SegworkInputError as exc:
            raise SegworkInputError(str(exc).replace(str(sample), path)) from None


def open_csv(con: SparkCon, path: str, cfg: Config, view: str = TX) -> SourceInfo:
    """The canonical ``tx`` view on Spark over a CSV file or folder, as the DuckDB reader makes it."""
    files = csv_files(path)
    if is_remote(files[0]):
        raise SegworkInputError(
            f"--data {path}: CSV is read from local files; copy it here or convert it to Parquet"
        )
    info, sep = _resolve_on_sample(files[0], cfg)
    skip = info.header_row - 1
    if len(files) > 1 and skip:
        raise SegworkInputError(
            f"--data {path}: a folder of CSV files needs the header on the first line of each "
            f"file ({files[0]} has {skip} line(s) above it); remove them"
        )
    text = read_csv_text(con.spark, files, info.headers, sep, info.encoding or "utf-8", skip)
    used = list(dict.fromkeys(info.mapping.values()))
    con.store_frame(CSV_RAW, text.select(*[f"`{h}`" for h in used], ROW_ID_COLUMN))
    row_id = f'"{ROW_ID_COLUMN}"'
    label, notes = create_text_view(Path(path), con, CSV_RAW, row_id, info.mapping, cfg.read, view)  # type: ignore[arg-type]
    con.release(CSV_RAW)  # the parsed lines are stored: the text is no longer needed
    return dataclasses.replace(
        info, path=Path(path), format="csv", date_format=label, warnings=tuple(notes)
    )


def open_excel(con: SparkCon, path: str, cfg: Config, view: str = TX) -> SourceInfo:
    """The workbook read by the DuckDB reader on the driver, its typed lines handed to Spark."""
    duck = duckdb.connect()
    try:
        info = open_source(Path(path), cfg, duck, view=view)
        lines = duck.execute(f"SELECT * FROM {view}").df()
    finally:
        duck.close()
    con.store_frame(view, con.spark.createDataFrame(lines))
    return info


def open_store(
    path: str, cfg: Config, spark: SparkSession | None = None
) -> tuple[Store, SourceInfo]:
    """A store whose connection runs on Spark, with ``tx`` opened over ``path`` (any format)."""
    if not is_remote(str(path)) and not Path(path).exists():
        raise SegworkInputError(f"--data {path}: no such file or folder")
    fmt = source_format(str(path))
    con = SparkCon(spark or session())
    if fmt == "csv":
        info = open_csv(con, str(path), cfg)
    elif fmt == "excel":
        info = open_excel(con, str(path), cfg)
    else:
        info = open_spark_source(con, str(path), cfg)
    return Store(con), info  # type: ignore[arg-type]
