"""One notebook, one process, one kernel: papermill execution with deadlines the parent enforces.

``segwork run`` never talks to a kernel itself. Each notebook runs in ``python -m segwork.execute
JOB`` (papermill, then the HTML export) in its own session, with its stdout and stderr (the
kernel's too) going to a log file. The parent waits with two deadlines, one for the kernel to
start and one for the whole notebook, kills the process tree when one passes, retries once when
the kernel died, and reads the outcome from a small JSON file. No ZMQ context or event loop is
shared between threads, and kernel noise never reaches the terminal.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Kind = Literal["ok", "cell_error", "error", "kernel", "timeout", "cancelled"]
Progress = Callable[[str], None]

IMPORT_GRACE = 30.0  # seconds a child may still spend importing papermill once handed a job
START_SLACK = 5.0  # seconds beyond kernel_start_timeout: the child's own start timeout goes first
POLL = 0.1  # seconds between checks of the child process
TREE_EVERY = 10  # polls between scans of the child's process tree
STARTED = "started"  # file the child touches when it begins the job (its imports are done)
READY = "ready"  # file the child touches once the kernel answered
EXECUTED = "executed"  # file the child touches once papermill returned (the kernel is shut down)
ORPHAN_GRACE = 15.0  # seconds a child may run on, not executed, after its kernel process died
RESULT = "result.json"  # the child's outcome: {"kind": ..., "error": ...}
# ipykernel warns on every start that local TCP is unencrypted: noise for analysts
KERNEL_ARGS = ("--IPKernelApp.log_level=ERROR",)


@dataclass(frozen=True)
class Limits:
    """Deadlines in seconds: the kernel's start and the whole notebook; kernel-death retries."""

    kernel_start: float = 60.0
    notebook: float = 900.0
    retries: int = 1


@dataclass(frozen=True)
class Job:
    """What the child process executes: paths, kernel, injected parameters, start timeout."""

    src: str
    dst: str
    html: str
    title: str
    kernel: str
    parameters: dict[str, Any] = field(default_factory=dict)
    start_timeout: float = 60.0
    status_dir: str = ""


@dataclass(frozen=True)
class Outcome:
    """How one notebook ended (after any retry), with its log and wall time."""

    kind: Kind
    error: str | None
    log: Path
    seconds: float
    attempts: int = 1


def one_line(text: object) -> str:
    """Collapse whitespace so an error message stays on one line."""
    return " ".join(str(text).split())


# --------------------------------------------------------------------------- child side


def _write_result(status: Path, kind: Kind, error: str | None) -> None:
    """Write the outcome atomically, so the parent never reads half a file."""
    tmp = status / f".{RESULT}.tmp"
    tmp.write_text(json.dumps({"kind": kind, "error": error}), encoding="utf-8")
    os.replace(tmp, status / RESULT)


def _export(job: Job) -> None:
    """Render the executed (or failed) notebook to HTML when papermill wrote it."""
    from segwork.report import export_html

    if Path(job.dst).is_file():
        export_html(Path(job.dst), Path(job.html), job.title)


def run_job(job: Job) -> Kind:
    """Execute ``job`` with papermill in this process and record the outcome; returns its kind."""
    import papermill as pm
    from nbclient.exceptions import DeadKernelError

    status = Path(job.status_dir)
    (status / STARTED).touch()
    ready = status / READY
    kind: Kind = "ok"
    error = None
    try:
        pm.execute_notebook(
            job.src,
            job.dst,
            parameters=job.parameters,
            kernel_name=job.kernel,
            progress_bar=False,
            log_output=False,
            request_save_on_cell_execute=False,
            start_timeout=max(1, math.ceil(job.start_timeout)),
            extra_arguments=list(KERNEL_ARGS),
            on_notebook_start=lambda **_: ready.touch(),
        )
    except pm.PapermillExecutionError as exc:
        kind, error = "cell_error", f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
    except DeadKernelError as exc:
        kind, error = "kernel", f"the kernel died while running ({exc})"
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises ReportError
        if ready.exists():
            kind, error = "error", f"{type(exc).__name__}: {exc}"
        else:  # jupyter_client: "Kernel died before replying", "Kernel didn't respond in N seconds"
            kind, error = "kernel", f"the kernel did not start ({type(exc).__name__}: {exc})"
    (status / EXECUTED).touch()
    try:
        _export(job)
    except Exception as exc:  # noqa: BLE001
        if kind == "ok":
            kind, error = "error", f"HTML export failed: {type(exc).__name__}: {exc}"
    _write_result(status, kind, one_line(error) if error else None)
    return kind


def main(argv: list[str] | None = None) -> int:
    """``python -m segwork.execute [JOB.json]``: run a job (its path read from stdin when absent).

    Without an argument the process imports papermill and nbconvert first and then waits for
    one job path on stdin, so a warm process is ready when a notebook is due; end of input
    (the parent has gone) ends it. Exit 0 when the notebook ran, 1 when it failed.
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1:
        print("usage: python -m segwork.execute [JOB.json]", file=sys.stderr)
        return 2
    if not args:
        import nbconvert  # noqa: F401
        import papermill  # noqa: F401

        import segwork.report  # noqa: F401

        line = sys.stdin.readline().strip()
        if not line:
            return 0
        args = [line]
    job = Job(**json.loads(Path(args[0]).read_text(encoding="utf-8")))
    return 0 if run_job(job) == "ok" else 1


# --------------------------------------------------------------------------- parent side


def child_env() -> dict[str, str]:
    """This environment with this segwork first on PYTHONPATH, so the child imports the same code."""
    lib = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (lib, path) if p)}


def _tree(pid: int) -> list[Any]:
    """The process ``pid`` and all its descendants (psutil handles; empty once it is gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _gone(proc: Any) -> bool:
    """True when a process has exited (a zombie counts: it runs no code)."""
    import psutil

    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def kill_tree(proc: subprocess.Popen[bytes], seen: dict[int, Any]) -> None:
    """SIGKILL the child, the kernel it started and anything else seen below it; reap the child."""
    import psutil

    procs = {p.pid: p for p in (*seen.values(), *_tree(proc.pid))}
    for p in procs.values():
        with contextlib.suppress(psutil.Error):
            p.kill()  # psutil checks the start time, so a reused pid is never hit
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not all(_gone(p) for p in procs.values()):
        time.sleep(POLL)


def _read_result(status: Path, returncode: int | None) -> tuple[Kind, str | None]:
    """The child's recorded outcome; a child that died without one counts as a dead kernel."""
    try:
        data = json.loads((status / RESULT).read_text(encoding="utf-8"))
        return data["kind"], data.get("error")
    except (OSError, ValueError, KeyError):
        return "kernel", f"the notebook process exited with code {returncode} and no result"


def _kernel_lost(child: int, seen: dict[int, Any]) -> bool:
    """True when the child has started processes (its kernel) and all of them have exited."""
    kids = [p for pid, p in seen.items() if pid != child]
    return bool(kids) and all(_gone(p) for p in kids)


def _main_thread_gone() -> bool:
    """True once the interpreter is shutting down (the main thread has ended, e.g. on Ctrl-C)."""
    return not threading.main_thread().is_alive()


@dataclass
class Child:
    """A ``python -m segwork.execute`` process waiting for one job on stdin, and its log."""

    proc: subprocess.Popen[bytes]
    log: Path


class Children:
    """Warm child processes: each imports papermill ahead of time, then runs one notebook.

    ``expected`` is how many notebooks will ask for one; while some are still to come, a
    spare is kept importing, so a notebook's start never waits for imports.
    """

    def __init__(
        self, logs: Path, expected: int, warm: int, command: tuple[str, ...] | None = None
    ) -> None:
        self.logs, self.left, self.warm = logs, expected, warm
        self.command = list(command or (sys.executable, "-m", "segwork.execute"))
        self.idle: list[Child] = []
        self.lock = threading.Lock()
        self.serial = itertools.count(1)

    def spawn(self) -> Child:
        """Start one child: its own session (no terminal Ctrl-C, one kill), output to a log."""
        log = self.logs / f"child-{next(self.serial)}.log"
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=child_env(),
            )
        return Child(proc, log)

    def fill(self) -> None:
        """Keep up to ``warm`` idle children while notebooks are still to come."""
        with self.lock:
            need = min(self.warm, self.left) - len(self.idle)
            self.idle += [self.spawn() for _ in range(max(0, need))]

    def take(self) -> Child:
        """An idle child (or a new one) for the next notebook; a spare starts behind it."""
        with self.lock:
            self.left = max(0, self.left - 1)
            child = self.idle.pop(0) if self.idle else None
        child = child or self.spawn()
        self.fill()
        return child

    def close(self) -> None:
        """End the idle children (they would exit on end of input anyway)."""
        with self.lock:
            idle, self.idle, self.left = self.idle, [], 0
        for c in idle:
            kill_tree(c.proc, {})


def attempt(
    job: Job, limits: Limits, child: Child, stop: threading.Event
) -> tuple[Kind, str | None]:
    """Hand ``job`` to ``child`` and watch it, enforcing both deadlines; (kind, error)."""
    status = Path(job.status_dir)
    status.mkdir(parents=True, exist_ok=True)
    job_file = status / "job.json"
    job_file.write_text(json.dumps(asdict(job)), encoding="utf-8")
    proc = child.proc
    t0 = time.monotonic()
    seen: dict[int, Any] = {}
    started: float | None = None  # when the child began the job (imports done)
    ready = False
    orphaned: float | None = None  # when the kernel was first seen gone with the child still busy
    verdict: tuple[Kind, str | None] | None = None
    try:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # a child that died: no result, retried
            proc.stdin.write(f"{job_file}\n".encode())
            proc.stdin.close()
        for tick in itertools.count():
            if proc.poll() is not None:
                break
            now = time.monotonic()
            elapsed = now - t0
            started = started or (now if (status / STARTED).exists() else None)
            ready = ready or (status / READY).exists()
            if tick % TREE_EVERY == 0:  # remember the kernel, so it dies with the child
                seen.update((p.pid, p) for p in _tree(proc.pid))
                lost = _kernel_lost(proc.pid, seen) and not (status / EXECUTED).exists()
                orphaned = (orphaned or time.monotonic()) if lost else None
            if stop.is_set() or _main_thread_gone():
                verdict = ("cancelled", None)
            elif elapsed > limits.notebook:
                verdict = ("timeout", f"did not finish within {limits.notebook:g} s")
            elif (
                not ready
                and now - (started or t0 + IMPORT_GRACE) > limits.kernel_start + START_SLACK
            ):
                verdict = ("kernel", f"the kernel did not start within {limits.kernel_start:g} s")
            elif orphaned and now - orphaned > ORPHAN_GRACE:
                verdict = ("kernel", "the kernel died and its notebook process stopped responding")
            if verdict:
                break
            time.sleep(POLL)
    finally:
        kill_tree(proc, seen)  # also ends a kernel the child left behind
    return verdict or _read_result(status, proc.returncode)


def _append_log(log: Path, child: Child, title: str) -> None:
    """Add one attempt's output (the child's and its kernel's) to the notebook's log."""
    with log.open("ab") as fh:
        fh.write(f"--- {title}\n".encode())
        with contextlib.suppress(OSError):
            fh.write(child.log.read_bytes())
    child.log.unlink(missing_ok=True)


def execute(
    job: Job,
    limits: Limits,
    children: Children,
    logs: Path,
    stop: threading.Event,
    say: Progress,
) -> Outcome:
    """Run one notebook, retrying once (``limits.retries``) when its kernel died or hung at start."""
    name = Path(job.src).stem
    log = logs / f"{name}.log"
    t0 = time.perf_counter()
    tries = limits.retries + 1
    for n in range(1, tries + 1):
        run = Job(**{**asdict(job), "status_dir": str(logs / f"{name}.{n}")})
        child = children.take()
        kind, error = attempt(run, limits, child, stop)
        _append_log(log, child, f"{name}, attempt {n}: {kind}")
        if kind != "kernel" or n == tries:
            break
        say(f"notebook {name}: {error}; retrying")
    return Outcome(kind, error, log, time.perf_counter() - t0, n)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
