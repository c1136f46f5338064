"""Benchmark the clustering stage (K-Means, Ward, HDBSCAN, Gaussian mixture + comparison + stability).

Usage: ``python bench/cluster_stage.py [--sizes 10000 100000 1000000] [--repeats 3]``

Data: ``segwork.synth.write_synthetic`` writes the synthetic shop (cached under ``--data-dir``);
DuckDB turns the transactions into the RFM table with the four textbook cleaning rules (cached as
``rfm.parquet``). Generation and RFM aggregation are timed and reported but are NOT part of the
clustering-stage figures. Each timed run happens in a fresh subprocess that only loads the cached
RFM table, so each peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) belongs to one run.
Target at 1M customers (issue 15, four methods): <= 60 s and <= 4 GB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_SECONDS = 60.0
TARGET_RSS_MB = 4096.0
METHODS = ("kmeans", "ward", "hdbscan", "gmm")


def ensure_data(n: int, data_dir: Path) -> Path:
    """Write the synthetic shop and its RFM table for n customers unless already cached."""
    out = data_dir / f"n{n}"
    rfm_path = out / "rfm.parquet"
    if rfm_path.exists():
        return rfm_path
    from segwork.synth import SynthSpec, write_synthetic

    t0 = time.perf_counter()
    if not (out / "personas.parquet").exists():  # transactions are written first
        write_synthetic(out, SynthSpec(n_customers=n, seed=42))
    gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_rfm(out)
    print(
        f"[data] n={n:,}: synthetic transactions {gen:.1f} s, RFM via DuckDB "
        f"{time.perf_counter() - t0:.1f} s (not part of the stage timing)",
        flush=True,
    )
    return rfm_path


def build_rfm(out: Path) -> None:
    """RFM table (customer present, not 'C' invoice, qty>0, price>0) + personas -> rfm.parquet."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET memory_limit='3GB'")
    t = (out / "transactions.parquet").as_posix()
    p = (out / "personas.parquet").as_posix()
    con.execute(
        f"""
        COPY (
          WITH lines AS (
            SELECT customer_id, invoice_id, invoice_date, quantity * unit_price AS amount
            FROM read_parquet('{t}')
            WHERE customer_id IS NOT NULL AND NOT starts_with(invoice_id, 'C')
              AND quantity > 0 AND unit_price > 0),
          as_of_day AS (SELECT max(invoice_date)::DATE + 1 AS d FROM lines),
          agg AS (
            SELECT customer_id, min(invoice_date) AS first_ts, max(invoice_date) AS last_ts,
                   count(DISTINCT invoice_id) AS frequency, sum(amount) AS monetary
            FROM lines GROUP BY customer_id)
          SELECT a.customer_id,
                 date_diff('day', a.last_ts::DATE, as_of_day.d)::BIGINT AS recency_days,
                 a.frequency::BIGINT AS frequency, a.monetary,
                 date_diff('day', a.first_ts::DATE, as_of_day.d)::BIGINT AS tenure_days,
                 a.monetary / a.frequency AS avg_order_value,
                 CASE WHEN a.frequency > 1 THEN date_diff('second', a.first_ts, a.last_ts)
                      / 86400.0 / (a.frequency - 1) END AS mean_interpurchase_days,
                 p.persona
          FROM agg a CROSS JOIN as_of_day LEFT JOIN read_parquet('{p}') p USING (customer_id)
          ORDER BY a.customer_id
        ) TO '{(out / "rfm.parquet").as_posix()}' (FORMAT parquet)
        """
    )


def run_once(rfm_path: Path) -> dict:
    """One clustering stage on a cached RFM table (runs inside the child process)."""
    import pandas as pd

    from segwork.clustering import ClusterConfig, run_clustering
    from segwork.rfm import RFMSegmenter

    table = pd.read_parquet(rfm_path).set_index("customer_id")
    truth = table.pop("persona")
    t0 = time.perf_counter()
    res = run_clustering(table, ClusterConfig(), reference={"rfm": RFMSegmenter()}, truth=truth)
    total = time.perf_counter() - t0
    s = res.summary
    return {
        "n": len(table),
        "total_s": total,
        "fit_s": {m: s["seconds"].get(m) for m in (*METHODS, "rfm")},
        "stability_s": {
            m: s["methods"][m].get("stability", {}).get("seconds")
            for m in METHODS
            if m in s["methods"]
        },
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "ari_vs_truth": s["truth"]["ari_vs_truth"],
        "chosen": {
            "kmeans_k": s["methods"]["kmeans"]["selection"].get("chosen_k"),
            "ward_k": s["methods"]["ward"]["selection"].get("chosen_k"),
            "gmm_k": s["methods"]["gmm"]["selection"].get("chosen_k"),
            "hdbscan_structure": s["methods"]["hdbscan"].get("structure"),
            "hdbscan_clusters": s["methods"]["hdbscan"]["n_clusters"],
            "hdbscan_noise_share": s["methods"]["hdbscan"]["selection"].get("noise_share"),
            "hdbscan_assignment": s["methods"]["hdbscan"]["selection"].get("assignment"),
        },
        "stability_mean_ari": {
            m: s["methods"][m].get("stability", {}).get("mean_ari") for m in METHODS
        },
    }


def child(n: int, data_dir: Path) -> dict:
    """Run one timed stage in a fresh interpreter and parse its JSON line."""
    cmd = [sys.executable, __file__, "--child", str(data_dir / f"n{n}" / "rfm.parquet")]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(n: int, runs: list[dict]) -> None:
    """Print best-of-runs figures with the spread, and the 1M targets."""
    totals = [r["total_s"] for r in runs]
    rss = [r["peak_rss_mb"] for r in runs]
    best = runs[totals.index(min(totals))]
    print(f"\n== n = {n:,} customers, {len(runs)} run(s) ==")
    print(
        f"total stage: best {min(totals):.1f} s, median {statistics.median(totals):.1f} s, "
        f"worst {max(totals):.1f} s; peak RSS best {min(rss):,.0f} MB, worst {max(rss):,.0f} MB"
    )
    for m in (*METHODS, "rfm"):
        fits = [r["fit_s"][m] for r in runs if r["fit_s"].get(m) is not None]
        stab = [r["stability_s"].get(m) for r in runs if r["stability_s"].get(m) is not None]
        line = f"  {m:8s} fit best {min(fits):6.1f} s (max {max(fits):5.1f})"
        if stab:
            line += f" | stability best {min(stab):5.1f} s (max {max(stab):5.1f})"
        print(line)
    other = min(
        t - sum(r["fit_s"].values()) - sum(r["stability_s"].values())
        for t, r in zip(totals, runs, strict=True)
    )
    print(f"  compare/rules/contingency (rest) best {other:.1f} s")
    print(
        f"  ARI vs personas: {json.dumps({k: round(v, 3) for k, v in best['ari_vs_truth'].items()})}"
    )
    print(f"  chosen: {json.dumps(best['chosen'])}")
    print(f"  stability mean ARI: {json.dumps(best['stability_mean_ari'])}")
    if n >= 1_000_000:
        ok = min(totals) <= TARGET_SECONDS and max(rss) <= TARGET_RSS_MB
        print(
            f"  1M target (<= {TARGET_SECONDS:.0f} s, <= {TARGET_RSS_MB:.0f} MB): {'MET' if ok else 'MISSED'}"
        )


def main() -> None:
    """Parse arguments; parent mode prepares data and spawns one child per run."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/segwork_bench"))
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_once(args.child)))
        return
    print("data: segwork.synth.write_synthetic (real transactions, seed 42) -> DuckDB RFM table")
    for n in args.sizes:
        ensure_data(n, args.data_dir)
        runs = []
        for i in range(args.repeats):
            r = child(n, args.data_dir)
            print(
                f"[run {i + 1}/{args.repeats}] n={n:,}: {r['total_s']:.1f} s, peak RSS {r['peak_rss_mb']:,.0f} MB",
                flush=True,
            )
            runs.append(r)
        report(n, runs)


if __name__ == "__main__":
    main()
