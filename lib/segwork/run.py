"""A whole `segwork run`: data -> ledger -> RFM segments -> outputs, published atomically."""

from __future__ import annotations

import dataclasses
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from segwork import migrate
from segwork.artifacts import (
    ARTIFACTS,
    STAGE_SUMMARY,
    pseudonym,
    write_cluster_artifacts,
    write_prediction_artifacts,
    write_rfm_artifacts,
)
from segwork.config import RunParams, check_params
from segwork.errors import SegworkInputError
from segwork.outputs import (
    SEGMENTS_XLSX_MAX,
    segments_frame,
    write_segment_lists,
    write_segments,
)
from segwork.pipeline import Prepared, Progress, RunResult, compute, full_summary
from segwork.publish import (
    atomic_dir,
    check_out,
    check_root,
    claimed,
)
from segwork.schema import Config
from segwork.store import release_memory, resource_guard
from segwork.summary import Summary, Timings, data_warnings, write_summary

#: Above this many customers the report notebooks run one at a time (each kernel loads the
#: customer table: two at once added ~1 GB at 1M customers, for ~10 s less wall time).
SERIAL_NOTEBOOKS_ABOVE = 250_000

CLUSTER_COLUMNS = (
    "kmeans_cluster",
    "ward_cluster",
    "hdbscan_cluster",
    "hdbscan_probability",
    "gmm_cluster",
    "gmm_probability",
)


def out_folder(params: RunParams, prep: Prepared) -> Path:
    """OUT: ``--out`` or ``reports/<YYYY-MM of the as-of date>/``."""
    if params.out_dir:
        return Path(params.out_dir)
    return Path(params.reports_root) / prep.as_of.strftime("%Y-%m")


def pseudonymise_warnings(summary: Summary, key: bytes | None) -> Summary:
    """The summary with customer IDs in warning examples replaced by their keyed hash (report
    files never show a real ID under --pseudonymise; the terminal line keeps them)."""
    if key is None:
        return summary
    warnings = []
    for w in summary.warnings:
        ids = w.params.get("examples")
        if isinstance(ids, list) and ids:
            hashed = [pseudonym(str(i), key) for i in ids]
            message = w.message
            for real, fake in zip(ids, hashed, strict=True):
                message = message.replace(str(real), fake)
            w = w.model_copy(
                update={"params": {**w.params, "examples": hashed}, "message": message}
            )
        warnings.append(w)
    return summary.model_copy(update={"warnings": warnings})


def print_warnings(prep: Prepared) -> None:
    """Each data-quality warning once on stderr (also under --quiet: they are not progress)."""
    for w in data_warnings(prep):
        print(f"segwork: warning: {w.message} [{w.code}]", file=sys.stderr, flush=True)


def run(
    params: RunParams, progress: Progress | None = None, pseudonym_key: bytes | None = None
) -> Path:
    """Execute a run and publish OUT atomically; returns OUT. Bad input raises SegworkInputError.

    The computation is :func:`segwork.pipeline.compute`; this module only publishes and schedules.
    OUT is checked before any data is read (``--out``) or as soon as the as-of date names it
    (default), locked against other runs, and replaced only when segwork wrote it (see
    :mod:`segwork.publish`). With ``params.report`` the notebooks that need no clusters start as
    soon as the RFM artefacts exist and run while the clusters are fitted; the rest follow. A
    failing notebook raises :class:`segwork.errors.ReportError` and OUT keeps its earlier content.
    """
    say = progress or (lambda _msg: None)
    check_params(params)
    if params.pseudonymise and not pseudonym_key:
        raise SegworkInputError("--pseudonymise needs a key: set SEGWORK_PSEUDONYM_KEY")
    given = check_out(params.out_dir) if params.out_dir is not None else None
    if given is None:
        check_root(params.reports_root)
    t0 = time.perf_counter()
    if params.report:
        from segwork.report.session import prewarm

        prewarm()
    with resource_guard(), ExitStack() as held:  # out of memory / disk full: one line, exit 3
        if given is not None:
            held.enter_context(claimed(given, say, params.lock_timeout))
        publisher = Publisher(params, given, held, pseudonym_key, say)
        # no name holds the result here: finish() lets go of its frames before the last notebooks
        publisher.finish(compute(params, say, on_prepared=publisher.prepared), t0)
    if params.report:
        from segwork.report.pages import write_reports_index

        write_reports_index(publisher.out.parent, Path(params.reports_root), say, params.lang)
    return publisher.out


class Publisher:
    """Claims OUT once the as-of date is known, writes into its build folder, runs the report."""

    def __init__(
        self,
        params: RunParams,
        given: Path | None,
        held: ExitStack,
        pseudonym_key: bytes | None,
        say: Progress,
    ) -> None:
        self.params, self.given, self.held, self.say = params, given, held, say
        self.key = pseudonym_key if params.pseudonymise else None
        self.out = given or Path()
        self.tmp = Path()
        self.session: Any = None

    def prepared(self, prep: Prepared, cfg: Config) -> None:
        """After the RFM stage: claim OUT, open its build folder, start the early notebooks."""
        print_warnings(prep)
        params, held = self.params, self.held
        self.out = self.given or check_out(out_folder(params, prep), "OUT")
        if self.given is None:
            held.enter_context(claimed(self.out, self.say, params.lock_timeout, "OUT"))
        self.tmp = held.enter_context(atomic_dir(self.out, as_of=prep.as_of.isoformat()))
        held.push(self._cancel_on_error)  # unwinds before the build folder is removed
        if not params.report:
            return
        from segwork.report.session import ReportSession

        with prep.timings.stage("write"):
            self.say("report data: top countries and products per segment, product lift")
            write_rfm_artifacts(self.tmp, prep, pseudonym_key=self.key)
            stage = full_summary(prep, cfg, params, None, time.perf_counter())
            stage = pseudonymise_warnings(stage, self.key)
            write_summary(self.tmp / ARTIFACTS / STAGE_SUMMARY, stage)
        failed = self.out.parent / f".failed-{self.out.name}"
        large = len(prep.table) > SERIAL_NOTEBOOKS_ABOVE
        if large and params.workers > 1:
            # each notebook kernel holds the customer table: one at a time bounds the memory
            self.say(f"notebooks one at a time ({len(prep.table):,} customers)")
            params = dataclasses.replace(params, workers=1)
        self.session = ReportSession(self.tmp, params, self.say, failed)
        # a large run's clustering, prediction and segments frame are its memory peaks: no
        # idle notebook process sits through them (a fresh one starts after the lists)
        self.session.submit(early=True, release_after=large)

    def _cancel_on_error(self, exc_type: type[BaseException] | None, *_: object) -> bool:
        """On an exception, kill the notebooks still running before the build folder goes."""
        if exc_type is not None and self.session is not None:
            if any(not f.done() for f in self.session.futures):
                self.say("stopping the notebooks still running")
            self.session.cancel()
        return False

    def finish(self, result: RunResult, t0: float) -> None:
        """segments.csv/.xlsx, summary.json and artefacts, then the remaining notebooks."""
        prep, clus, session = result.prep, result.clusters, self.session
        for code, message, _ in result.prediction.warnings if result.prediction else ():
            print(f"segwork: warning: {message} [{code}]", file=sys.stderr, flush=True)
        summary = pseudonymise_warnings(result.summary, self.key)
        timings, tmp = prep.timings, self.tmp
        with timings.stage("write"):
            self.say(f"writing {self.out}")
            if session is not None and not session.failed and clus is not None:
                # a streaming join of the items into a small aggregate: DuckDB stays idle (a
                # full limit only fills its buffer pool with the items read back from disk)
                write_cluster_artifacts(tmp, prep, clus, pseudonym_key=self.key)
            if self.params.engine != "spark":  # Spark's segments below still read its tables
                # nothing below reads DuckDB: its buffers go before the segments frame is built
                prep.store.close()
            if session is not None and not session.failed and result.prediction is not None:
                # before the segments frame: Arrow's copy of the IDs does not stack on its text
                write_prediction_artifacts(tmp, result.prediction, pseudonym_key=self.key)
            labels = prep.segment_map.labels(self.params.lang)
            extra = clus.labels[list(CLUSTER_COLUMNS)] if clus else None
            if result.migration is not None:
                prev = migrate.previous_columns(result.migration, labels)
                extra = prev if extra is None else prev.join(extra)
            pred = result.prediction.customers if result.prediction else None
            frame = segments_frame(prep.table, labels, extra, pred)
            if not write_segments(frame, tmp):
                self.say(
                    f"segments.xlsx skipped: {len(frame):,} customers is more than "
                    f"{SEGMENTS_XLSX_MAX:,}; segments.csv and lists/ hold them all"
                )
            write_segment_lists(frame, tmp)
            del frame  # a million rows of display text: not held while the notebooks run
            if session is not None:  # past the peak: its imports overlap the last writes
                session.warm()
            if self.params.engine == "spark":  # large tables also as partitioned Parquet
                from segwork.spark import write_run_segments

                write_run_segments(prep, clus, tmp, self.say)
            if session is not None and not session.failed:
                write_summary(tmp / ARTIFACTS / STAGE_SUMMARY, summary)
        results = []
        # DuckDB's tables, memory and scratch folder go now (if not already), and so do the
        # run's frames: the notebooks still to run read only the files written above
        prep.store.close()
        del result, prep, clus, extra, pred
        release_memory()
        if session is not None:
            with timings.stage("report"):
                if not session.failed:
                    session.submit(early=False)
                results = session.finish()
        summary.timings = Timings.model_validate(
            {
                **{k: round(v, 3) for k, v in timings.seconds.items()},
                "total": round(time.perf_counter() - t0, 3),
                "notebooks": {r.name: round(r.seconds, 3) for r in results},
            }
        )
        write_summary(tmp / "summary.json", summary)  # once, when everything else is written
