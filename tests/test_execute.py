"""execute.py: notebooks in child processes, kernel deaths retried once, deadlines, quiet kernels."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from segwork.cli import main
from segwork.config import RunParams
from segwork.errors import ReportError, SegworkInputError
from segwork.report import execute as ex
from segwork.run import run

HEAD = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
NOISE = "IPKernelApp.instance().log.error('planted kernel noise')"


def orders_csv(path: Path, n_customers: int = 20) -> Path:
    """A small UCI-layout export: a few orders per customer over three months."""
    lines = [
        f"{c}{o},P{o},Mug {o},{1 + o},2024-0{1 + o % 3}-{1 + (c * 7 + o * 3) % 27:02d} 10:00,"
        f"{2.5 + c},{12000 + c},United Kingdom"
        for c in range(n_customers)
        for o in range(1 + c % 4)
    ]
    path.write_text(HEAD + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def tiny_notebooks(folder: Path, *cells: str) -> Path:
    """A folder with one report notebook ``01_tiny.ipynb`` made of ``cells`` (needs no clusters)."""
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("out_dir = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(c) for c in cells)]
    nb.metadata["kernelspec"] = {"name": "segwork", "display_name": "segwork", "language": "python"}
    nb.metadata["segwork"] = {"needs_clusters": False}
    nbformat.write(nb, folder / "01_tiny.ipynb")
    return folder


def fake_kernel(root: Path, code: str) -> Path:
    """A kernelspec 'segwork' on JUPYTER_PATH whose process runs ``code`` instead of a kernel."""
    spec = root / "kernels" / "segwork"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-c", code, "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "fake", "language": "python"}), encoding="utf-8"
    )
    return root


def earlier_report(tmp_path: Path) -> tuple[Path, Path, bytes]:
    """(data, OUT, summary.json bytes) of a published report that a failing run must not touch."""
    data = orders_csv(tmp_path / "orders.csv")
    out = tmp_path / "reports" / "2024-04"
    args = ["run", "--data", str(data), "--out", str(out), "--no-report", "--quiet"]
    assert main(args) == 0
    return data, out, (out / "summary.json").read_bytes()


def params_for(data: Path, out: Path, nbs: Path, **kw: float) -> RunParams:
    """A quick run (no clustering) of the notebooks in ``nbs``."""
    return RunParams(
        data_path=str(data), out_dir=str(out), notebooks_dir=str(nbs), lang="en", clusters=False,
        **kw,
    )  # fmt: skip


def gone(pid: int) -> bool:
    """True when ``pid`` has exited (or is a zombie nobody has reaped yet)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_successful_run_keeps_kernel_noise_off_the_terminal(tmp_path, capfd):
    data = orders_csv(tmp_path / "orders.csv")
    nbs = tiny_notebooks(
        tmp_path / "nbs",
        f"from ipykernel.kernelapp import IPKernelApp\n{NOISE}",
        "print('rows', 20)",
    )
    out = run(params_for(data, tmp_path / "out", nbs))
    err = capfd.readouterr().err
    assert "[IPKernelApp]" not in err and "planted kernel noise" not in err, err
    page = (out / "01_tiny.html").read_text(encoding="utf-8")
    assert "rows 20" in page
    assert 'href="01_tiny.html"' in (out / "index.html").read_text(encoding="utf-8")
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".log") == []


def test_kernel_dying_at_start_is_retried_once_then_a_clean_error(tmp_path, monkeypatch):
    data, out, before = earlier_report(tmp_path)
    starts = tmp_path / "starts.txt"
    code = f"open({str(starts)!r}, 'a').write('x'); import sys; sys.stderr.write('boom\\n'); sys.exit(3)"
    monkeypatch.setenv("JUPYTER_PATH", str(fake_kernel(tmp_path / "jp", code)))
    nbs = tiny_notebooks(tmp_path / "nbs", "print(1)")
    t0 = time.monotonic()
    with pytest.raises(ReportError) as err:
        run(params_for(data, out, nbs, kernel_start_timeout=20))
    assert time.monotonic() - t0 < 60
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("notebook 01_tiny: the kernel did not start (RuntimeError: Kernel died")
    assert "after one retry" in msg
    assert starts.read_text() == "xx"  # first start and exactly one retry
    log = tmp_path / "reports" / ".failed-2024-04" / "01_tiny.log"
    assert msg.endswith(f"kernel log: {log}")
    assert log.read_text().count("boom") == 2  # the kernel's stderr, kept for both attempts
    assert (out / "summary.json").read_bytes() == before
    assert not (out / "index.html").exists()


def test_kernel_killed_mid_run_is_retried_once(tmp_path):
    data, out, before = earlier_report(tmp_path)
    runs = tmp_path / "runs.txt"
    nbs = tiny_notebooks(
        tmp_path / "nbs",
        f"import os, signal\nopen({str(runs)!r}, 'a').write('x')\nos.kill(os.getpid(), signal.SIGKILL)",
    )
    t0 = time.monotonic()
    with pytest.raises(ReportError, match=r"^notebook 01_tiny: the kernel died while running"):
        run(params_for(data, out, nbs))
    assert time.monotonic() - t0 < 90
    assert runs.read_text() == "xx"
    assert (out / "summary.json").read_bytes() == before


def test_notebook_over_its_timeout_is_killed_with_its_kernel(tmp_path):
    data, out, before = earlier_report(tmp_path)
    pid_file = tmp_path / "kernel.pid"
    nbs = tiny_notebooks(
        tmp_path / "nbs",
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(600)",
    )
    t0 = time.monotonic()
    with pytest.raises(ReportError) as err:
        run(params_for(data, out, nbs, notebook_timeout=20))
    assert time.monotonic() - t0 < 60
    assert str(err.value).startswith(
        "notebook 01_tiny did not finish within 20 s (notebook_timeout); kernel log: "
    )
    assert gone(int(pid_file.read_text()))  # the kernel went with its notebook process
    assert (out / "summary.json").read_bytes() == before
    assert (tmp_path / "reports" / ".failed-2024-04" / "01_tiny.log").is_file()


def test_kernel_hanging_at_start_is_killed_by_the_parent_and_retried(tmp_path, monkeypatch):
    pids = tmp_path / "pids.txt"
    code = (
        f"import os, time; open({str(pids)!r}, 'a').write(f'{{os.getpid()}}\\n'); time.sleep(600)"
    )
    monkeypatch.setenv("JUPYTER_PATH", str(fake_kernel(tmp_path / "jp", code)))
    monkeypatch.setattr(ex, "START_SLACK", 0.0)
    nbs = tiny_notebooks(tmp_path / "nbs", "print(1)")
    logs = tmp_path / "logs"
    logs.mkdir()
    # the child's own start timeout is far away: only the parent's deadline can end this
    job = ex.Job(
        src=str(nbs / "01_tiny.ipynb"), dst=str(tmp_path / "o.ipynb"), html=str(tmp_path / "o.html"),
        title="t", kernel="segwork", start_timeout=600,
    )  # fmt: skip
    said: list[str] = []
    t0 = time.monotonic()
    res = ex.execute(
        job,
        ex.Limits(kernel_start=8),
        ex.Children(logs, 1),
        logs,
        threading.Event(),
        said.append,
    )
    assert time.monotonic() - t0 < 60
    assert (res.kind, res.attempts) == ("kernel", 2)
    assert res.error == "the kernel did not start within 8 s"
    assert said == ["notebook 01_tiny: the kernel did not start within 8 s; retrying"]
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 2 and all(gone(p) for p in started)


def test_notebook_process_stuck_on_a_dead_kernel_is_killed_and_retried(tmp_path, monkeypatch):
    # the hang of issue 8: the kernel is defunct, the process talking to it waits forever
    stuck = (
        "import subprocess, sys, time; sys.stdin.readline(); "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(1)']); time.sleep(600)"
    )
    monkeypatch.setattr(ex, "ORPHAN_GRACE", 2.0)
    logs = tmp_path / "logs"
    logs.mkdir()
    children = ex.Children(logs, 1, command=(sys.executable, "-c", stuck))
    job = ex.Job(src=str(tmp_path / "01_x.ipynb"), dst="", html="", title="", kernel="segwork")
    t0 = time.monotonic()
    res = ex.execute(job, ex.Limits(), children, logs, threading.Event(), lambda _m: None)
    assert time.monotonic() - t0 < 40
    assert (res.kind, res.attempts) == ("kernel", 2)
    assert res.error == "the kernel died and its notebook process stopped responding"


def test_child_reports_a_ready_kernel_and_runs_the_next_notebook(tmp_path):
    nbs = tiny_notebooks(tmp_path / "nbs", "print('hello')")
    logs = tmp_path / "logs"
    logs.mkdir()
    job = ex.Job(
        src=str(nbs / "01_tiny.ipynb"), dst=str(tmp_path / "o.ipynb"), html=str(tmp_path / "o.html"),
        title="Tiny", kernel="python3",
    )  # fmt: skip
    children = ex.Children(logs, 1)
    res = ex.execute(job, ex.Limits(), children, logs, threading.Event(), print)
    assert (res.kind, res.error, res.attempts) == ("ok", None, 1)
    assert (logs / "01_tiny.1" / ex.READY).is_file()  # without it the start deadline would kill it
    assert "hello" in (tmp_path / "o.html").read_text(encoding="utf-8")
    # the same warm process runs the next notebook, on a fresh kernel
    [child] = children.idle
    again = ex.Job(
        **{**vars(job), "dst": str(tmp_path / "p.ipynb"), "html": str(tmp_path / "p.html")}
    )
    assert ex.execute(again, ex.Limits(), children, logs, threading.Event(), print).kind == "ok"
    assert children.idle == [child] and child.proc.poll() is None
    assert (tmp_path / "p.html").is_file()
    children.close()
    assert child.proc.poll() is not None


def test_timeouts_must_be_positive(tmp_path):
    from segwork.report.session import limits_of

    assert limits_of(RunParams()) == ex.Limits(kernel_start=60.0, notebook=900.0)
    with pytest.raises(SegworkInputError, match="notebook_timeout: 0 is not a positive"):
        limits_of(RunParams(notebook_timeout=0))
