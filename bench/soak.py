"""Soak test: many full `segwork run` reports back to back while both cores are kept busy.

    python bench/soak.py [--runs 20] [--timeout 600] [--busy 2] [--out DIR]

Each run is a fresh `python -m segwork run --quiet` on the synthetic default, in its own session,
with an outer timeout; a run past it counts as hung and its whole process tree is killed. Meanwhile
``--busy`` processes spin, so kernels start under load (the conditions of the hang in issue 8).
Prints completed / failed / hung, wall time best / median / max, kernel noise on stderr and
processes a run left behind (found by an environment marker every run's processes inherit).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("01_eda", "02_rfm_segments", "03_clusters", "04_compare_and_profile")
NOISE = re.compile(r"\[IPKernelApp\]|KeyboardInterrupt|Traceback|zmq|Kernel died", re.IGNORECASE)
MARK = "SEGWORK_SOAK_RUN"


@dataclass(frozen=True)
class RunResult:
    """One report run: how it ended, its wall time, kernel noise and leftover processes."""

    status: str  # completed, failed, hung
    seconds: float
    noise: list[str]
    stderr_lines: int
    leftovers: int
    detail: str = ""


def marked(tag: str) -> list[psutil.Process]:
    """Live processes carrying the soak marker ``tag`` in their environment."""
    out = []
    for p in psutil.process_iter():
        try:
            if p.environ().get(MARK) == tag and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            continue
    return out


def kill(procs: list[psutil.Process]) -> None:
    """SIGKILL ``procs`` and wait briefly for them to go."""
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(procs, timeout=5)


def one_run(n: int, out: Path, timeout: float) -> RunResult:
    """A full report into ``out`` as a child process with an outer timeout."""
    tag = f"{os.getpid()}-{n}"
    lib = str(ROOT / "lib")
    env = {**os.environ, MARK: tag, "PYTHONPATH": os.pathsep.join(
        p for p in (lib, os.environ.get("PYTHONPATH", "")) if p)}  # fmt: skip
    cmd = [sys.executable, "-m", "segwork", "run", "--out", str(out), "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, text=True,
    )  # fmt: skip
    try:
        _, err = proc.communicate(timeout=timeout)
        status = "completed" if proc.returncode == 0 else "failed"
    except subprocess.TimeoutExpired:
        kill(marked(tag))
        _, err = proc.communicate()
        status = "hung"
    seconds = time.perf_counter() - t0
    time.sleep(0.5)  # a kernel told to shut down gets a moment before it counts as left behind
    left = marked(tag)
    kill(left)
    missing = [p for p in PAGES if not (out / f"{p}.html").is_file()]
    if status == "completed" and (missing or not (out / "index.html").is_file()):
        status, err = "failed", f"pages missing: {missing}\n{err}"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    detail = lines[-1] if status != "completed" and lines else ""
    return RunResult(
        status, seconds, [ln for ln in lines if NOISE.search(ln)], len(lines), len(left), detail
    )


def spin() -> list[subprocess.Popen[bytes]]:
    """Busy-loop processes that keep the cores occupied."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"])]


def main() -> None:
    """Run the soak and print the tally."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds before a run is hung")
    ap.add_argument("--busy", type=int, default=2, help="busy-loop processes meanwhile")
    ap.add_argument("--out", type=Path, default=None, help="folder for the runs (default: temp)")
    ap.add_argument("--keep", action="store_true", help="keep every run's report")
    args = ap.parse_args()
    base = args.out or Path(tempfile.mkdtemp(prefix="segwork-soak-"))
    base.mkdir(parents=True, exist_ok=True)
    busy = [p for _ in range(args.busy) for p in spin()]
    results: list[RunResult] = []
    try:
        for n in range(1, args.runs + 1):
            out = base / f"run-{n:02d}"
            r = one_run(n, out, args.timeout)
            results.append(r)
            print(
                f"run {n:2d}/{args.runs}: {r.status:9s} {r.seconds:6.1f}s  "
                f"stderr lines {r.stderr_lines}  noise {len(r.noise)}  leftovers {r.leftovers}"
                + (f"  {r.detail}" if r.detail else ""),
                flush=True,
            )
            for line in r.noise:
                print(f"    noise: {line}", flush=True)
            if r.status == "completed" and not args.keep:
                shutil.rmtree(out, ignore_errors=True)
    finally:
        for p in busy:
            p.kill()
            p.wait()
    count = {s: sum(r.status == s for r in results) for s in ("completed", "failed", "hung")}
    secs = [r.seconds for r in results]
    noisy = sum(bool(r.noise) for r in results)
    print()
    print(
        f"runs {len(results)}  busy loops {args.busy}  outer timeout {args.timeout:g}s  in {base}"
    )
    print(f"completed {count['completed']}  failed {count['failed']}  hung {count['hung']}")
    print(
        f"wall seconds  best {min(secs):.1f}  median {statistics.median(secs):.1f}  "
        f"max {max(secs):.1f}"
    )
    print(
        f"kernel noise on stderr: {'none' if not noisy else f'{noisy} run(s)'}; "
        f"processes left behind: {sum(r.leftovers for r in results)}"
    )


if __name__ == "__main__":
    main()
