"""publish.py: OUT is checked before data is read, claimed only when segwork made it, locked, swept."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from segwork import publish
from segwork.cli import main
from segwork.errors import SegworkInputError
from segwork.publish import MARKER, atomic_dir, check_out, claim, foreign_entries, mark, sweep

HEAD = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
LIB = str(Path(publish.__file__).resolve().parents[1])


def orders_csv(path: Path, n_customers: int = 40) -> Path:
    """A small UCI-layout export: a few orders per customer over three months."""
    lines = []
    for c in range(n_customers):
        for o in range(1 + c % 5):
            day = 1 + (c * 7 + o * 3) % 27
            lines.append(
                f"{c}{o},P{o},Mug,{1 + o},2024-0{1 + o % 3}-{day:02d} 10:00,{2.5 + c % 50},{1000 + c},UK"
            )
    path.write_text(HEAD + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def snapshot(folder: Path) -> dict[str, object]:
    """Every entry under ``folder`` with its bytes (files) or mode (folders)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else oct(p.stat().st_mode)
        for p in sorted(folder.rglob("*"))
    }


def run_main(capsys, *args: str) -> tuple[int, str]:
    """segwork run via main() without the report; returns the exit code and stderr."""
    code = main(["run", "--no-report", *args])
    return code, capsys.readouterr().err


def one_line(err: str) -> str:
    err = err.strip()
    assert err.startswith("segwork: ") and "\n" not in err and "Traceback" not in err, err
    return err


def dead_pid() -> int:
    """The pid of a process that has just ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def env_with_lib() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": LIB}


# --------------------------------------------------------------------------- never destroy


def user_folder(path: Path) -> Path:
    """A folder like a Desktop: files and a subfolder segwork did not write."""
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("quarterly plan\n", encoding="utf-8")
    (path / "photo.jpg").write_bytes(b"\xff\xd8\xff" + bytes(100))
    (path / "project").mkdir()
    (path / "project" / "main.py").write_text("print('hi')\n", encoding="utf-8")
    (path / "todo.md").write_text("- buy milk\n", encoding="utf-8")
    return path


def test_out_holding_user_files_is_refused_and_untouched(tmp_path, capsys):
    data = orders_csv(tmp_path / "orders.csv")
    desk = user_folder(tmp_path / "Desktop")
    before = snapshot(desk)
    code, err = run_main(capsys, "--data", str(data), "--out", str(desk), "--quiet")
    assert code == 2
    line = one_line(err)
    assert str(desk) in line and "4 entries" in line
    assert "notes.txt" in line and "photo.jpg" in line
    assert snapshot(desk) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Desktop", "orders.csv"]  # no junk


def test_default_month_folder_holding_user_files_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = orders_csv(tmp_path / "orders.csv")
    month = user_folder(tmp_path / "reports" / "2024-04")
    before = snapshot(tmp_path / "reports")
    code, err = run_main(capsys, "--data", str(data), "--as-of", "2024-04-01", "--quiet")
    assert code == 2 and f"OUT {month}: holds 4 entries" in one_line(err)
    assert snapshot(tmp_path / "reports") == before


def test_earlier_report_with_a_user_file_added_is_refused(tmp_path, capsys):
    data = orders_csv(tmp_path / "orders.csv")
    out = tmp_path / "out"
    assert run_main(capsys, "--data", str(data), "--out", str(out), "--quiet")[0] == 0
    (out / "meeting-notes.docx").write_bytes(b"PK\x03\x04 mine")
    before = snapshot(out)
    code, err = run_main(capsys, "--data", str(data), "--out", str(out), "--quiet")
    assert code == 2 and "meeting-notes.docx" in one_line(err) and "1 entry" in err
    assert snapshot(out) == before


def test_earlier_report_is_marked_replaced_and_gets_umask_permissions(tmp_path, capsys):
    data = orders_csv(tmp_path / "orders.csv")
    out = tmp_path / "out"
    assert run_main(capsys, "--data", str(data), "--out", str(out), "--as-of", "2024-04-01")[0] == 0
    marker = json.loads((out / MARKER).read_text(encoding="utf-8"))
    assert marker["as_of"] == "2024-04-01" and marker["pid"] == os.getpid()
    assert marker["files"] == ["lists", "segments.csv", "segments.xlsx", "summary.json"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert (out.stat().st_mode & 0o777) == (0o777 & ~umask)  # not mkdtemp's 0700
    code, _ = run_main(capsys, "--data", str(data), "--out", str(out), "--as-of", "2024-05-01")
    assert code == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["as_of"] == "2024-05-01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orders.csv", "out"]  # lock, old gone


def test_report_from_before_the_marker_is_recognised(tmp_path, capsys):
    data = orders_csv(tmp_path / "orders.csv")
    out = tmp_path / "out"
    assert run_main(capsys, "--data", str(data), "--out", str(out), "--quiet")[0] == 0
    (out / MARKER).unlink()  # what every report written before this change looks like
    shutil.rmtree(out / "lists")  # (per-segment lists came later)
    for name in ("index.html", "01_eda.html", "01_eda.ipynb"):
        (out / name).write_text("old page", encoding="utf-8")
    (out / "artifacts").mkdir()
    assert foreign_entries(out) == []
    assert run_main(capsys, "--data", str(data), "--out", str(out), "--quiet")[0] == 0
    assert sorted(p.name for p in out.iterdir()) == [
        MARKER, "lists", "segments.csv", "segments.xlsx", "summary.json",
    ]  # fmt: skip


def test_folder_that_only_looks_like_a_report_is_not_claimed(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "summary.json").write_text('{"total": 3}', encoding="utf-8")  # not segwork's
    (out / "segments.csv").write_text("a,b\n", encoding="utf-8")
    assert foreign_entries(out) == ["segments.csv", "summary.json"]
    with pytest.raises(SegworkInputError, match="2 entries segwork did not write"):
        claim(out)


def test_empty_existing_folder_is_used(tmp_path, capsys):
    data = orders_csv(tmp_path / "orders.csv")
    out = tmp_path / "empty"
    out.mkdir()
    assert run_main(capsys, "--data", str(data), "--out", str(out), "--quiet")[0] == 0
    assert (out / "segments.csv").is_file() and (out / MARKER).is_file()


def test_atomic_dir_refuses_foreign_folder_before_building(tmp_path):
    out = user_folder(tmp_path / "Desktop")
    before = snapshot(out)
    with pytest.raises(SegworkInputError, match="did not write"), atomic_dir(out) as tmp:
        (tmp / "x").write_text("never", encoding="utf-8")
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Desktop"]


def test_swap_puts_back_a_folder_that_changed_after_the_claim(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "segments.csv").write_text("x\n", encoding="utf-8")
    mark(out)
    tmp = tmp_path / ".out.building-1-abcd"
    tmp.mkdir()
    real_claim, calls = publish.claim, []

    def claim_then_user_writes(folder: Path, flag: str = "--out") -> None:
        real_claim(folder, flag)
        if not calls:  # the user saves a file between the check and the rename
            (folder / "late.txt").write_text("mine\n", encoding="utf-8")
        calls.append(folder)

    monkeypatch.setattr(publish, "claim", claim_then_user_writes)
    with pytest.raises(SegworkInputError, match="late.txt"):
        publish.swap_in(tmp, out)
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "late.txt", "segments.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [tmp.name, "out"]


# --------------------------------------------------------------------------- OUT checked early


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder in which even this user cannot create anything."""
    if os.geteuid() != 0:
        d = tmp_path / "locked"
        d.mkdir()
        d.chmod(0o555)
        return d
    for d in (Path("/sys/fs"), Path("/proc/1")):
        try:
            (d / "segwork-probe").mkdir()
        except OSError:
            return d
        (d / "segwork-probe").rmdir()
    pytest.skip("no folder root cannot write to on this machine")


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("file", "is a file"),
        ("dot", "current folder"),
        ("parent", "ancestor of the current folder"),
        ("root", "root folder"),
        ("home", "home folder"),
        ("unwritable", "not writable"),
        ("through_file", "is a file"),
        ("long_name", "too long"),
        ("empty", "empty path"),
    ],
)
def test_bad_out_is_refused_before_any_data_is_read(tmp_path, monkeypatch, capsys, case, needle):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    existing = work / "orders.csv"
    existing.write_text("my own file\n", encoding="utf-8")
    out = {
        "file": str(existing),
        "dot": ".",
        "parent": "..",
        "root": "/",
        "home": str(tmp_path / "home"),
        "unwritable": str(unwritable_folder(tmp_path) / "new" / "out")
        if case == "unwritable"
        else "",
        "through_file": str(existing / "out"),
        "long_name": str(work / "new" / ("x" * 300)),
        "empty": "",
    }[case]

    def no_reading(*_a, **_k):
        raise AssertionError("data was read before OUT was checked")

    monkeypatch.setattr("segwork.pipeline.start", no_reading)
    monkeypatch.setattr("segwork.pipeline.default_data", no_reading)
    before = snapshot(tmp_path) if case != "unwritable" else None
    code, err = run_main(capsys, "--out", out, "--quiet")
    assert code == 2
    assert needle in one_line(err) and "--out" in err
    if before is not None:
        assert snapshot(tmp_path) == before  # the file untouched, no junk folder


def test_default_out_under_unwritable_reports_root_is_refused_early(tmp_path, monkeypatch):
    from segwork.config import RunParams
    from segwork.run import run

    monkeypatch.setattr("segwork.pipeline.start", lambda *a, **k: pytest.fail("data was read"))
    root = unwritable_folder(tmp_path) / "reports"
    with pytest.raises(SegworkInputError, match="not writable"):
        run(RunParams(reports_root=str(root), report=False))


def test_check_out_creates_nothing(tmp_path):
    out = check_out(tmp_path / "a" / "b" / "out")
    assert out == (tmp_path / "a" / "b" / "out").resolve()
    assert list(tmp_path.iterdir()) == []


def test_failed_run_removes_the_folders_it_made_for_out(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text(HEAD, encoding="utf-8")
    code, err = run_main(capsys, "--data", str(bad), "--out", str(tmp_path / "a" / "b" / "out"))
    assert code == 2 and "no data rows" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


# --------------------------------------------------------------------------- sweep


def build_folder(parent: Path, name: str, pid: int, marked: bool = True, **files: str) -> Path:
    d = parent / name
    d.mkdir()
    for fname, text in files.items():
        (d / fname.replace("_csv", ".csv")).write_text(text, encoding="utf-8")
    if marked:
        (d / MARKER).write_text(
            json.dumps({"segwork_version": "0", "pid": pid, "host": os.uname().nodename}),
            encoding="utf-8",
        )
    return d


def test_next_run_sweeps_only_segworks_own_leftovers_of_dead_runs(tmp_path, capsys):
    data = orders_csv(tmp_path / "orders.csv")
    dead, alive = dead_pid(), os.getpid()
    ids = "customer_id\n1001\n"
    build_folder(tmp_path, f".out.building-{dead}-0a1b2c3d", dead, segments_csv=ids)
    build_folder(tmp_path, f".out.old-{dead}-0a1b2c3e", dead, segments_csv=ids)
    build_folder(tmp_path, f".out.building-{dead}-0a1b2c3f", dead, marked=False)  # killed early
    legacy = build_folder(tmp_path, f".out.old-{dead}", dead, marked=False, segments_csv=ids)
    (legacy / "summary.json").write_text('{"segwork_version": "0.1", "ledger": {}}', "utf-8")
    keep = [
        build_folder(tmp_path, f".out.building-{alive}-0a1b2c40", alive, segments_csv=ids),
        build_folder(tmp_path, f".out.building-{dead}-0a1b2c41", dead, False, mine_txt="x"),
        build_folder(tmp_path, f".other.building-{dead}-0a1b2c42", dead, segments_csv=ids),
        build_folder(tmp_path, f".out.building-{dead}-0a1b2c43-notes", dead, segments_csv=ids),
    ]
    code, err = run_main(capsys, "--data", str(data), "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert "removed 4 folder(s) left beside" in err
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["orders.csv", "out", *(p.name for p in keep)])


def test_sweep_restores_out_when_a_run_died_between_the_renames(tmp_path):
    dead = dead_pid()
    old = tmp_path / f".out.old-{dead}-0a1b2c3d"
    old.mkdir()
    (old / "segments.csv").write_text("customer_id\n7\n", encoding="utf-8")
    mark(old)
    json_marker = json.loads((old / MARKER).read_text(encoding="utf-8"))
    (old / MARKER).write_text(json.dumps({**json_marker, "pid": dead}), encoding="utf-8")
    assert sweep(tmp_path / "out") == []
    assert (tmp_path / "out" / "segments.csv").read_text(encoding="utf-8") == "customer_id\n7\n"


# --------------------------------------------------------------------------- failed notebooks


def test_keep_failed_never_deletes_a_folder_segwork_did_not_make(tmp_path):
    from segwork.report.session import NotebookResult, keep_failed

    build = tmp_path / "build"
    build.mkdir()
    (build / "01_eda.ipynb").write_text("{}", encoding="utf-8")
    (build / "01_eda.html").write_text("<p>failed</p>", encoding="utf-8")
    result = NotebookResult("01_eda", build / "01_eda.ipynb", build / "01_eda.html", 1.0, "cell 3")
    failed = tmp_path / ".failed-2024-04"
    failed.mkdir()
    (failed / "mine.txt").write_text("keep me\n", encoding="utf-8")
    kept = keep_failed(result, failed)
    assert (failed / "mine.txt").read_text(encoding="utf-8") == "keep me\n"
    assert kept.parent != failed and kept.is_file() and kept.with_suffix(".html").is_file()
    # a folder segwork kept earlier (marked, or only notebook pages) is replaced
    again = keep_failed(result, kept.parent)
    assert again == kept and sorted(p.name for p in kept.parent.iterdir()) == [
        MARKER, "01_eda.html", "01_eda.ipynb",
    ]  # fmt: skip
    legacy = tmp_path / ".failed-2024-05"
    legacy.mkdir()
    (legacy / "03_clusters.ipynb").write_text("{}", encoding="utf-8")
    assert keep_failed(result, legacy) == legacy / "01_eda.ipynb"
    assert not (legacy / "03_clusters.ipynb").exists()


# --------------------------------------------------------------------------- the lock


HOLDER = """
import sys, time
from pathlib import Path
from segwork.publish import out_lock
with out_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold_lock(out: Path, seconds: float) -> subprocess.Popen:
    """Another process holding OUT's lock for ``seconds``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out), str(seconds)],
        stdout=subprocess.PIPE, text=True, env=env_with_lib(),
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_second_run_refuses_after_waiting_for_the_lock(tmp_path, capsys):
    data = orders_csv(tmp_path / "orders.csv")
    out = tmp_path / "out"
    holder = hold_lock(out, 60)
    try:
        code, err = run_main(capsys, "--data", str(data), "--out", str(out), "--wait", "0.5")
    finally:
        holder.kill()
        holder.wait()
    assert code == 2
    assert f"waiting for another segwork run writing {out} (pid {holder.pid})" in err
    assert f"another segwork run (pid {holder.pid}) is still writing it" in err.splitlines()[-1]
    assert not out.exists()


def test_second_run_waits_then_writes(tmp_path, capsys):
    data = orders_csv(tmp_path / "orders.csv")
    out = tmp_path / "out"
    holder = hold_lock(out, 1.5)
    t0 = time.monotonic()
    code, err = run_main(capsys, "--data", str(data), "--out", str(out), "--wait", "60")
    holder.wait()
    assert code == 0, err
    assert f"waiting for another segwork run writing {out} (pid {holder.pid})" in err
    assert time.monotonic() - t0 > 1.0
    assert (out / "segments.csv").is_file() and not (tmp_path / ".out.lock").exists()


def test_two_runs_at_once_take_turns(tmp_path):
    data = orders_csv(tmp_path / "orders.csv", 200)
    out = tmp_path / "out"
    holder = hold_lock(out, 600)  # both runs arrive while OUT is locked, then race for it
    cmd = [sys.executable, "-m", "segwork", "run", "--data", str(data), "--out", str(out),
           "--no-report", "--wait", "120"]  # fmt: skip
    runs = [
        subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env_with_lib())
        for _ in range(2)
    ]
    firsts = [p.stderr.readline() for p in runs if p.stderr is not None]
    holder.kill()
    holder.wait()
    errs = [first + p.communicate(timeout=300)[1] for first, p in zip(firsts, runs, strict=True)]
    for err in errs:
        assert f"waiting for another segwork run writing {out} (pid {holder.pid})" in err, err
    assert [p.returncode for p in runs] == [0, 0], errs
    marker = json.loads((out / MARKER).read_text(encoding="utf-8"))
    assert marker["pid"] in {p.pid for p in runs} and marker["files"] == [
        "lists", "segments.csv", "segments.xlsx", "summary.json",
    ]  # fmt: skip
    assert len((out / "segments.csv").read_text(encoding="utf-8-sig").splitlines()) == 201
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orders.csv", "out"]


# --------------------------------------------------------------------------- bad numbers, Ctrl-C


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--synth-customers", "0"], "--synth-customers: 0"),
        (["--synth-customers", "-5"], "--synth-customers: -5"),
        (["--seed", "-1"], "--seed: -1"),
        (["--kernel-timeout", "0"], "--kernel-timeout: 0"),
        (["--notebook-timeout", "-3"], "--notebook-timeout: -3"),
    ],
)
def test_bad_numbers_exit_2_before_anything_is_made(tmp_path, monkeypatch, capsys, args, needle):
    monkeypatch.chdir(tmp_path)
    code, err = run_main(capsys, *args, "--out", str(tmp_path / "o"), "--quiet")
    assert code == 2 and needle in one_line(err)
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_during_a_run_exits_130_and_keeps_the_earlier_report(tmp_path, monkeypatch, capsys):
    data = orders_csv(tmp_path / "orders.csv")
    out = tmp_path / "out"
    assert run_main(capsys, "--data", str(data), "--out", str(out), "--quiet")[0] == 0
    before = snapshot(out)

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr("segwork.pipeline.cluster", interrupted)
    code, err = run_main(capsys, "--data", str(data), "--out", str(out), "--quiet")
    assert code == 130
    assert one_line(err) == f"segwork: interrupted; nothing published, {out} untouched"
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orders.csv", "out"]


def test_sigint_to_a_running_process_exits_130_without_traceback(tmp_path):
    data = orders_csv(tmp_path / "orders.csv", 3000)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "segwork", "run", "--data", str(data), "--out", str(out),
         "--no-report"],
        stderr=subprocess.PIPE, text=True, env=env_with_lib(),
    )  # fmt: skip
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "as-of date" in line:  # read and scored; clustering starts now
            break
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    proc.wait(timeout=120)
    err = "".join(lines) + rest
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert (
        err.strip().splitlines()[-1] == f"segwork: interrupted; nothing published, {out} untouched"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orders.csv"]


def test_ctrl_c_during_the_swap_finishes_it_and_says_so(tmp_path, monkeypatch, capsys):
    data = orders_csv(tmp_path / "orders.csv")
    out = tmp_path / "out"
    assert run_main(capsys, "--data", str(data), "--out", str(out), "--as-of", "2024-04-01")[0] == 0
    real_remove, sent = publish.remove_own, []

    def remove_after_ctrl_c(folder: Path) -> None:
        if not sent:  # Ctrl-C arrives between the renames and the removal of the old report
            sent.append(folder)
            os.kill(os.getpid(), signal.SIGINT)
        real_remove(folder)

    monkeypatch.setattr(publish, "remove_own", remove_after_ctrl_c)
    code, err = run_main(capsys, "--data", str(data), "--out", str(out), "--as-of", "2024-05-01")
    assert code == 130
    assert err.strip().splitlines()[-1] == f"segwork: interrupted after {out} was written"
    assert sent and ".out.old-" in sent[0].name
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["as_of"] == "2024-05-01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orders.csv", "out"]
