"""Benchmark: the events stage (read, events ledger, visits, per-customer aggregate) at scale.

Writes an N-row events Parquet with DuckDB alone (no Python per row): ``rows / 100`` customers,
times over two years, visits of a few events minutes apart, the five event types, and the faults
the ledger drops (no customer, future times, exact duplicates, one bot). Then, in a fresh
subprocess per repeat (so peak RSS is its own), runs segwork's events stage exactly as a run does:
``open_events`` (lazy Parquet view) -> ``classify_events`` (reasons, duplicates, bots) ->
``sessionise`` (one window pass) -> ``visit_aggregate``, on a DuckDB store with a memory limit
that spills to disk. Prints seconds per step, best and spread over repeats, and peak RSS.

    python bench/events.py --rows 10_000_000 --repeats 3
    python bench/events.py --rows 100_000_000 --repeats 1 --memory-limit 6GB

Measured 2026-11-23 on the shared 2-core, 23 GB box (load average 9-14 from other jobs, so the
process got about a third of a core; CPU seconds are the steadier figure):
  10M rows, 2GB limit, 3 repeats: best 40.6 s, spread 23.3 s; peak RSS 1.67 GB.
  100M rows (558 MiB Parquet), 2GB limit: 1,026 s (ledger 539, visits 357, aggregate 130);
    peak RSS 2.50 GB; up to ~12 GB spilled to the temp folder.
  100M rows, 6GB limit: 729 s (ledger 310, visits 319, aggregate 100); peak RSS 6.37 GB;
    3 min 42 s CPU. All 100M rows reconcile: 99,740,632 kept, 19,971,102 visits, 1M customers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AS_OF = dt.date(2026, 1, 1)
NOW = dt.datetime(2026, 1, 1, 12, 0)


def make_events(rows: int, out: Path) -> Path:
    """An events Parquet of ``rows`` rows (reused when it exists with that many rows)."""
    import duckdb

    if out.is_file() and duckdb.execute(f"SELECT count(*) FROM '{out}'").fetchall()[0][0] == rows:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    customers = max(1, rows // 100)
    # row i belongs to visit i // 5 (five events a visit, 1-9 minutes apart); visits are spread
    # over customers and two years by hashing; 0.1% lose the customer, 0.01% are stamped in
    # 2099, 0.1% are copies of the row before, and 1 visit in 2,000 is a bot's (one customer,
    # all on 2025-06-01: 5,000 events that day at 10M rows)
    duckdb.execute(
        f"""
        COPY (
          SELECT CASE WHEN hash(i * 3) % 1000 = 0 THEN NULL
                      WHEN bot THEN 'BOT'
                      ELSE CAST(100000 + hash(v) % {customers} AS VARCHAR) END AS customer_id,
                 CASE WHEN hash(i * 5) % 10000 = 0 THEN TIMESTAMP '2099-06-01'
                      WHEN bot THEN TIMESTAMP '2025-06-01'
                           + to_seconds(CAST(hash(i * 17) % 86400 AS BIGINT))
                      ELSE TIMESTAMP '2024-01-01'
                           + to_seconds(CAST(hash(v * 7) % (730 * 86400) AS BIGINT))
                           + to_minutes(CAST(i % 5 * (1 + hash(v) % 9) AS BIGINT)) END AS timestamp,
                 ['visit', 'view', 'view', 'cart', 'purchase'][1 + CAST(i % 5 AS INTEGER)]
                     AS event_type
          FROM (SELECT i, i // 5 AS v, hash((i // 5) * 13) % 2000 = 0 AS bot
                FROM (SELECT CASE WHEN hash(r * 11) % 1000 = 0 AND r > 0 THEN r - 1 ELSE r END
                             AS i FROM range({rows}) t(r)))
        ) TO '{out}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)
        """
    )
    return out


def run_once(path: str, memory_limit: str, threads: int | None) -> dict[str, object]:
    """The events stage on a fresh store; seconds per step, counts and peak RSS."""
    from segwork import events
    from segwork.schema import EventOptions
    from segwork.store import Store

    store = Store.open(memory_limit=memory_limit, threads=threads)
    opts = EventOptions()
    secs: dict[str, float] = {}
    t0 = time.perf_counter()

    def done(step: str, since: float) -> None:
        secs[step] = time.perf_counter() - since
        print(f"  [{time.perf_counter() - t0:7.1f}s] {step} done", file=sys.stderr, flush=True)

    src = events.open_events(path, opts, store.con)
    done("read", t0)
    t = time.perf_counter()
    ledger = events.classify_events(store.con, opts, AS_OF, NOW, has_type=True)
    done("ledger", t)
    t = time.perf_counter()
    ledger.visits = events.sessionise(store.con, opts.session_gap_minutes, has_session=False)
    done("visits", t)
    ledger.check()
    t = time.perf_counter()
    per_customer = events.visit_aggregate(store.con, opts.cart_window_days, AS_OF, orders=None)
    done("aggregate", t)
    secs["total"] = time.perf_counter() - t0
    return {
        "format": src.format,
        "seconds": {k: round(v, 2) for k, v in secs.items()},
        "rows_in": ledger.rows_in,
        "rows_kept": ledger.rows_kept,
        "dropped": ledger.dropped,
        "visits": ledger.visits,
        "customers": len(per_customer),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    """Generate (or reuse) the file, run the stage ``--repeats`` times, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=lambda s: int(s.replace("_", "")), default=10_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--memory-limit", default="2GB")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--dir", default=os.environ.get("SEGWORK_BENCH_DIR", "data/bench"))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_once(args.child, args.memory_limit, args.threads)))
        return
    path = Path(args.dir) / f"events-{args.rows}.parquet"
    t = time.perf_counter()
    make_events(args.rows, path)
    size = path.stat().st_size / 2**20
    print(
        f"events file: {path} ({args.rows:,} rows, {size:,.0f} MiB, ready in "
        f"{time.perf_counter() - t:.1f}s)",
        flush=True,
    )
    results = []
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory(dir=args.dir) as spill:  # DuckDB spills into .tmp here
            cmd = [
                sys.executable,
                __file__,
                "--child",
                str(path.resolve()),
                "--memory-limit",
                args.memory_limit,
            ]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            # progress lines (stderr) pass through; the figures come back as JSON on stdout
            child = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=spill, check=False)
        if child.returncode != 0:
            sys.exit(f"repeat {i + 1} failed with exit code {child.returncode}")
        res = json.loads(child.stdout.strip().splitlines()[-1])
        results.append(res)
        print(f"repeat {i + 1}: {res['seconds']} peak RSS {res['peak_rss_mb']:,} MB", flush=True)
    totals = sorted(r["seconds"]["total"] for r in results)
    last = results[-1]
    print(
        f"rows {last['rows_in']:,}: kept {last['rows_kept']:,}, dropped {last['dropped']}, "
        f"{last['visits']:,} visits, {last['customers']:,} customers"
    )
    print(
        f"total seconds best {totals[0]:.1f}, spread {totals[-1] - totals[0]:.1f} "
        f"over {len(totals)} runs; {args.rows / totals[0] / 1e6:.2f}M rows/s; "
        f"peak RSS max {max(r['peak_rss_mb'] for r in results):,} MB "
        f"(memory limit {args.memory_limit})"
    )


if __name__ == "__main__":
    main()
