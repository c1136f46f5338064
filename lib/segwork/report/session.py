"""Executing the report notebooks: a session of child processes with deadlines, HTML export."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segwork.artifacts import summary_path
from segwork.config import KERNEL, NOTEBOOKS_DIR
from segwork.errors import ReportError, SegworkInputError
from segwork.report.execute import Children, Job, Limits, execute
from segwork.report.export import export_html
from segwork.report.pages import write_index
from segwork.report.views import page_title
from segwork.summary import read_summary

if TYPE_CHECKING:  # pragma: no cover
    from segwork.config import RunParams

Progress = Callable[[str], None]


@dataclass(frozen=True)
class NotebookResult:
    """One executed notebook: where it was written, whether it failed, and how long it took."""

    name: str
    ipynb: Path
    html: Path
    seconds: float
    error: str | None = None
    kind: str = "ok"  # ok, cell_error, error, kernel (died twice), timeout
    log: Path | None = None  # the child process's and kernel's output


def notebooks_dir(params: RunParams) -> Path:
    """The folder of report notebooks: ``params.notebooks_dir`` or the notebooks shipped in the package."""
    if params.notebooks_dir:
        return Path(params.notebooks_dir)
    return NOTEBOOKS_DIR


def pick_kernel(say: Progress) -> str:
    """The ``segwork`` kernel when registered, else this Python's own ipykernel (with a note)."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    if KERNEL in specs:
        return KERNEL
    if "python3" in specs:
        say(f"kernel '{KERNEL}' is not registered (run `make install`); using {sys.executable}")
        return "python3"
    raise ReportError(f"no Jupyter kernel '{KERNEL}' found; run `make install` to register it")


def prewarm() -> threading.Thread:
    """Look up the kernels in a background thread while the run computes.

    Notebooks run in child processes (:mod:`segwork.execute`), so the run itself never imports
    papermill or nbconvert unless a page must be rendered after a failure.
    """

    def _imports() -> None:
        from jupyter_client.kernelspec import KernelSpecManager  # noqa: F401

    thread = threading.Thread(target=_imports, name="segwork-prewarm", daemon=True)
    thread.start()
    return thread


def _run_one(
    src: Path,
    build: Path,
    kernel: str,
    parameters: dict[str, Any],
    lang: str,
    say: Progress,
    stop: threading.Event,
    limits: Limits,
    children: Children,
    logs: Path,
) -> NotebookResult | None:
    """Execute one notebook in a child process into ``build`` and export it (None once stopped)."""
    if stop.is_set():
        return None
    name = src.stem
    dst = build / f"{name}.ipynb"
    page = build / f"{name}.html"
    job = Job(
        src=str(src), dst=str(dst), html=str(page), title=page_title(name, lang), kernel=kernel,
        parameters=parameters, start_timeout=limits.kernel_start,
    )  # fmt: skip
    say(f"notebook {name}: running")
    out = execute(job, limits, children, logs, stop, say)
    if out.kind == "cancelled":
        return None
    if out.kind != "ok":
        stop.set()
        if dst.is_file() and not page.is_file():  # killed before its own export: render it here
            # a half-written notebook may not render; the log says more
            with contextlib.suppress(Exception):
                export_html(dst, page, page_title(name, lang))
    say(f"notebook {name}: {'FAILED' if out.kind != 'ok' else 'done'} in {out.seconds:.1f}s")
    return NotebookResult(name, dst, page, out.seconds, out.error, out.kind, out.log)


def notebook_parameters(build: Path, params: RunParams) -> dict[str, Any]:
    """What papermill injects: the run's parameters with absolute paths and OUT = the build folder."""
    absolute = lambda p: str(Path(p).resolve()) if p else None  # noqa: E731
    return {
        "data_path": absolute(params.data_path),
        "config_path": absolute(params.config_path),
        "as_of": params.as_of,
        "lang": params.lang,
        "seed": params.seed,
        "synth_customers": params.synth_customers,
        "max_fit_size": params.max_fit_size,
        "silhouette_sample": params.silhouette_sample,
        "k": params.k,
        "k_range": list(params.k_range) if params.k_range else None,
        "out_dir": str(build.resolve()),
    }


def needs_clusters(path: Path) -> bool:
    """Whether a notebook reads clustering results (metadata ``segwork.needs_clusters``, default yes)."""
    meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    return bool(meta.get("segwork", {}).get("needs_clusters", True))


def limits_of(params: RunParams) -> Limits:
    """The execution deadlines of a run (seconds), checked to be positive."""
    start, whole = float(params.kernel_start_timeout), float(params.notebook_timeout)
    for key, value in (("kernel_start_timeout", start), ("notebook_timeout", whole)):
        if not value > 0:
            raise SegworkInputError(f"{key}: {value:g} is not a positive number of seconds")
    return Limits(kernel_start=start, notebook=whole)


def failure_message(result: NotebookResult, kept: Path, failed_dir: Path) -> str:
    """One line saying which notebook failed, how, and where its notebook and log were kept."""
    log = failed_dir / f"{result.name}.log"
    if result.kind == "cell_error":
        return f"notebook {result.name} failed at {result.error}; see {kept}"
    if result.kind == "kernel":
        return f"notebook {result.name}: {result.error} (after one retry); kernel log: {log}"
    if result.kind == "timeout":
        return f"notebook {result.name} {result.error} (notebook_timeout); kernel log: {log}"
    return f"notebook {result.name} failed: {result.error}; kernel log: {log}"


class ReportSession:
    """Runs the report notebooks, each in its own process, while the caller keeps computing.

    ``submit(early=True)`` starts the notebooks that need no clustering (they can run while the
    clusters are fitted); ``submit(early=False)`` the rest; :meth:`finish` waits, keeps a failed
    notebook and its log in ``failed_dir`` and raises :class:`ReportError`, else writes
    ``index.html``. A thread per running notebook only watches its child process.
    """

    def __init__(self, build: Path, params: RunParams, say: Progress, failed_dir: Path) -> None:
        folder = notebooks_dir(params)
        self.sources = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
        if not self.sources:
            raise ReportError(f"{folder}: no report notebooks (NN_name.ipynb) found")
        self.build, self.params, self.say = build.resolve(), params, say
        self.failed_dir = failed_dir.resolve()
        self.limits = limits_of(params)
        self.kernel = pick_kernel(say)
        self.parameters = notebook_parameters(self.build, params)
        self.logs = Path(tempfile.mkdtemp(prefix="segwork-notebooks-"))
        self.children = Children(self.logs, warm=min(len(self.sources), max(1, params.workers)))
        self.children.fill()  # they import papermill while the caller computes
        self.stop = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=max(1, params.workers))
        self.futures: list[Future[NotebookResult | None]] = []

    def submit(self, early: bool, release_after: bool = False) -> None:
        """Start the notebooks that need no clusters (``early``) or those that do.

        ``release_after``: once this batch has ended, end the idle warm children too, so they
        do not sit through the caller's next stages (a used child holds ~190 MB); :meth:`warm`
        starts a fresh one before the next batch.
        """
        batch = []
        for src in self.sources:
            if needs_clusters(src) != early:
                batch.append(
                    self.pool.submit(
                        _run_one, src, self.build, self.kernel, self.parameters,
                        self.params.lang, self.say, self.stop, self.limits, self.children,
                        self.logs,
                    )
                )  # fmt: skip
        self.futures += batch
        if release_after and batch:
            left, lock = [len(batch)], threading.Lock()

            def ended(_future: Future[NotebookResult | None]) -> None:
                with lock:
                    left[0] -= 1
                    last = left[0] == 0
                if last:
                    self.children.close()

            for future in batch:
                future.add_done_callback(ended)

    def warm(self) -> None:
        """Start the warm children again (after ``release_after``): their imports (~2 s)
        overlap the caller's last writes instead of the next notebook's start."""
        if not self.failed:
            self.children.fill()

    @property
    def failed(self) -> bool:
        """True once any notebook has failed."""
        return self.stop.is_set()

    def cancel(self) -> None:
        """Stop every running notebook (its process tree is killed) and start no more."""
        self.stop.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.children.close()
        shutil.rmtree(self.logs, ignore_errors=True)

    def finish(self) -> list[NotebookResult]:
        """Wait for every notebook; raise ReportError on a failure, else write index.html."""
        try:
            done = [f.result() for f in self.futures]
        except BaseException:
            self.stop.set()
            raise
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.children.close()
        try:
            results = sorted((r for r in done if r is not None), key=lambda r: r.name)
            failed = [r for r in results if r.error or r.kind != "ok"]
            if failed:
                kept = keep_failed(failed[0], self.failed_dir)
                self.say(f"notebook {failed[0].name} failed; kept it in {kept.parent}")
                raise ReportError(failure_message(failed[0], kept, kept.parent))
        finally:
            shutil.rmtree(self.logs, ignore_errors=True)
        summary = read_summary(summary_path(self.build))  # summary.json comes last, with timings
        lang = self.params.lang
        root = Path(self.params.reports_root).resolve()
        monthly = root.is_dir() and self.failed_dir.parent == root  # OUT is a month of reports/
        write_index(self.build, summary, results, lang, monthly_index=monthly)
        self.say(f"report pages: {', '.join(r.html.name for r in results)}, index.html")
        return results


def keep_failed(result: NotebookResult, failed_dir: Path) -> Path:
    """Copy a failed notebook, its HTML page and its log where they survive the discarded build."""
    from segwork.publish import fresh_dir, mark

    failed_dir = fresh_dir(failed_dir)  # replaces only a folder segwork made
    for p in (result.ipynb, result.html, result.log):
        if p is not None and p.is_file():
            shutil.copy2(p, failed_dir / p.name)
    mark(failed_dir)
    return failed_dir / result.ipynb.name
