"""Spark engine scaling: read -> ledger -> RFM on 10M, 50M and 200M synthetic rows, local[2].

Run: ``python bench/spark_scale.py [--sizes 10,50,200] [--cache DIR] [--repeats 1]``

Memory: the generator caps DuckDB at 3 GB; the Spark JVM gets the engine's local heap
(a quarter of the machine's memory, at most 8 GB) and spills beyond it to ``spark.local.dir``
(/tmp). Disk: about 15 MB of Parquet per million rows and up to ~150 MB of Spark spill and
stored lines per million rows; a size is refused up front when the free space is short.

The files are made once with DuckDB into ``--cache`` (default ~/.cache/segwork/spark-bench,
outside the repository) in the UCI layout: one customer per 50 rows, orders of 5 lines, 1% of
lines cancellations, 0.5% postage lines, 0.2% exact duplicates, 2% without a customer. Each
size prints the wall seconds of :func:`segwork.pipeline.prepare` with ``engine="spark"`` (the
whole ledger and RFM stage, per-customer table collected to the driver, session start
excluded) and seconds per million rows, and the CPU seconds the Spark JVM used for it (what
a busy shared machine does not distort); linear growth keeps the per-million columns flat.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import duckdb
import psutil

ROWS_PER_CUSTOMER = 50
#: Disk a size needs per million rows: its Parquet file plus Spark's spill and stored lines.
DISK_MB_PER_M_ROWS = 15 + 150


def make_file(path: Path, rows: int) -> None:
    """A synthetic transactions Parquet file of ``rows`` lines (written once, then reused)."""
    if path.is_file():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    customers = max(1, rows // ROWS_PER_CUSTOMER)
    con = duckdb.connect()
    con.execute("SET memory_limit = '3GB'")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")
    con.execute(
        f"""
        COPY (
          WITH r AS (SELECT range AS i, hash(range) AS h FROM range({rows}))
          SELECT
            CASE WHEN h % 100 = 0 THEN 'C' ELSE '' END || CAST(i // 5 AS VARCHAR) AS InvoiceNo,
            CASE WHEN h % 200 = 1 THEN 'POST' ELSE 'P' || CAST(h % 3000 AS VARCHAR) END AS StockCode,
            'ITEM' AS Description,
            CAST(CASE WHEN h % 100 = 0 THEN -1 ELSE 1 END * (1 + (h // 7) % 6) AS BIGINT) AS Quantity,
            TIMESTAMP '2024-01-01' + to_seconds(CAST((h // 11) % (365 * 86400) AS BIGINT)) AS InvoiceDate,
            round(0.5 + ((h // 13) % 2000) / 100.0, 2) AS UnitPrice,
            CASE WHEN h % 50 = 2 THEN NULL
                 ELSE CAST(10000 + (i // 5 * 7919) % {customers} AS VARCHAR) END AS CustomerID,
            CASE WHEN h % 10 = 3 THEN 'France' ELSE 'United Kingdom' END AS Country
          FROM r
          UNION ALL
          SELECT * FROM (
            SELECT CAST(i // 5 AS VARCHAR), 'P' || CAST(h % 3000 AS VARCHAR), 'ITEM',
                   CAST(1 + (h // 7) % 6 AS BIGINT),
                   TIMESTAMP '2024-01-01' + to_seconds(CAST((h // 11) % (365 * 86400) AS BIGINT)),
                   round(0.5 + ((h // 13) % 2000) / 100.0, 2),
                   CAST(10000 + (i // 5 * 7919) % {customers} AS VARCHAR), 'United Kingdom'
            FROM (SELECT range AS i, hash(range) AS h FROM range({rows // 500}))
          )
        ) TO '{tmp}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)
        """
    )
    con.close()
    tmp.rename(path)


def jvm_cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process's children: the Spark JVM."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def main() -> None:
    """Generate what is missing, then time the Spark engine at each size."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,50,200", help="millions of rows, comma-separated")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "segwork" / "spark-bench"))
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument(
        "--shuffle-partitions", type=int, default=None, help="default: 4 per local core"
    )
    args = ap.parse_args()
    os.environ.setdefault("SEGWORK_SPARK_MASTER", args.master)

    from segwork import spark as sp
    from segwork.pipeline import prepare
    from segwork.schema import Config

    cache = Path(args.cache)
    sizes = [float(s) for s in args.sizes.split(",")]
    cache.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(cache).free / 1e9
    print(f"cache {cache}: {free:.0f} GB free")
    need = max(sizes) * DISK_MB_PER_M_ROWS / 1e3 + sum(sizes) * 15 / 1e3
    if need > free:
        raise SystemExit(f"sizes {args.sizes} need about {need:.0f} GB of disk; {free:.0f} GB free")
    files = {}
    for m in sizes:
        f = cache / f"tx-{m:g}M.parquet"
        t0 = time.perf_counter()
        make_file(f, int(m * 1_000_000))
        print(f"  {f.name}: {f.stat().st_size / 1e9:.2f} GB ({time.perf_counter() - t0:.0f} s)")
        files[m] = f
    t0 = time.perf_counter()
    session = sp.session(args.master, shuffle_partitions=args.shuffle_partitions)
    print(
        f"Spark {session.version} on {args.master}: session started in {time.perf_counter() - t0:.1f} s"
    )
    print(
        f"{'rows':>6} {'customers':>10} {'best s':>8} {'spread s':>9} {'s / M rows':>11} "
        f"{'JVM cpu s':>10} {'cpu s / M rows':>15} {'growth':>7}"
    )
    first: float | None = None
    for m, f in files.items():
        times, cpus = [], []
        for _ in range(args.repeats):
            c0, t0 = jvm_cpu_seconds(), time.perf_counter()
            prep = prepare(f, Config(), engine="spark")
            times.append(time.perf_counter() - t0)
            cpus.append(jvm_cpu_seconds() - c0)
            prep.store.con.close()
            session.catalog.clearCache()
        rows = prep.ledger.rows_in
        best = min(times)
        per_m = best / (rows / 1e6)
        first = first or per_m  # growth: seconds per M rows against the smallest size
        print(
            f"{m:>5g}M {len(prep.table):>10,} {best:>8.1f} {max(times) - best:>9.1f} "
            f"{per_m:>11.2f} {min(cpus):>10.0f} {min(cpus) / (rows / 1e6):>15.2f} "
            f"{per_m / first:>6.2f}x",
            flush=True,
        )
    session.stop()


if __name__ == "__main__":
    main()
