"""Wall time of a full `segwork run` with the report, and the share spent outside notebook code.

    python bench/report.py [--data PATH] [--repeats 3]

"Inside" is the time papermill records for the notebooks' own cells; everything else in the
notebook phase (kernel start-up, papermill, nbconvert HTML export) is overhead. Each repeat is a
fresh `segwork run` process; best of the repeats is reported with the spread.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

UCI = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "online_retail"
    / "online_retail.parquet"
)


def cell_seconds(out: Path) -> float:
    """Sum of the notebooks' own cell durations as recorded by papermill."""
    total = 0.0
    for nb_path in sorted(out.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        total += sum(c.metadata.get("papermill", {}).get("duration") or 0.0 for c in nb.cells)
    return total


def one_run(data: Path, lang: str) -> tuple[float, float, dict[str, float]]:
    """(wall seconds, notebook cell seconds, stage timings) of one fresh run."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "segwork", "run", "--data", str(data), "--out", str(out),
               "--lang", lang, "--quiet"]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
        wall = time.perf_counter() - t0
        timings = json.loads((out / "summary.json").read_text(encoding="utf-8"))["timings"]
        return wall, cell_seconds(out), timings


def main() -> None:
    """Print wall time (best, spread) and the share outside the notebooks' own code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=UCI)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--lang", default="ko")
    args = ap.parse_args()
    runs = [one_run(args.data, args.lang) for _ in range(args.repeats)]
    walls = [r[0] for r in runs]
    best = min(range(len(runs)), key=lambda i: walls[i])
    wall, cells, timings = runs[best]
    notebook_phase = timings.get("report", 0.0)
    print(f"data: {args.data}  repeats: {args.repeats}  lang: {args.lang}")
    print(
        f"{'wall (s)':<38}{wall:8.2f}   best of {len(walls)}; spread {min(walls):.2f}-{max(walls):.2f}"
    )
    for k in ("read", "ledger_rfm", "rfm_segments", "clustering", "write", "report"):
        print(f"  {k:<32}{timings.get(k, 0.0):8.2f}")
    per_nb = timings.get("notebooks", {})
    nb_total = sum(per_nb.values())
    overhead = max(nb_total - cells, 0.0)
    share = overhead / nb_total if nb_total else 0.0
    print(
        f"{'notebooks (papermill + HTML, summed)':<38}{nb_total:8.2f}   {len(per_nb)}, 2 at a time"
    )
    print(f"{'  their own cells':<38}{cells:8.2f}")
    print(
        f"{'  outside notebook code':<38}{overhead:8.2f}   {share:6.1%} (kernel, papermill, nbconvert)"
    )
    print(
        f"{'report stage after clustering':<38}{notebook_phase:8.2f}   (01-02 overlap clustering)"
    )


if __name__ == "__main__":
    main()
