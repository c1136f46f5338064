"""Benchmark: segwork at 10M and 50M rows against a bare DuckDB query, and the full 50M report.

    python bench/scale.py [--sizes 200000,1000000] [--repeats 3] [--full-runs 3]

Synthetic shops (``segwork.synth``, ~51 lines per customer: 200k customers ~ 10M rows, 1M
customers ~ 50M rows) are generated once into ``<cache>/bench-scale/`` (``$SEGWORK_CACHE`` or
~/.cache/segwork; never the repository) and reused.

1. Read-ledger-RFM stage vs bare query, side by side, each in a fresh subprocess, interleaved:
   segwork ``prepare`` with the four textbook rules (customer present, not cancelled,
   quantity > 0, price > 0) against one hand-written DuckDB query computing the same R, F, M
   per customer. Target: segwork within 1.5x of the bare query.
2. The full ``segwork run`` (ledger, RFM, clusters, artefacts, notebooks, HTML) on the largest
   size, ``--full-runs`` times in a row; peak memory is the largest sum over the whole process
   tree (segwork and its notebook kernels), sampled every 0.1 s with psutil, both of RSS
   (shared pages counted once per process) and of PSS (shared pages split between sharers),
   and the CPU seconds of the whole tree (what a minute on this machine's cores can hold).
   Targets: every run completes, at most 60 s and 2 GB peak.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AS_OF = "2026-01-01"  # the day after the synthetic shop's last possible date


def shop(cache: Path, customers: int) -> Path:
    """The seeded synthetic shop with ``customers`` customers, generated once into ``cache``."""
    import hashlib

    from segwork import synth
    from segwork.synth import SynthSpec, write_synthetic

    code = hashlib.sha256(Path(synth.__file__).read_bytes()).hexdigest()[:10]
    folder = cache / f"shop-{customers}c-seed0-{code}"
    tx = folder / "transactions.parquet"
    if not tx.is_file():
        t0 = time.perf_counter()
        tmp = folder.with_name(folder.name + ".tmp")
        write_synthetic(tmp, SynthSpec(n_customers=customers, seed=0))
        tmp.rename(folder)
        print(f"generated {tx} in {time.perf_counter() - t0:.0f}s", flush=True)
    return tx


def bare_sql(path: str) -> str:
    """The four-rule RFM as one plain DuckDB query over the file."""
    return f"""
        SELECT customer_id,
               date_diff('day', max(invoice_date)::DATE, DATE '{AS_OF}') AS recency_days,
               count(DISTINCT invoice_id) AS frequency,
               sum(quantity * unit_price) AS monetary
        FROM read_parquet('{path}')
        WHERE customer_id IS NOT NULL AND NOT coalesce(starts_with(invoice_id, 'C'), false)
          AND quantity > 0 AND unit_price > 0 AND invoice_date < DATE '{AS_OF}'
        GROUP BY customer_id
    """


def child(engine: str, path: str) -> None:
    """One measurement in this (fresh) process: seconds and customers as JSON."""
    import duckdb

    if engine == "segwork":
        from datetime import date

        from segwork.pipeline import prepare
        from segwork.schema import CleanRules, Config

        t0 = time.perf_counter()
        prep = prepare(path, Config(clean=CleanRules.standard4()), date.fromisoformat(AS_OF))
        n = len(prep.table)
    else:
        con = duckdb.connect()
        t0 = time.perf_counter()
        n = len(con.execute(bare_sql(path)).df())
    print(json.dumps({"seconds": time.perf_counter() - t0, "customers": n}))


def run_child(engine: str, path: Path) -> dict:
    """One stage measurement in a fresh interpreter."""
    cmd = [sys.executable, __file__, "--child", engine, "--file", str(path)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def tree_memory(proc) -> tuple[int, int]:  # noqa: ANN001 - a psutil.Process
    """(RSS, PSS) summed over a process and all its descendants, in bytes.

    RSS counts pages shared between processes (libraries, a forked child before it execs)
    once per process; PSS splits each shared page between its sharers, so the sum is what the
    tree occupies. Both are printed; a fork shows up in the RSS sum as a second parent.
    """
    import psutil

    rss = pss = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            m = p.memory_full_info()
            rss, pss = rss + m.rss, pss + m.pss
    return rss, pss


def full_run(path: Path, timeout: float) -> dict:
    """One ``segwork run`` with the report: wall and CPU seconds, peak tree RSS, exit code, stages.

    CPU is user + system time of the whole tree (segwork, its notebook runners and kernels: each
    is reaped by its parent, so the run's own reaped-children account holds them all), read from
    this process's children account before and after the run.
    """
    import resource

    import psutil

    def reaped() -> float:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime

    with tempfile.TemporaryDirectory(prefix="segwork-bench-") as tmp:
        out = Path(tmp) / "out"
        cmd = [sys.executable, "-m", "segwork", "run", "--data", str(path), "--out", str(out),
               "--quiet", "--lang", "en"]  # fmt: skip
        t0, cpu0 = time.perf_counter(), reaped()
        err = Path(tmp) / "stderr.txt"
        with err.open("w") as fh:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=fh)
            ps, peak, peak_pss = psutil.Process(proc.pid), 0, 0
            while proc.poll() is None:
                rss, pss = tree_memory(ps)
                peak, peak_pss = max(peak, rss), max(peak_pss, pss)
                if time.perf_counter() - t0 > timeout:
                    proc.kill()
                time.sleep(0.1)
        wall, cpu = time.perf_counter() - t0, reaped() - cpu0
        summary = out / "summary.json"
        timings = json.loads(summary.read_text())["timings"] if summary.is_file() else {}
        tail = err.read_text().strip().splitlines()[-1:] if proc.returncode else []
        return {"wall": wall, "cpu": cpu, "peak_mb": peak / 2**20, "peak_pss_mb": peak_pss / 2**20,
                "rc": proc.returncode,
                "timings": timings, "error": tail}  # fmt: skip


def spread(xs: list[float]) -> str:
    """'best (min-max, median m)' of repeated figures."""
    return f"{min(xs):7.2f}  ({min(xs):.2f}-{max(xs):.2f}, median {statistics.median(xs):.2f})"


def main() -> None:
    """Generate the shops, print the stage comparison and the full-report runs."""
    from segwork.config import cache_dir

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="200000,1000000", help="customers per synthetic shop")
    ap.add_argument("--repeats", type=int, default=3, help="stage measurements per engine")
    ap.add_argument("--full-runs", type=int, default=3, help="full reports on the largest shop")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per full run")
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.file)
        return
    import duckdb

    cache = args.cache or cache_dir() / "bench-scale"
    cache.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    files = {n: shop(cache, n) for n in sizes}
    print(f"machine: {os.cpu_count()} cores; DuckDB memory limit for segwork: ", end="")
    from segwork.store import default_memory_limit

    print(default_memory_limit())
    print(f"\n{'rows':>12} {'customers':>10}  {'engine':<26}{'best s':>8}  spread / median")
    for path in files.values():
        rows = duckdb.execute(f"SELECT count(*) FROM '{path}'").fetchall()[0][0]
        res: dict[str, list[dict]] = {"bare": [], "segwork": []}
        for _ in range(args.repeats):  # interleaved, so machine noise hits both alike
            for engine in res:
                res[engine].append(run_child(engine, path))
        custs = {e: r[0]["customers"] for e, r in res.items()}
        if len(set(custs.values())) != 1:
            sys.exit(f"bench: bare query and segwork disagree on customers: {custs}")
        for engine, label in (
            ("bare", "bare DuckDB query"),
            ("segwork", "segwork read-ledger-RFM"),
        ):
            secs = [r["seconds"] for r in res[engine]]
            print(f"{rows:>12,} {custs[engine]:>10,}  {label:<26}{spread(secs)}")
        ratio = min(r["seconds"] for r in res["segwork"]) / min(r["seconds"] for r in res["bare"])
        pairs = [
            s["seconds"] / b["seconds"] for s, b in zip(res["segwork"], res["bare"], strict=True)
        ]
        verdict = "met" if ratio <= 1.5 else "NOT met"
        print(f"{'':>24}  ratio segwork / bare: best {ratio:.2f}x, pairs "
              f"{min(pairs):.2f}-{max(pairs):.2f}x (target <= 1.5x: {verdict})")  # fmt: skip

    if args.full_runs:
        n = max(files)
        path = files[n]
        print(
            f"\nfull `segwork run` with the report on {path.parent.name}, {args.full_runs} in a row"
        )
        runs = [full_run(path, args.timeout) for _ in range(args.full_runs)]
        for i, r in enumerate(runs, 1):
            t = r["timings"]
            stages = " ".join(
                f"{k}={t[k]:.1f}"
                for k in ("ledger_rfm", "rfm_segments", "clustering", "predict", "write", "report")
                if k in t
            )
            print(f"  run {i}: exit {r['rc']}  wall {r['wall']:6.1f}s  CPU {r['cpu']:6.1f}s "
                  f"({r['cpu'] / r['wall']:.2f} cores)  peak RSS {r['peak_mb']:7,.0f} MB"
                  f"  PSS {r['peak_pss_mb']:7,.0f} MB  {stages} {' '.join(r['error'])}")  # fmt: skip
        ok = [r for r in runs if r["rc"] == 0]
        print(f"  completed {len(ok)}/{len(runs)}")
        if ok:
            walls, peaks = [r["wall"] for r in ok], [r["peak_mb"] for r in ok]
            pss = [r["peak_pss_mb"] for r in ok]
            print(f"  wall s:  {spread(walls)}  (target <= 60 s: "
                  f"{'met' if min(walls) <= 60 else 'NOT met'})")  # fmt: skip
            cores = os.cpu_count() or 1
            cpus = [r["cpu"] for r in ok]
            print(f"  CPU s:   {spread(cpus)}  (60 s on {cores} cores holds at most "
                  f"{60 * cores} CPU s)")  # fmt: skip
            for name, xs in (("peak RSS sum MB", peaks), ("peak PSS sum MB", pss)):
                print(f"  {name}: {spread(xs)}  (target <= 2,048 MB: "
                      f"{'met' if max(xs) <= 2048 else 'NOT met'})")  # fmt: skip


if __name__ == "__main__":
    main()
