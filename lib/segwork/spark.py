"""The Spark engine: segwork's own DuckDB SQL, transpiled by SQLGlot, run on a Spark session.

Nothing here restates a rule. :class:`SparkCon` looks like the DuckDB connection the stages
take (``execute(sql).fetchall()/.df()``, ``register``): each statement the ledger, RFM and
artefact functions build for DuckDB is transpiled to Spark SQL and run against temp views, so
``clean`` and ``rfm`` define the read-clean-ledger-RFM stage once for both engines. DuckDB
``TEMP TABLE`` becomes a persisted temp view, ``UPDATE`` a rewritten projection.

The canonical ``tx`` view is made the same way: a few thousand rows of the source are written
to a local Parquet file, :func:`segwork.read.open_source` resolves the column mapping and types
on it with DuckDB, and the view it creates is replayed on Spark over the whole source (a local
file or folder, ``hdfs://``, ``s3a://``).

Scoring and cluster assignment of every customer run on the executors
(:func:`assign_on_executors`, ``mapInPandas`` with the fitted estimators broadcast).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import duckdb
import numpy as np
import pandas as pd

from segwork.errors import SegworkInputError
from segwork.read import SUPPORTED_SUFFIXES, SourceInfo, open_source
from segwork.store import TX

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from segwork.schema import Config

MASTER_ENV = "SEGWORK_SPARK_MASTER"
DEFAULT_MASTER = "local[*]"
#: Rows of the source DuckDB resolves the column mapping, types and date format on.
SAMPLE_ROWS = 20_000
#: Seconds to wait for the JVM and the Spark session to start.
START_TIMEOUT = 180.0
#: Shuffle partitions per core on a local master (adaptive execution merges small ones);
#: Spark's default of 200 is sized for clusters and costs ~1 s of task overhead per shuffle here.
PARTITIONS_PER_CORE = 4
#: The local JVM's heap: this share of physical memory, capped, so Spark, DuckDB, pandas and the
#: notebook kernels fit together (Spark spills beyond it); Spark's 1 GB default spills at 10M rows.
DRIVER_MEMORY_SHARE = 0.25
DRIVER_MEMORY_CAP_MB = 8192
DRIVER_MEMORY_FLOOR_MB = 1024
#: A local master broadcasts tables up to this estimated size and keeps Arrow data this large
#: as a local relation (the cancellation keys of a 200M-line file are ~2M rows, ~110 MB):
#: a shuffle of the source costs far more on two cores.
LOCAL_BROADCAST_BYTES = 256 * 2**20
RAW = "__segwork_raw"
ROW_NUMBER = "file_row_number"  # 0-based line number within its file, as DuckDB names it
FILE_BITS = 40  # row ids of a folder: file ordinal << 40 | line number within the file
_SCHEME = r"^[A-Za-z][A-Za-z0-9+.-]*:(//[^/]*)?"  # hdfs://namenode:8020, s3a://bucket, file:


# --------------------------------------------------------------------------- session


def _require_spark() -> None:
    """pyspark installed and a Java runtime on PATH (or JAVA_HOME), else one line."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SegworkInputError(
            "--engine spark needs pyspark: pip install 'segwork[spark]'"
        ) from None
    java_home = os.environ.get("JAVA_HOME")
    if not shutil.which("java") and not (java_home and Path(java_home, "bin", "java").exists()):
        raise SegworkInputError(
            "--engine spark needs Java 17 (Debian: apt-get install openjdk-17-jre-headless)"
        )


def local_cores(url: str) -> int:
    """Cores of a ``local``, ``local[N]`` or ``local[*]`` master (this machine's for ``*``)."""
    found = re.fullmatch(r"local(?:\[(\d+|\*)(?:,\s*\d+)?\])?", url.strip())
    if found is None or found.group(1) in (None, "*"):
        return 1 if found is not None and found.group(1) is None else os.cpu_count() or 1
    return max(1, int(found.group(1)))


def driver_memory() -> str:
    """The local JVM's heap, e.g. ``6g``: a share of physical memory, capped and floored."""
    try:
        total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        total_mb = 4096.0
    share = total_mb * DRIVER_MEMORY_SHARE
    return f"{int(max(DRIVER_MEMORY_FLOOR_MB, min(DRIVER_MEMORY_CAP_MB, share)))}m"


def local_conf(url: str, shuffle_partitions: int | None) -> dict[str, str]:
    """Settings a local master needs and a cluster's launcher decides: heap, partitions and
    the broadcast size."""
    parts = shuffle_partitions or PARTITIONS_PER_CORE * local_cores(url)
    return {
        "spark.driver.memory": driver_memory(),
        "spark.sql.shuffle.partitions": str(parts),
        "spark.sql.autoBroadcastJoinThreshold": str(LOCAL_BROADCAST_BYTES),
        "spark.sql.execution.arrow.localRelationThreshold": str(LOCAL_BROADCAST_BYTES),
    }


def session(
    master: str | None = None,
    shuffle_partitions: int | None = None,
    conf: dict[str, str] | None = None,
    timeout: float = START_TIMEOUT,
) -> SparkSession:
    """The Spark session: ``master`` or $SEGWORK_SPARK_MASTER or local[*]; UTC, Arrow, lenient SQL.

    ANSI mode is off so that casts and arithmetic behave as in DuckDB (NULL, not an error, on
    division by zero); the time zone is UTC so timestamps never shift between engines. A local
    master gets a heap sized from the machine and ``PARTITIONS_PER_CORE`` shuffle partitions
    per core unless ``shuffle_partitions`` is given; under spark-submit or on a cluster master
    the launcher's settings hold.
    """
    _require_spark()
    from pyspark.sql import SparkSession

    url = master or os.environ.get(MASTER_ENV)
    # under spark-submit the launcher's --master holds unless segwork is told otherwise
    submitted = url is None and "PYSPARK_GATEWAY_PORT" in os.environ
    url = url or DEFAULT_MASTER
    if url.startswith("local") and not submitted:  # executors run this interpreter
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("segwork")
    if not submitted:
        builder = builder.master(url)
    builder = (
        builder.config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.ansi.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if url.startswith("local") and not submitted:
        settings = local_conf(url, shuffle_partitions)
    elif shuffle_partitions:
        settings = {"spark.sql.shuffle.partitions": str(int(shuffle_partitions))}
    else:
        settings = {}
    for key, value in {**settings, **(conf or {})}.items():
        builder = builder.config(key, value)
    box: dict[str, Any] = {}

    def start() -> None:
        try:
            box["spark"] = builder.getOrCreate()
        except Exception as exc:  # noqa: BLE001 - reported below as one line
            box["error"] = exc

    worker = threading.Thread(target=start, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise SegworkInputError(f"Spark session on {url} did not start within {timeout:g} s")
    if "error" in box:
        first = str(box["error"]).strip().splitlines()[0] if str(box["error"]).strip() else ""
        raise SegworkInputError(f"Spark session on {url} failed to start: {first}")
    spark = box["spark"]
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# --------------------------------------------------------------------------- SQL


def to_spark_sql(sql: str) -> str:
    """One DuckDB statement as Spark SQL (SQLGlot); keeps a QUALIFY query's final ORDER BY."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="duckdb")
    tree = _spark_functions(_double_literals(_inline_framed_windows(tree)))
    order = tree.args.get("order") if isinstance(tree, exp.Select) else None
    if order is not None and tree.args.get("qualify") is not None:
        # SQLGlot moves QUALIFY into a subquery and the ORDER BY with it: order the outside
        tree.set("order", None)
        outer = sqlglot.parse_one(tree.sql(dialect="spark"), read="spark")
        return outer.order_by(*order.expressions, copy=False).sql(dialect="spark")
    return tree.sql(dialect="spark")


def _double_literals(tree: Any) -> Any:
    """Literals like ``86400.0`` as DOUBLE: Spark would make them DECIMAL, DuckDB computes in
    floating point with them, and the two must give the same numbers."""
    from sqlglot import exp

    for lit in list(tree.find_all(exp.Literal)):
        text = str(lit.this)
        if lit.is_number and ("." in text or "e" in text.lower()):
            lit.replace(exp.cast(lit.copy(), "double"))
    return tree


#: DuckDB strptime directives the reader uses, as Spark datetime patterns (one letter parses
#: one or two digits, as DuckDB's %d does; %y is 2000-based in Spark, see _TWO_DIGIT_YEAR).
_STRPTIME = {
    "%Y": "yyyy",
    "%m": "M",
    "%d": "d",
    "%H": "H",
    "%M": "m",
    "%S": "s",
    "%y": "yy",
    "%I": "h",
    "%p": "a",
    "%b": "MMM",
    "%B": "MMMM",
    "%f": "SSSSSS",
    "%%": "%",
}
#: DuckDB reads %y 69-99 as 19xx and 00-68 as 20xx; Spark reads all as 20xx.
_TWO_DIGIT_YEAR = 2069


def spark_pattern(fmt: str) -> str:
    """A DuckDB strptime format as a Spark datetime pattern (literal text quoted).

    Numbers between separators take one letter (one or two digits, as DuckDB reads them);
    in a format with two directives side by side (``%Y%m%d``) every field is fixed width.
    """
    parts = [p for p in re.split(r"(%.)", fmt) if p]
    fixed = any(a.startswith("%") and b.startswith("%") for a, b in itertools.pairwise(parts))
    out = []
    for part in parts:
        if len(part) == 2 and part.startswith("%"):
            if part not in _STRPTIME:
                raise SegworkInputError(f"date format {fmt!r}: {part} is not supported on Spark")
            letters = _STRPTIME[part]
            out.append(letters * 2 if fixed and len(letters) == 1 and letters != "a" else letters)
        else:
            out.append(
                "'" + part.replace("'", "''") + "'" if re.search(r"[A-Za-z']", part) else part
            )
    return "".join(out)


def _strptime_sql(value: Any, fmt: str) -> Any:
    """TRY_TO_TIMESTAMP over the trimmed text (DuckDB's strptime ignores surrounding spaces)."""
    from sqlglot import exp

    parsed = exp.func(
        "TRY_TO_TIMESTAMP", exp.func("TRIM", value.copy()), exp.Literal.string(spark_pattern(fmt))
    )
    if "%y" not in fmt:
        return parsed
    late = exp.GTE(
        this=exp.func("YEAR", parsed.copy()), expression=exp.Literal.number(_TWO_DIGIT_YEAR)
    )
    century = exp.Interval(this=exp.Literal.string("100"), unit=exp.var("YEAR"))
    return exp.If(this=late, true=exp.Sub(this=parsed.copy(), expression=century), false=parsed)


def _spark_functions(tree: Any) -> Any:
    """DuckDB functions whose Spark spelling or meaning differs, rewritten.

    ``hash`` is 64-bit in DuckDB and 32-bit in Spark (a 10M-line fold would collide and fold
    again on every column): XXHASH64. ``regexp_full_match`` -> RLIKE anchored; ``\\1`` in a
    replacement -> ``$1``; ``TRY_STRPTIME(v, fmt | [fmts])`` -> TRY_TO_TIMESTAMP per format.
    """
    from sqlglot import exp

    for node in list(tree.find_all(exp.Anonymous, exp.RegexpFullMatch, exp.RegexpReplace)):
        if isinstance(node, exp.RegexpFullMatch):
            pat = node.expression
            if isinstance(pat, exp.Literal) and pat.is_string:
                anchored = exp.Literal.string(f"^(?:{pat.this})$")
                node.replace(exp.RegexpLike(this=node.this.copy(), expression=anchored))
        elif isinstance(node, exp.RegexpReplace):
            rep = node.args.get("replacement")
            if isinstance(rep, exp.Literal) and rep.is_string:
                text = rep.this.replace("$", "\\$")
                node.set("replacement", exp.Literal.string(re.sub(r"\\(\d)", r"$\1", text)))
        elif node.name.upper() == "HASH":
            node.replace(exp.func("XXHASH64", *[e.copy() for e in node.expressions]))
        elif node.name.upper() == "TRY_STRPTIME":
            value, fmts = node.expressions
            items = fmts.expressions if isinstance(fmts, exp.Array) else [fmts]
            parsed = [_strptime_sql(value, f.this) for f in items]
            node.replace(parsed[0] if len(parsed) == 1 else exp.func("COALESCE", *parsed))
    return tree


def _inline_framed_windows(tree: Any) -> Any:
    """``OVER (w ROWS ...)`` -> the named window's PARTITION/ORDER spelled out (Spark lacks it)."""
    from sqlglot import exp

    for select in tree.find_all(exp.Select):
        named = {w.this.name: w for w in select.args.get("windows") or []}
        if not named:
            continue
        for win in select.find_all(exp.Window):
            ref = win.args.get("alias")
            if win.parent is select or ref is None or ref.name not in named:
                continue
            if win.args.get("spec") is None:
                continue  # a plain OVER w is Spark SQL too
            spec = named[ref.name]
            win.set("alias", None)
            win.set("partition_by", [e.copy() for e in spec.args.get("partition_by") or []])
            if spec.args.get("order") is not None:
                win.set("order", spec.args["order"].copy())
    return tree


def _bind(tree: Any, params: list[object]) -> Any:
    """``?`` placeholders replaced, in order, by literals of ``params`` (str, int, float, None)."""
    from sqlglot import exp

    holes = list(tree.find_all(exp.Placeholder))
    if len(holes) != len(params):
        raise ValueError(f"{len(holes)} placeholders, {len(params)} parameters")
    for hole, value in zip(holes, params, strict=True):
        if value is None:
            hole.replace(exp.null())
        elif isinstance(value, bool | int | float):
            hole.replace(exp.Literal.number(value))
        elif isinstance(value, str):
            hole.replace(exp.Literal.string(value))
        else:
            raise NotImplementedError(f"SparkCon cannot bind {type(value).__name__}")
    return tree


class SparkResult:
    """The result of one statement, read like a DuckDB result (fetchall, fetchone, df)."""

    def __init__(self, frame: DataFrame | None) -> None:
        self.frame = frame

    def fetchall(self) -> list[tuple[Any, ...]]:
        """Every row as a tuple (collected to the driver: use on small results)."""
        return [] if self.frame is None else [tuple(r) for r in self.frame.collect()]

    def fetchone(self) -> tuple[Any, ...] | None:
        """The first row, or None."""
        rows = [] if self.frame is None else self.frame.take(1)
        return tuple(rows[0]) if rows else None

    def df(self) -> pd.DataFrame:
        """The result as pandas (through Arrow)."""
        return pd.DataFrame() if self.frame is None else self.frame.toPandas()


class SparkCon:
    """A DuckDB-shaped connection over a Spark session: DuckDB SQL in, Spark plans out."""

    #: Spark's hash aggregate holds fixed-width buffers only (text in any_value or max_by makes
    #: it sort every row): the fold groups on every column here (clean.fixed_width_aggregates).
    fixed_width_aggregates = True

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self._persisted: list[DataFrame] = []
        self._stored: dict[str, DataFrame] = {}

    # the DuckDB connection API the stages use
    def execute(self, sql: str, params: list[object] | None = None) -> SparkResult:
        """Run one DuckDB statement on Spark; TEMP TABLEs are persisted, UPDATE rewritten."""
        import sqlglot
        from sqlglot import exp

        tree = _bind(sqlglot.parse_one(sql, read="duckdb"), params or [])
        sql = tree.sql(dialect="duckdb")
        if isinstance(tree, exp.Create):
            return self._create(tree)
        if isinstance(tree, exp.Drop):
            self._drop(tree.find(exp.Table).name)
            return SparkResult(None)
        if isinstance(tree, exp.Update):
            self._update(tree)
            return SparkResult(None)
        if isinstance(tree, exp.Describe):
            frame = self.spark.sql(to_spark_sql(tree.this.sql(dialect="duckdb")))
            rows = [(f.name, f.dataType.simpleString()) for f in frame.schema.fields]
            return SparkResult(self.spark.createDataFrame(rows, "column_name string, type string"))
        return SparkResult(self.spark.sql(to_spark_sql(sql)))

    def register(self, name: str, frame: pd.DataFrame) -> None:
        """A pandas frame as a temp view (as DuckDB's register)."""
        self.spark.createDataFrame(frame).createOrReplaceTempView(name)

    def unregister(self, name: str) -> None:
        """Drop a view made by :meth:`register`."""
        self._drop(name)

    def table(self, name: str) -> DataFrame:
        """A temp view as a Spark DataFrame."""
        return self.spark.table(name)

    # statements
    def _exists(self, name: str) -> bool:
        return bool(self.spark.catalog.tableExists(name))

    def _create(self, tree: Any) -> SparkResult:
        from sqlglot import exp

        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        name = target.name
        if tree.args.get("exists") and self._exists(name):
            return SparkResult(None)
        frame = self.spark.sql(to_spark_sql(tree.expression.sql(dialect="duckdb")))
        if tree.kind == "TABLE":
            self._materialise(name, frame)
        else:  # a view is recomputed by each reader, as in DuckDB (see README: Spark)
            frame.createOrReplaceTempView(name)
        return SparkResult(None)

    def store_frame(self, name: str, frame: DataFrame) -> None:
        """Compute ``frame`` now and keep it as the temp view ``name`` (a TEMP TABLE's storage)."""
        self._materialise(name, frame)

    def release(self, name: str) -> None:
        """Drop the view ``name`` and the rows stored for it."""
        self._drop(name)
        frame = self._stored.pop(name, None)
        if frame is not None:
            frame.unpersist()

    def _materialise(self, name: str, frame: DataFrame) -> None:
        """Store ``frame`` under ``name`` as a table would be: computed once, then read.

        A local checkpoint (kept in memory, spilled to disk) cuts the lineage: every later
        query reads the stored rows, even from inside a CTE, where Spark does not look up
        cached plans and would recompute the whole chain from the source. A table Spark would
        broadcast (cancellation keys, matched and repeated lines, country codes) is handed back
        as a local relation: a checkpoint's size is the planner's estimate of the query that made
        it (the source's size for an aggregate of it), so the source was shuffled for every join
        with it before adaptive execution turned the join into a broadcast.
        """
        frame = frame.localCheckpoint(eager=True)
        if self._broadcastable(frame):
            frame = self.spark.createDataFrame(frame.toArrow(), schema=frame.schema)
        frame.createOrReplaceTempView(name)
        self._persisted.append(frame)
        self._stored[name] = frame

    def _broadcastable(self, frame: DataFrame) -> bool:
        """Rows x Spark's row-size estimate within the broadcast limit and the size Arrow data
        may have to become a local relation (else it would be an RDD of unknown size)."""
        conf = self.spark._jsparkSession.sessionState().conf()
        limit = min(conf.autoBroadcastJoinThreshold(), conf.arrowLocalRelationThreshold())
        return frame.count() * (8 + frame._jdf.schema().defaultSize()) <= limit

    def _drop(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)

    def _update(self, tree: Any) -> None:
        """UPDATE t SET c = e WHERE w  ->  t := SELECT CASE WHEN w THEN e ELSE c END AS c, ..."""
        name = tree.this.name
        where = tree.args.get("where")
        cond = where.this.sql(dialect="duckdb") if where is not None else "TRUE"
        sets = {e.this.name: e.expression.sql(dialect="duckdb") for e in tree.expressions}
        cols = self.spark.table(name).columns
        proj = ", ".join(
            f"CASE WHEN {cond} THEN {sets[c]} ELSE {c} END AS {c}" if c in sets else c for c in cols
        )
        self._materialise(name, self.spark.sql(to_spark_sql(f"SELECT {proj} FROM {name}")))

    def close(self) -> None:
        """Unpersist what this connection cached (the session stays for other work)."""
        for frame in reversed(self._persisted):
            frame.unpersist()
        self._persisted.clear()
        self._stored.clear()


# --------------------------------------------------------------------------- reading


def is_remote(path: str) -> bool:
    """A URL such as hdfs://... or s3a://... rather than a local path."""
    return "://" in path


def source_format(path: str) -> str:
    """``parquet``, ``csv`` or ``excel`` from the name (a URL without one is Parquet); a folder is
    Parquet when it holds .parquet files, else CSV when it holds CSV files (.csv, .csv.gz, ...)."""
    name = path.rstrip("/").lower()
    for suffix, fmt in SUPPORTED_SUFFIXES:
        if name.endswith(suffix):
            return fmt
    if is_remote(path):
        return "parquet"
    if Path(path).is_dir():
        files = [p.name.lower() for p in Path(path).rglob("*") if p.is_file()]
        if any(f.endswith(".parquet") for f in files):
            return "parquet"
        if any(f.endswith(s) for f in files for s, fmt in SUPPORTED_SUFFIXES if fmt == "csv"):
            return "csv"
        raise SegworkInputError(f"--data {path}: the folder holds no .parquet or CSV files")
    supported = ", ".join(s for s, _ in SUPPORTED_SUFFIXES)
    raise SegworkInputError(
        f"--data {path}: unsupported file type; the Spark engine reads {supported} "
        "and folders of Parquet or CSV files"
    )


def _uri(path: str) -> str:
    return path if is_remote(path) else Path(path).resolve().as_uri()


def read_raw(spark: SparkSession, path: str) -> DataFrame:
    """The source as stored plus ``file_row_number``: a stable id for every line."""
    from pyspark.sql import functions as F

    if not is_remote(path) and not Path(path).exists():
        raise SegworkInputError(f"--data {path}: no such file or folder")
    fmt = source_format(path)
    if fmt != "parquet":
        raise SegworkInputError(f"--data {path}: read_raw reads Parquet, not {fmt}")
    try:
        # every .parquet file under the folder, sub-folders included (as source_format looks)
        reader = spark.read.option("recursiveFileLookup", "true").option(
            "pathGlobFilter", "*.parquet"
        )
        raw = reader.parquet(_uri(path))
        files = sorted(raw.inputFiles())
    except Exception as exc:  # noqa: BLE001 - AnalysisException and friends, as one line
        first = (str(exc).strip().splitlines() or [""])[0]
        raise SegworkInputError(f"--data {path}: Spark cannot read it as {fmt} ({first})") from None
    line = F.col("_metadata.row_index")
    if not files:
        raise SegworkInputError(f"--data {path}: no data files found")
    cols = [F.col(f"`{c}`") for c in raw.columns]
    if len(files) == 1:
        row = line
    else:
        # inputFiles() and _metadata.file_path spell the scheme differently (file:/// vs
        # file:/): key both on the path after the scheme and authority
        keys = [urlparse(f).path for f in files]  # both keep their %-escapes
        ordinal = F.create_map(*[x for i, k in enumerate(keys) for x in (F.lit(k), F.lit(i))])
        path_only = F.regexp_replace(F.col("_metadata.file_path"), _SCHEME, "")
        row = F.element_at(ordinal, path_only).cast("bigint") * (1 << FILE_BITS) + line
    return raw.select(*cols, row.cast("bigint").alias(ROW_NUMBER))


_READ_PARQUET = re.compile(r"read_parquet\((?:[^()']|'(?:[^']|'')*'|\([^()]*\))*\)")


def open_spark_source(
    con: SparkCon, path: str, cfg: Config, sample_rows: int = SAMPLE_ROWS, view: str = TX
) -> SourceInfo:
    """Create the canonical ``tx`` view on Spark with the DuckDB reader's own definition.

    DuckDB resolves headers, types and formats on a sample written to a local Parquet file;
    the view it makes there is replayed on Spark over the whole source.
    """
    import pyarrow.parquet as pq

    raw = read_raw(con.spark, path)
    raw.createOrReplaceTempView(RAW)
    sample = raw.drop(ROW_NUMBER).limit(sample_rows).toArrow()
    if sample.num_rows == 0:
        raise SegworkInputError(f"--data {path}: no data rows")
    with tempfile.TemporaryDirectory(prefix="segwork-spark-") as tmp:
        local = Path(tmp) / "sample.parquet"
        pq.write_table(sample, local)
        duck = duckdb.connect()
        try:
            info = open_source(local, cfg, duck, view=view)
            (sql,) = duck.execute(
                "SELECT sql FROM duckdb_views() WHERE view_name = ? AND temporary", [view]
            ).fetchone() or (None,)
        finally:
            duck.close()
    if sql is None or not _READ_PARQUET.search(sql):
        raise AssertionError(f"unexpected reader view for the Spark engine: {sql}")
    replay = _READ_PARQUET.sub(RAW, sql, count=1).rstrip().rstrip(";")
    try:
        con.execute(replay.replace("CREATE TEMP VIEW", "CREATE OR REPLACE TEMP VIEW", 1))
    except Exception as exc:  # noqa: BLE001 - Spark's analysis error, as one line
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise SegworkInputError(
            f"--data {path}: the Spark engine needs typed columns (timestamps, numbers) and "
            f"cannot replay this file's text parsing ({first}); use the default engine"
        ) from None
    fmt = source_format(path)
    return dataclasses.replace(info, path=Path(path), format=fmt)


# --------------------------------------------------------------------------- executors

#: Above this many customers ``segwork run --engine spark`` also writes segments as Parquet
#: partitioned by RFM segment (OUT/segments_parquet/), labelled on the executors.
PARQUET_MIN_CUSTOMERS = 1_000_000
SEGMENTS_PARQUET = "segments_parquet"


class _Capture:
    """A connection that keeps the Spark plan of a query instead of collecting it."""

    def __init__(self, con: SparkCon) -> None:
        self.con = con
        self.frame: DataFrame | None = None

    def execute(self, sql: str, params: list[object] | None = None) -> SparkResult:
        result = self.con.execute(sql, params)
        self.frame = result.frame
        return SparkResult(None if result.frame is None else result.frame.limit(0))


def rfm_frame(con: SparkCon, as_of: Any) -> DataFrame:
    """The per-customer RFM table as a Spark DataFrame, from :func:`segwork.rfm.rfm_table`'s SQL."""
    from segwork import rfm

    cap = _Capture(con)
    rfm.rfm_table(cap, as_of)  # type: ignore[arg-type]
    assert cap.frame is not None
    return cap.frame


def label_batch(batch: pd.DataFrame, segmenter: Any, clusterers: dict[str, Any]) -> pd.DataFrame:
    """Scores, RFM segment and cluster labels of one batch of customers (indexed by id)."""
    from segwork import rfm

    out = batch[["recency_days", "frequency", "monetary"]].copy()
    out = out.join(rfm.score(batch, segmenter.edges_, segmenter.bins))
    out["rfm_segment_id"] = segmenter.map_.assign(out[["r_score", "f_score", "m_score"]])
    for name, seg in clusterers.items():
        out[f"{name}_cluster"] = np.asarray(seg.predict(batch), dtype=np.int64)
        if hasattr(seg, "membership"):  # HDBSCAN's strength, the mixture's posterior
            out[f"{name}_probability"] = np.asarray(seg.membership(batch), dtype=np.float64)
    out.index.name = "customer_id"
    return out.reset_index()


def assign_on_executors(frame: DataFrame, segmenter: Any, clusterers: dict[str, Any]) -> DataFrame:
    """Every customer scored, segmented and clustered on the executors (``mapInPandas``).

    The fitted RFM segmenter and clusterers are broadcast once; each partition arrives as
    pandas batches of the per-customer table. Returns customer_id, R, F, M, the three scores,
    rfm_segment_id and one ``<name>_cluster`` column per clusterer (and ``<name>_probability``
    for those with a ``membership``: HDBSCAN, the Gaussian mixture).
    """
    import pickle

    spark = frame.sparkSession
    blob = spark.sparkContext.broadcast(pickle.dumps((segmenter, clusterers)))
    clusters = "".join(
        f", {n}_cluster bigint" + (f", {n}_probability double" if hasattr(c, "membership") else "")
        for n, c in clusterers.items()
    )
    schema = (
        "customer_id string, recency_days bigint, frequency bigint, monetary double, "
        f"r_score bigint, f_score bigint, m_score bigint, rfm_segment_id string{clusters}"
    )

    def label(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        seg, clus = pickle.loads(blob.value)
        for batch in batches:
            if len(batch):
                x = batch.set_index(batch["customer_id"].astype(str)).drop(columns="customer_id")
                yield label_batch(x, seg, clus)

    return frame.mapInPandas(label, schema)


def write_segments_parquet(
    con: SparkCon, as_of: Any, segmenter: Any, clusterers: dict[str, Any], out: str | Path
) -> str:
    """segments as Parquet partitioned by rfm_segment_id, written by the executors; the path."""
    target = str(out) if is_remote(str(out)) else Path(out).resolve().as_uri()
    labelled = assign_on_executors(rfm_frame(con, as_of), segmenter, clusterers)
    labelled.write.mode("errorifexists").partitionBy("rfm_segment_id").parquet(target)
    return target


def write_run_segments(prep: Any, clus: Any, out: Path, say: Callable[[str], None]) -> str | None:
    """For a large Spark run: OUT/segments_parquet/ beside segments.csv, labelled on executors.

    ``prep`` is the run's :class:`segwork.pipeline.Prepared` (on a :class:`SparkCon`), ``clus``
    its clustering result or None; the clusterers that fitted are broadcast as they are.
    """
    con = prep.store.con
    if not isinstance(con, SparkCon) or len(prep.table) < PARQUET_MIN_CUSTOMERS:
        return None
    fitted = {}
    if clus is not None:
        fitted = {
            n: clus.segmenters[n]
            for n in ("kmeans", "ward", "hdbscan")
            if f"{n}_cluster" in clus.labels and n not in clus.summary.get("errors", {})
        }
    say(f"writing {SEGMENTS_PARQUET}/ on the executors ({len(prep.table):,} customers)")
    return write_segments_parquet(con, prep.as_of, prep.segmenter, fitted, out / SEGMENTS_PARQUET)
