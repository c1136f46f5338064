"""Prediction stage at scale: features, back-test, fit and predict on N synthetic customers.

The orders are generated directly at order level (a BG/NBD-like shop: gamma purchase rates,
exponential lifetimes, lognormal order values over two years) and written once to Parquet, so the
benchmark times the stage, not the synthetic line generator. Each repeat runs in a fresh child
process that loads the Parquet file into DuckDB and reports the stage's wall and CPU seconds, its
parts (the BG/NBD + Gamma-Gamma baseline's own fit and predict among them) and the child's peak
resident memory (DuckDB table and stage together)::

    python bench/predict.py --customers 1_000_000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

DAYS = 730
AS_OF = date(2026, 1, 1)


def orders_frame(n: int, seed: int) -> pd.DataFrame:
    """Order-level history of ``n`` customers before AS_OF: customer_id, day, revenue, purchase."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, DAYS, n)
    rate = rng.gamma(0.8, 1 / 30, n)  # orders per day while alive
    life = rng.exponential(rng.gamma(2.0, 120.0, n))  # days until the customer stops
    end = np.minimum(first + life, DAYS)
    k = 1 + rng.poisson(rate * (end - first))
    owner = np.repeat(np.arange(n), k)
    pos = np.arange(owner.size) - np.repeat(np.cumsum(k) - k, k)
    u = rng.random(owner.size)
    day = np.where(pos == 0, first[owner], first[owner] + u * (end - first)[owner]).astype(np.int64)
    value = np.exp(rng.normal(3.5, 0.8, n))
    start = np.datetime64(AS_OF - timedelta(days=DAYS), "D")
    return pd.DataFrame(
        {
            "customer_id": owner.astype(str),
            "day": start + day.astype("timedelta64[D]"),
            "revenue": np.round(value[owner] * np.exp(rng.normal(0, 0.3, owner.size)), 2),
            "purchase": True,
        }
    )


def child(path: str, seed: int, baselines: tuple[str, ...]) -> dict[str, object]:
    """One repeat: load the orders table, then time the prediction stage."""
    import duckdb

    from segwork.predict import run_prediction, with_gaps
    from segwork.schema import PredictOptions

    con = duckdb.connect()
    con.execute("SET memory_limit = '2GB'")
    with_gaps(con, f"read_parquet('{path}')", "orders")
    n_orders = con.execute("SELECT count(*) FROM orders").fetchall()[0][0]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0, c0 = time.perf_counter(), time.process_time()
    res = run_prediction(con, "orders", AS_OF, PredictOptions(), seed=seed, baselines=baselines)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    bt = res.backtest or {}
    return {
        "customers": len(res.customers),
        "orders": n_orders,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "parts": res.seconds,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_mb_before_stage": rss_before,
        "auc": {
            k: v["auc"]
            for k, v in {"model": bt.get("model", {}), **bt.get("baselines", {})}.items()
            if v
        },
    }


def main() -> None:
    """Run the repeats in child processes and print best and spread."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--customers", type=lambda s: int(s.replace("_", "")), default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-btyd", action="store_true", help="leave the BG/NBD baseline out")
    ap.add_argument("--data-dir", default="data/bench", help="where the orders Parquet is cached")
    ap.add_argument("--child", metavar="PARQUET", help=argparse.SUPPRESS)
    args = ap.parse_args()
    baselines = ("recency", "historical_rate") + (() if args.no_btyd else ("bgnbd",))
    if args.child:
        print(json.dumps(child(args.child, args.seed, baselines)))
        return
    path = Path(args.data_dir) / f"orders-{args.customers}c-seed{args.seed}.parquet"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"writing {path}", flush=True)
        orders_frame(args.customers, args.seed).to_parquet(path.with_suffix(".tmp"), index=False)
        path.with_suffix(".tmp").rename(path)
    runs = []
    for i in range(args.repeats):
        cmd = [sys.executable, __file__, "--child", str(path), "--seed", str(args.seed)]
        cmd += ["--no-btyd"] if args.no_btyd else []
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = runs[-1]
        parts = ", ".join(f"{k} {v:.1f}" for k, v in r["parts"].items())
        print(
            f"repeat {i + 1}: {r['customers']:,} customers, {r['orders']:,} orders: "
            f"stage {r['seconds']:.1f} s (CPU {r['cpu_seconds']:.1f} s), peak RSS {r['peak_mb']:,.0f} MB "
            f"(after loading {r['peak_mb_before_stage']:,.0f} MB); {parts}",
            flush=True,
        )
    secs = np.array([r["seconds"] for r in runs])
    cpus = np.array([r["cpu_seconds"] for r in runs])
    btyd = np.array([r["parts"].get("backtest_bgnbd", np.nan) for r in runs])
    peak = max(r["peak_mb"] for r in runs)
    best_btyd = np.nanmin(btyd) if not np.isnan(btyd).all() else float("nan")
    print("\ncustomers   stage best  spread  CPU best  of which BG/NBD+GG best  peak RSS")
    print(
        f"{runs[0]['customers']:>9,}   {secs.min():8.1f} s {secs.max() - secs.min():5.1f} s"
        f" {cpus.min():7.1f} s  {best_btyd:21.1f} s  {peak:,.0f} MB"
    )
    print("back-test AUC:", runs[0]["auc"])


if __name__ == "__main__":
    main()
