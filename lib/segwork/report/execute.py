"""One notebook, one process, one kernel: papermill execution with deadlines the parent enforces.

``segwork run`` never talks to a kernel itself. Each notebook runs in ``python -m segwork.report.execute
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

from segwork.config import DEFAULT_LANG

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
    from segwork.report.export import export_html

    if Path(job.dst).is_file():
        export_html(Path(job.dst), Path(job.html), job.title)


def _source(job: Job) -> str:
    """``job.src`` with only the prose of the run's language, written beside the job's status.

    Papermill records this path as the notebook's ``input_path``; the cells tagged for other
    languages never reach the executed notebook or its page.
    """
    import nbformat

    from segwork.report.export import keep_language

    nb = keep_language(
        nbformat.read(job.src, as_version=4), job.parameters.get("lang", DEFAULT_LANG)
    )
    dest = Path(job.status_dir) / Path(job.src).name
    nbformat.write(nb, dest)
    return str(dest)


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
            _source(job),
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


def _import_exporter() -> None:
    """Import nbconvert and segwork.report.export (for the HTML export)."""
    import nbconvert  # noqa: F401

    import segwork.report.export  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    """``python -m segwork.report.execute [JOB.json]``: run one job, or job paths read from stdin.

    Without an argument the process imports papermill and nbconvert first and then runs one job
    per line of stdin, one after another, each on a fresh kernel; end of input (the parent has
    gone) ends it. With a path, exit 0 when the notebook ran, 1 when it failed.
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1:
        print("usage: python -m segwork.report.execute [JOB.json]", file=sys.stderr)
        return 2
    if not args:
        import papermill  # noqa: F401

        # the exporter is needed only after the notebook ran: import it while the kernel starts
        threading.Thread(target=_import_exporter, name="segwork-import", daemon=True).start()
        while line := sys.stdin.readline():
            if line.strip():
                run_job(Job(**json.loads(Path(line.strip()).read_text(encoding="utf-8"))))
        return 0
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


def _kill(procs: list[Any]) -> None:
    """SIGKILL ``procs`` (psutil handles) and wait up to 5 s for them to go."""
    import psutil

    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()  # psutil checks the start time, so a reused pid is never hit
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not all(_gone(p) for p in procs):
        time.sleep(POLL)


def kill_tree(proc: subprocess.Popen[bytes], seen: dict[int, Any]) -> None:
    """SIGKILL the child, the kernel it started and anything else seen below it; reap the child."""
    procs = {p.pid: p for p in (*seen.values(), *_tree(proc.pid))}
    proc.kill()  # a no-op once it has been reaped
    _kill(list(procs.values()))
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _read_result(status: Path, returncode: int | None) -> tuple[Kind, str | None]:
    """The child's recorded outcome; a child that died without one counts as a dead kernel."""
    try:
        data = json.loads((status / RESULT).read_text(encoding="utf-8"))
        return data["kind"], data.get("error")
    except (OSError, ValueError, KeyError):
        return "kernel", f"the notebook process exited with code {returncode} and no result"


def _kernel_lost(seen: dict[int, Any]) -> bool:
    """True when the child has started processes for this job (its kernel) and all have exited."""
    return bool(seen) and all(_gone(p) for p in seen.values())


def _main_thread_gone() -> bool:
    """True once the interpreter is shutting down (the main thread has ended, e.g. on Ctrl-C)."""
    return not threading.main_thread().is_alive()


@dataclass
class Child:
    """A ``python -m segwork.report.execute`` process that runs the jobs written to its stdin, its log."""

    proc: subprocess.Popen[bytes]
    log: Path


class Children:
    """Warm child processes: each imports papermill ahead of time, then runs notebooks in turn.

    A child is handed one notebook at a time and comes back after a clean end (its kernel shut
    down); after a dead kernel, a deadline or a cancel it is killed with everything below it.
    ``warm`` children are started by :meth:`fill`, so the imports overlap the caller's work.
    """

    def __init__(self, logs: Path, warm: int, command: tuple[str, ...] | None = None) -> None:
        self.logs, self.warm = logs, warm
        self.command = list(command or (sys.executable, "-m", "segwork.report.execute"))
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
        """Start children until ``warm`` are idle."""
        with self.lock:
            self.idle += [self.spawn() for _ in range(max(0, self.warm - len(self.idle)))]

    def take(self) -> Child:
        """A live idle child, or a new one."""
        with self.lock:
            while self.idle:
                child = self.idle.pop(0)
                if child.proc.poll() is None:
                    return child
            return self.spawn()

    def give_back(self, child: Child) -> None:
        """Return a child whose notebook ended cleanly, for the next notebook."""
        with self.lock:
            self.idle.append(child)

    def close(self) -> None:
        """End the idle children (they would exit on end of input anyway)."""
        with self.lock:
            idle, self.idle = self.idle, []
        for c in idle:
            kill_tree(c.proc, {})


def attempt(
    job: Job, limits: Limits, child: Child, stop: threading.Event
) -> tuple[Kind, str | None, bool]:
    """Hand ``job`` to ``child`` and watch it, enforcing both deadlines.

    Returns (kind, error, reusable): ``reusable`` when the child is alive and idle again;
    otherwise it has been killed with its kernel.
    """
    status = Path(job.status_dir)
    status.mkdir(parents=True, exist_ok=True)
    for stale in (STARTED, READY, EXECUTED, RESULT):  # from an earlier run of the same name
        (status / stale).unlink(missing_ok=True)
    job_file = status / "job.json"
    job_file.write_text(json.dumps(asdict(job)), encoding="utf-8")
    proc = child.proc
    t0 = time.monotonic()
    earlier = {p.pid for p in _tree(proc.pid)}  # the child itself (a former kernel is reaped)
    seen: dict[int, Any] = {}
    started: float | None = None  # when the child began the job (imports done)
    ready = False
    orphaned: float | None = None  # when the kernel was first seen gone with the child still busy
    verdict: tuple[Kind, str | None] | None = None
    try:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # a child that died: no result, retried
            proc.stdin.write(f"{job_file}\n".encode())
            proc.stdin.flush()
        for tick in itertools.count():
            if proc.poll() is not None or (status / RESULT).exists():
                break
            now = time.monotonic()
            elapsed = now - t0
            started = started or (now if (status / STARTED).exists() else None)
            ready = ready or (status / READY).exists()
            if tick % TREE_EVERY == 0:  # remember the kernel, so it dies with the child
                seen.update((p.pid, p) for p in _tree(proc.pid) if p.pid not in earlier)
                lost = _kernel_lost(seen) and not (status / EXECUTED).exists()
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
    except BaseException:
        kill_tree(proc, seen)
        raise
    kind, error = verdict or _read_result(status, proc.poll())
    if verdict is None and proc.poll() is None and kind != "kernel":
        # a clean end: the child is idle again; a kernel it left behind (none, normally) ends
        _kill([*seen.values(), *(p for p in _tree(proc.pid) if p.pid not in earlier)])
        return kind, error, True
    kill_tree(proc, seen)  # the child, its kernel and anything below
    return kind, error, False


def _log_size(child: Child) -> int:
    """Bytes in a child's log so far (where the next job's output starts)."""
    try:
        return child.log.stat().st_size
    except OSError:
        return 0


def _append_log(log: Path, child: Child, start: int, title: str) -> None:
    """Add one attempt's output (the child's and its kernel's, from ``start``) to ``log``."""
    with log.open("ab") as fh, contextlib.suppress(OSError):
        fh.write(f"--- {title}\n".encode())
        with child.log.open("rb") as src:
            src.seek(start)
            fh.write(src.read())


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
        start = _log_size(child)
        kind, error, reusable = attempt(run, limits, child, stop)
        _append_log(log, child, start, f"{name}, attempt {n}: {kind}")
        if reusable:
            children.give_back(child)
        if kind != "kernel" or n == tries:
            break
        say(f"notebook {name}: {error}; retrying")
    return Outcome(kind, error, log, time.perf_counter() - t0, n)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
