"""A whole `segwork run`: data -> ledger -> RFM segments -> outputs, published atomically."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import platform
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.base import clone

from segwork import __version__
from segwork.artifacts import write_artifacts
from segwork.compare import METHOD_COLUMNS, ClusterConfig, ClusteringResult, run_clustering
from segwork.errors import SegworkInputError
from segwork.outputs import segments_frame, write_json, write_segments
from segwork.pipeline import Prepared, Progress, prepare
from segwork.publish import (
    DEFAULT_LOCK_TIMEOUT,
    atomic_dir,
    check_out,
    check_root,
    claimed,
    out_lock,
)
from segwork.rfm import edges_report
from segwork.schema import Config, config_to_dict, load_config

CLUSTER_COLUMNS = ("kmeans_cluster", "ward_cluster", "hdbscan_cluster", "hdbscan_probability")
DEFAULT_SYNTH_CUSTOMERS = 5_000
DEFAULT_SEED = 0


@dataclass(frozen=True)
class RunParams:
    """What the CLI, papermill and tests pass to a run; plain values only."""

    data_path: str | None = None
    config_path: str | None = None
    as_of: str | None = None  # YYYY-MM-DD
    out_dir: str | None = None  # default reports/<YYYY-MM of as-of>/
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT  # seconds to wait for another run writing OUT
    lang: str = "ko"
    seed: int = DEFAULT_SEED
    synth_customers: int = DEFAULT_SYNTH_CUSTOMERS
    data_cache: str = "data/synthetic"
    reports_root: str = "reports"
    max_fit_size: int = 20_000  # Ward and HDBSCAN fit on a sample above this many customers
    silhouette_sample: int = 10_000
    stability_repeats: int = 3
    clusters: bool = True
    report: bool = True  # execute the notebooks and write the HTML report
    pseudonymise: bool = False  # report files show keyed hashes instead of customer IDs
    workers: int = 2  # notebooks executed at the same time
    notebooks_dir: str | None = None  # default: the project's notebooks/
    kernel_start_timeout: float = 60  # seconds for a notebook's kernel to start (retried once)
    notebook_timeout: float = 900  # seconds for one notebook, start to HTML; then it is killed


def parse_as_of(text: str | None) -> date | None:
    """YYYY-MM-DD -> date; anything else is a one-line input error."""
    if text is None or text == "":
        return None
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        raise SegworkInputError(f"--as-of: '{text}' is not a date in YYYY-MM-DD form") from None


def check_params(params: RunParams) -> None:
    """Refuse parameters no run can use, before anything is read or written."""
    if params.lang not in ("ko", "en"):
        raise SegworkInputError(f"--lang: '{params.lang}' is not supported; use ko or en")
    if params.synth_customers < 1:
        raise SegworkInputError(
            f"--synth-customers: {params.synth_customers} customers; give 1 or more"
        )
    if params.seed < 0:
        raise SegworkInputError(f"--seed: {params.seed} is negative; give 0 or more")
    if not params.lock_timeout >= 0:
        raise SegworkInputError(f"--wait: {params.lock_timeout} seconds; give 0 or more")
    for flag, value in (
        ("--kernel-timeout", params.kernel_start_timeout),
        ("--notebook-timeout", params.notebook_timeout),
    ):
        if not value > 0:
            raise SegworkInputError(f"{flag}: {value:g} seconds; give a positive number")


def default_data(params: RunParams, progress: Progress) -> Path:
    """The seeded synthetic shop, written once into the cache folder and reused afterwards."""
    from segwork import synth
    from segwork.synth import SynthSpec, write_synthetic

    # The generator's own source is part of the key: a change to synth.py makes new data,
    # never a stale cache that nbval would replay.
    code = hashlib.sha256(Path(synth.__file__).read_bytes()).hexdigest()[:10]
    name = f"shop-{params.synth_customers}c-seed{params.seed}-{code}"
    folder = Path(params.data_cache) / name
    tx = folder / "transactions.parquet"

    def cached() -> bool:
        return tx.is_file() and (folder / "personas.parquet").is_file()

    if cached():
        return tx
    folder.parent.mkdir(parents=True, exist_ok=True)
    with out_lock(folder, progress, params.lock_timeout):  # two runs generate it once
        if cached():
            return tx
        progress(
            f"generating the synthetic shop ({params.synth_customers:,} customers) in {folder}"
        )
        spec = SynthSpec(n_customers=params.synth_customers, seed=params.seed)
        with atomic_dir(folder, flag="synthetic data cache") as tmp:
            write_synthetic(
                tmp,
                spec,
                progress=lambda done, total: progress(f"  {done:,} / {total:,} customers"),
            )
    return tx


def load_truth(data_path: Path) -> pd.Series | None:
    """Planted personas beside a synthetic data file (``personas.parquet``), if any."""
    p = data_path.parent / "personas.parquet"
    if not p.is_file():
        return None
    df = pd.read_parquet(p, columns=["customer_id", "persona"])
    return df.set_index(df["customer_id"].astype(str))["persona"]


def data_warnings(prep: Prepared) -> list[dict[str, str]]:
    """summary.json ``warnings``: the reader's (ambiguous dates, skipped sheets, ...) then the
    data's (stale data, cancel-heavy customers, ...), each {code, message}."""
    found = tuple(getattr(prep.source, "warnings", ())) + tuple(prep.warnings)
    return [{"code": code, "message": message} for code, message in found]


def print_warnings(prep: Prepared) -> None:
    """Each data-quality warning once on stderr (also under --quiet: they are not progress)."""
    for w in data_warnings(prep):
        print(f"segwork: warning: {w['message']} [{w['code']}]", file=sys.stderr, flush=True)


def build_summary(prep: Prepared, cfg: Config, params: RunParams) -> dict[str, Any]:
    """summary.json: ledger, customers, segment counts per method, warnings, params and timings."""
    labels = prep.segment_map.labels(params.lang)
    counts = prep.table["rfm_segment_id"].value_counts()
    revenue = prep.table.groupby("rfm_segment_id")["monetary"].sum()
    segs = {
        s.id: {
            "label": labels[s.id],
            "label_ko": s.ko,
            "label_en": s.en,
            "stage": s.stage,
            "customers": int(counts.get(s.id, 0)),
            "revenue": round(float(revenue.get(s.id, 0.0)), 2),
        }
        for s in prep.segment_map.segments
    }
    src = prep.source
    return {
        "segwork_version": __version__,
        "as_of": prep.as_of.isoformat(),
        "as_of_source": "given" if prep.as_of_given else "day after the latest kept transaction",
        "period": {"first": prep.first_date.isoformat(), "last": prep.last_date.isoformat()},
        "source": {
            "path": str(src.path),
            "format": src.format,
            "layout": src.layout,
            "encoding": src.encoding,
            "mapping": src.mapping,
            "sheets": list(src.sheets) if src.sheets is not None else None,
            "sheets_skipped": list(src.sheets_skipped),
            "header_row": src.header_row,
            "date_format": src.date_format,
        },
        "ledger": prep.ledger.as_dict(),
        "warnings": data_warnings(prep),
        "customers": len(prep.table),
        "segments": {"rfm": {v["label"]: v["customers"] for v in segs.values()}},
        "rfm": {
            "segment_map": prep.segment_map.name,
            "bins": prep.segmenter.bins,
            "edges": edges_report(prep.segmenter.edges_),
            "groups": segs,
        },
        "params": {**dataclasses.asdict(params), "config": config_to_dict(cfg)},
        "environment": {"python": platform.python_version(), "platform": sys.platform},
    }


def cluster_config(params: RunParams) -> ClusterConfig:
    """The clustering stage's configuration from run parameters."""
    return ClusterConfig(
        ward_max_fit_size=params.max_fit_size,
        hdbscan_max_fit_size=params.max_fit_size,
        silhouette_sample=params.silhouette_sample,
        stability_repeats=params.stability_repeats,
        seed=params.seed,
    )


def cluster(
    prep: Prepared, params: RunParams, truth: pd.Series | None, say: Progress
) -> ClusteringResult:
    """K-Means, Ward and HDBSCAN on the RFM table, with the RFM segmenter in the same loop."""
    ref = {"rfm": clone(prep.segmenter)}
    with prep.timings.stage("clustering"):
        return run_clustering(
            prep.table, cluster_config(params), reference=ref, truth=truth, progress=say
        )


def start(params: RunParams, progress: Progress | None = None) -> tuple[Config, Path, Prepared]:
    """Validate parameters, read, clean and score RFM: everything before clustering."""
    say = progress or (lambda _msg: None)
    check_params(params)
    cfg = load_config(params.config_path)
    as_of = parse_as_of(params.as_of)
    data = Path(params.data_path) if params.data_path else default_data(params, say)
    prep = prepare(data, cfg, as_of, progress=say)
    say(
        f"as-of date {prep.as_of} ({'given' if prep.as_of_given else 'day after the latest kept transaction'})"
    )
    return cfg, data, prep


def full_summary(
    prep: Prepared, cfg: Config, params: RunParams, clus: ClusteringResult | None, t0: float
) -> dict[str, Any]:
    """summary.json with the clustering results (when given) and timings so far."""
    summary = build_summary(prep, cfg, params)
    if clus:
        for method in METHOD_COLUMNS:
            summary["segments"][method] = clus.summary["methods"].get(method, {}).get("counts", {})
        summary["clustering"] = clus.summary
    summary["timings"] = {k: round(v, 3) for k, v in prep.timings.seconds.items()}
    summary["timings"]["total"] = round(time.perf_counter() - t0, 3)
    return summary


def compute(
    params: RunParams, progress: Progress | None = None
) -> tuple[Prepared, ClusteringResult | None, dict[str, Any]]:
    """Everything a run computes (ledger, RFM, clusters) and its summary; nothing is written."""
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    cfg, data, prep = start(params, say)
    clus = cluster(prep, params, load_truth(data), say) if params.clusters else None
    return prep, clus, full_summary(prep, cfg, params, clus, t0)


def out_folder(params: RunParams, prep: Prepared) -> Path:
    """OUT: ``--out`` or ``reports/<YYYY-MM of the as-of date>/``."""
    if params.out_dir:
        return Path(params.out_dir)
    return Path(params.reports_root) / prep.as_of.strftime("%Y-%m")


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """write_json through a temporary file, so a notebook reading it never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    write_json(tmp, data)
    os.replace(tmp, path)


def run(
    params: RunParams, progress: Progress | None = None, pseudonym_key: bytes | None = None
) -> Path:
    """Execute a run and publish OUT atomically; returns OUT. Bad input raises SegworkInputError.

    OUT is checked before any data is read (``--out``) or as soon as the as-of date names it
    (default), locked against other runs, and replaced only when segwork wrote it (see
    :mod:`segwork.publish`). With ``params.report`` the notebooks that need no clusters start as
    soon as the RFM artefacts exist and run while the clusters are fitted; the rest follow. A
    failing notebook raises :class:`segwork.report.ReportError` and OUT keeps its earlier content.
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
        from segwork.report import prewarm

        prewarm()
    with ExitStack() as held:
        if given is not None:
            held.enter_context(claimed(given, say, params.lock_timeout))
        cfg, data, prep = start(params, say)
        print_warnings(prep)
        out = given or check_out(out_folder(params, prep), "OUT")
        if given is None:
            held.enter_context(claimed(out, say, params.lock_timeout, "OUT"))
        with atomic_dir(out, as_of=prep.as_of.isoformat()) as tmp:
            build(tmp, out, params, cfg, data, prep, pseudonym_key, t0, say)
    if params.report:
        from segwork.report import write_reports_index

        write_reports_index(out.parent, Path(params.reports_root), say)
    return out


def build(
    tmp: Path,
    out: Path,
    params: RunParams,
    cfg: Config,
    data: Path,
    prep: Prepared,
    pseudonym_key: bytes | None,
    t0: float,
    say: Progress,
) -> None:
    """Write everything of a run into the build folder ``tmp`` (published later as ``out``)."""
    key = pseudonym_key if params.pseudonymise else None
    timings = prep.timings
    session = None
    try:
        if params.report:
            from segwork.report import ReportSession

            with timings.stage("write"):
                write_json_atomic(tmp / "summary.json", full_summary(prep, cfg, params, None, t0))
                write_artifacts(tmp, prep, None, pseudonym_key=key)
            session = ReportSession(tmp, params, say, out.parent / f".failed-{out.name}")
            session.submit(early=True)
        clus = cluster(prep, params, load_truth(data), say) if params.clusters else None
        with timings.stage("write"):
            say(f"writing {out}")
            labels = prep.segment_map.labels(params.lang)
            extra = clus.labels[list(CLUSTER_COLUMNS)] if clus else None
            if not write_segments(segments_frame(prep.table, labels, extra), tmp):
                say("segments.xlsx skipped: more customers than an Excel sheet holds")
            summary = full_summary(prep, cfg, params, clus, t0)
            write_json_atomic(tmp / "summary.json", summary)
            if session is not None and not session.failed:
                write_artifacts(tmp, prep, clus, pseudonym_key=key)
        if session is not None:
            with timings.stage("report"):
                if not session.failed:
                    session.submit(early=False)
                results = session.finish()
    except BaseException:
        if session is not None:  # running notebooks are killed before tmp goes
            if any(not f.done() for f in session.futures):
                say("stopping the notebooks still running")
            session.cancel()
        raise
    summary["timings"] = {k: round(v, 3) for k, v in timings.seconds.items()}
    summary["timings"]["total"] = round(time.perf_counter() - t0, 3)
    if session is not None:
        summary["timings"]["notebooks"] = {r.name: round(r.seconds, 3) for r in results}
    write_json(tmp / "summary.json", summary)
