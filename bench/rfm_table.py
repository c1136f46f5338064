"""Benchmark: RFM table from a Parquet file (read, four cleaning rules, aggregate), end to end.

Writes a 10M-row Parquet file by tiling the UCI rows with suffixed customer and invoice IDs,
then times, side by side in one run, each engine in a fresh subprocess (so each peak RSS is
its own): pandas groupby-agg with named aggregations, the lambda-per-column idiom, and
segwork (DuckDB: read + ledger + RFM table + scores). Prints best-of-N seconds, the spread,
ratios against pandas, and peak RSS. ``--synthetic-customers 1000000`` also runs the whole
read-ledger-RFM stage (all cleaning rules) on the ~50M-row synthetic shop and prints its peak.

    python bench/rfm_table.py --rows 10_000_000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
AS_OF = "2011-12-10"


def make_tiled(uci: Path, rows: int, out: Path) -> Path:
    """UCI rows repeated with suffixed customer and invoice IDs until ``rows`` rows."""
    import duckdb

    if out.is_file() and duckdb.execute(f"SELECT count(*) FROM '{out}'").fetchall()[0][0] == rows:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    n = duckdb.execute(f"SELECT count(*) FROM '{uci}'").fetchall()[0][0]
    copies = -(-rows // n)
    duckdb.execute(
        f"""
        COPY (
          SELECT InvoiceNo || '-' || k AS InvoiceNo, StockCode, Description, Quantity, InvoiceDate,
                 UnitPrice, CASE WHEN CustomerID IS NULL THEN NULL ELSE CustomerID || '-' || k END AS CustomerID,
                 Country
          FROM read_parquet('{uci}'), range({copies}) t(k)
          LIMIT {rows}
        ) TO '{out}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)
        """
    )
    return out


def engine_pandas(path: str) -> int:
    """pandas: needed columns, boolean filters, groupby().agg() with named aggregations."""
    import pandas as pd

    df = pd.read_parquet(
        path, columns=["InvoiceNo", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"]
    )
    df = df[df["CustomerID"].notna()]
    df = df[~df["InvoiceNo"].str.startswith("C")]
    df = df[(df["Quantity"] > 0) & (df["UnitPrice"] > 0)]
    df = df.assign(amount=df["Quantity"] * df["UnitPrice"])
    out = df.groupby("CustomerID").agg(
        last=("InvoiceDate", "max"), frequency=("InvoiceNo", "nunique"), monetary=("amount", "sum")
    )
    out["recency_days"] = (pd.Timestamp(AS_OF) - out["last"].dt.normalize()).dt.days
    return len(out)


def engine_lambda(path: str) -> int:
    """The common tutorial idiom: one Python lambda per column and group."""
    import pandas as pd

    df = pd.read_parquet(path)
    df = df[df["CustomerID"].notna()]
    df = df[~df["InvoiceNo"].astype(str).str.contains("C")]
    df = df[(df["Quantity"] > 0) & (df["UnitPrice"] > 0)]
    df["amount"] = df["Quantity"] * df["UnitPrice"]
    as_of = pd.Timestamp(AS_OF)
    out = df.groupby("CustomerID").agg(
        {
            "InvoiceDate": lambda x: (as_of - x.max()).days,
            "InvoiceNo": lambda x: x.nunique(),
            "amount": lambda x: x.sum(),
        }
    )
    return len(out)


def engine_segwork(path: str, rules: str = "standard4") -> int:
    """segwork: DuckDB straight over the file, one pass for ledger and RFM, then scores."""
    from datetime import date

    from segwork.pipeline import prepare
    from segwork.schema import CleanRules, Config

    clean_rules = CleanRules.standard4() if rules == "standard4" else CleanRules()
    as_of = date.fromisoformat(AS_OF) if rules == "standard4" else None
    prep = prepare(path, Config(clean=clean_rules), as_of)
    return len(prep.table)


ENGINES = {"pandas": engine_pandas, "lambda": engine_lambda, "segwork": engine_segwork}
LABELS = {
    "pandas": "pandas groupby-agg",
    "lambda": "pandas lambda idiom",
    "segwork": "segwork (duckdb)",
    "segwork_all": "segwork, all rules",
}


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), which, unlike ru_maxrss, resets at exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(engine: str, path: str) -> None:
    """Run one engine once in this process and print seconds, rows and peak RSS as JSON.

    Libraries are imported before the clock starts (pandas for the pandas engines, segwork and
    its dependencies for segwork): the figure is the work on the file, not interpreter start-up.
    """
    import pandas  # noqa: F401

    if engine.startswith("segwork"):
        import segwork.pipeline  # noqa: F401
    t0 = time.perf_counter()
    n = engine_segwork(path, "all") if engine == "segwork_all" else ENGINES[engine](path)
    secs = time.perf_counter() - t0
    peak_mb = peak_rss_mb()
    print(json.dumps({"engine": engine, "seconds": secs, "customers": n, "peak_mb": peak_mb}))


def run_child(engine: str, path: Path) -> dict:
    """One measurement in a fresh interpreter."""
    cmd = [sys.executable, __file__, "--child", engine, "--file", str(path)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=lambda s: int(s.replace("_", "")), default=10_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--uci",
        default=os.environ.get(
            "SEGWORK_UCI_DIR", str(HERE.parent.parent / "shared/data/online_retail")
        ),
    )
    ap.add_argument("--out", default=str(HERE / "out"))
    ap.add_argument("--engines", default="pandas,lambda,segwork")
    ap.add_argument(
        "--synthetic-customers",
        type=int,
        default=0,
        help="also run all rules on a synthetic shop this big",
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.file)
        return

    uci = Path(args.uci) / "online_retail.parquet"
    if not uci.is_file():
        sys.exit(f"bench: UCI data not found at {uci}; set SEGWORK_UCI_DIR")
    t0 = time.perf_counter()
    path = make_tiled(uci, args.rows, Path(args.out) / f"uci_tiled_{args.rows}.parquet")
    print(
        f"data: {path} ({args.rows:,} rows, {path.stat().st_size / 1e6:.0f} MB, ready in {time.perf_counter() - t0:.1f}s)"
    )
    results: dict[str, list[dict]] = {}
    engines = args.engines.split(",")
    for rep in range(args.repeats):  # interleave engines so machine noise hits all alike
        for e in engines:
            if e == "lambda" and rep > 0 and args.repeats > 1 and results[e][0]["seconds"] > 60:
                continue  # one run of a >1 min idiom is enough for a ratio
            results.setdefault(e, []).append(run_child(e, path))
    customers = {e: r[0]["customers"] for e, r in results.items()}
    if len(set(customers.values())) != 1:
        sys.exit(f"bench: engines disagree on the number of customers: {customers}")
    base = min(r["seconds"] for r in results["pandas"]) if "pandas" in results else None
    print(
        f"\n{'rows':>12}  {'engine':<22}{'best s':>9}{'spread s':>14}{'vs pandas':>11}{'peak RSS MB':>13}  runs"
    )
    for e, rs in results.items():
        secs = sorted(r["seconds"] for r in rs)
        ratio = f"{base / secs[0]:.2f}x" if base else "-"
        spread = f"{secs[0]:.2f}-{secs[-1]:.2f}"
        peak = max(r["peak_mb"] for r in rs)
        print(
            f"{args.rows:>12,}  {LABELS[e]:<22}{secs[0]:>9.2f}{spread:>14}{ratio:>11}{peak:>13,.0f}  {len(rs)}"
        )
    if "segwork" in results:
        s = min(r["seconds"] for r in results["segwork"])
        for e in ("pandas", "lambda"):
            if e in results:
                print(
                    f"segwork vs {LABELS[e]}: {min(r['seconds'] for r in results[e]) / s:.1f}x faster"
                )
    print(f"customers: {customers[engines[0]]:,}")

    if args.synthetic_customers:
        from segwork.synth import SynthSpec, write_synthetic

        folder = Path(args.out) / f"synth_{args.synthetic_customers}"
        tx = folder / "transactions.parquet"
        if not tx.is_file():
            t1 = time.perf_counter()
            write_synthetic(folder, SynthSpec(n_customers=args.synthetic_customers, seed=0))
            print(f"\nsynthetic shop written in {time.perf_counter() - t1:.0f}s")
        import duckdb

        nrows = duckdb.execute(f"SELECT count(*) FROM '{tx}'").fetchall()[0][0]
        r = run_child("segwork_all", tx)
        print(
            f"\nsynthetic {nrows:,} rows, {r['customers']:,} customers: read-ledger-RFM (all rules) "
            f"{r['seconds']:.1f}s, peak RSS {r['peak_mb']:,.0f} MB (target < 3,000 MB)"
        )


if __name__ == "__main__":
    main()
