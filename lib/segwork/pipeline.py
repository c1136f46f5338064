"""One run's computation, from a file to the scored RFM table: read -> ledger -> RFM -> segments.

Everything downstream (clusters, profiles, reports) starts from :class:`Prepared`; the DuckDB
store it holds (:class:`segwork.store.Store`) has the per-order table the one scan made
(``store.orders``, kept orders in ``store.kept_orders``) and the kept lines as a view.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from sklearn.base import clone

from segwork import clean, rfm
from segwork.clustering import ClusterConfig, ClusteringResult, run_clustering
from segwork.config import RunParams, check_params, parse_as_of
from segwork.errors import SegworkInputError
from segwork.maps import SegmentMap
from segwork.publish import atomic_dir, out_lock
from segwork.read import NA_TOKENS, Notice, SourceInfo, open_source
from segwork.schema import Config, load_config
from segwork.store import BY_CUSTOMER, Store
from segwork.summary import Summary, build_summary

Progress = Callable[[str], None]
#: The as-of date this many days after the latest kept transaction means stale data.
STALE_DAYS = 90
#: A customer whose cancelled value exceeds this share of what they bought is cancel-heavy.
CANCEL_HEAVY_SHARE = 0.5


@dataclass
class Timer:
    """Wall seconds per named stage, in the order they ran."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block under ``name`` (accumulating if the name repeats)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0


@dataclass
class Prepared:
    """The scored RFM table and everything needed to explain it."""

    source: SourceInfo
    ledger: clean.Ledger
    as_of: date
    as_of_given: bool
    first_date: date
    last_date: date
    table: pd.DataFrame  # RFM table + r/f/m scores + rfm_segment_id
    segmenter: rfm.RFMSegmenter
    timings: Timer
    store: Store
    #: data-quality warnings found while computing, as (code, message, params)
    warnings: tuple[Notice, ...] = ()

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The run's DuckDB connection (its relations are named on :attr:`store`)."""
        return self.store.con

    @property
    def segment_map(self) -> SegmentMap:
        """The fitted segment map."""
        return self.segmenter.map_


def _no_rows_message(path: Path, ledger: clean.Ledger) -> str:
    top = sorted(ledger.dropped_rows.items(), key=lambda kv: -kv[1])[:4]
    why = ", ".join(f"{r} {n:,}" for r, n in top) or "the file has no usable rows"
    return f"{path}: no rows left after cleaning ({ledger.rows_in:,} read; dropped: {why})"


def _check_cancel_status(cfg: Config, path: Path) -> None:
    """cancel_status needs a mapped status column; without one it would silently do nothing."""
    if cfg.clean.cancel_status and not getattr(cfg.columns, "status", None):
        raise SegworkInputError(
            f"{path}: clean.cancel_status is set ({', '.join(cfg.clean.cancel_status)}) but no "
            "status column is mapped; map it in config.yaml under columns.status"
        )


def compute_ledger_and_rfm(
    con: duckdb.DuckDBPyConnection,
    cfg: Config,
    as_of: date | None,
    path: Path,
) -> tuple[clean.Ledger, date, pd.DataFrame, tuple[str, ...]]:
    """Classify, aggregate once, reconcile the ledger and build the RFM table as of a date.

    Also returns the stored customer IDs that mean "missing" ('nan', '#N/A', ...), which
    Parquet files can carry and which are moved to ``missing_customer`` on the aggregate.
    """
    # the one scan (and duplicate fold) of the source, into the per-order table
    clean.classify_and_aggregate(con, cfg.clean, as_of)
    na_ids = clean.relabel_missing_customers(con, cfg.clean, NA_TOKENS)
    if as_of is not None:
        # earliest purchase of any line, whatever its drop reason: read off the small aggregate
        first = con.execute(f"SELECT min(first_purchase) FROM {BY_CUSTOMER}").fetchall()[0][0]
        if first is not None and as_of <= pd.Timestamp(first).date():
            raise SegworkInputError(
                f"{path}: as-of date {as_of} is on or before the first transaction "
                f"({pd.Timestamp(first).date()}); pick a later --as-of"
            )
    ledger = clean.ledger_from_aggregate(con)
    if ledger.rows_kept == 0 or ledger.customers_kept == 0:
        raise SegworkInputError(_no_rows_message(path, ledger))
    used = as_of or rfm.default_as_of(con)
    assert used is not None
    table = rfm.rfm_table(con, used)
    return ledger, used, table, na_ids


def data_warnings(
    con: duckdb.DuckDBPyConnection, as_of: date, last: date, na_ids: tuple[str, ...]
) -> tuple[Notice, ...]:
    """Warnings an analyst should read before trusting the numbers, as (code, message, params).

    The message is the English log line; the report words each code from the text catalogue
    with its params.
    """
    out: list[Notice] = []
    gap = (as_of - last).days
    if gap > STALE_DAYS:
        out.append(
            (
                "stale_data",
                f"the as-of date {as_of} is {gap} days after the latest kept transaction "
                f"({last}); recency is measured from a date with no data behind it",
                {"as_of": as_of.isoformat(), "gap": gap, "last": last.isoformat()},
            )
        )
    n, ids = clean.cancel_heavy_customers(con, CANCEL_HEAVY_SHARE)
    if n:
        shown = ", ".join(ids) + (", ..." if n > len(ids) else "")
        out.append(
            (
                "cancel_heavy_customers",
                f"{n:,} customers cancelled more than {CANCEL_HEAVY_SHARE:.0%} of the value "
                f"they bought (e.g. {shown})",
                {"n": n, "share": CANCEL_HEAVY_SHARE, "examples": list(ids)},
            )
        )
    if na_ids:
        out.append(
            (
                "missing_customer_markers",
                "customer IDs " + ", ".join(repr(i) for i in na_ids) + " mean a missing "
                "customer; their rows are counted as missing_customer",
                {"ids": [repr(i) for i in na_ids]},
            )
        )
    return tuple(out)


def prepare(
    data_path: str | Path,
    cfg: Config,
    as_of: date | None = None,
    progress: Progress | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> Prepared:
    """Read, clean with the ledger, and segment by RFM; bad input raises SegworkInputError."""
    say = progress or (lambda _msg: None)
    store = Store(con) if con is not None else Store.open()
    con = store.con
    timer = Timer()
    path = Path(data_path)
    _check_cancel_status(cfg, path)
    with timer.stage("read"):
        say(f"reading {path}")
        source = open_source(path, cfg, con)
    with timer.stage("ledger_rfm"):
        say("cleaning (ledger) and building the RFM table")
        ledger, used, table, na_ids = compute_ledger_and_rfm(con, cfg, as_of, path)
        clean.create_kept_view(con, exclude_customers=na_ids)
        clean.create_kept_orders_view(con, exclude_customers=na_ids)
    with timer.stage("rfm_segments"):
        say(f"scoring {len(table):,} customers and assigning RFM segments")
        seg = rfm.RFMSegmenter(cfg.rfm.segment_map, cfg.rfm.bins, cfg.rfm.fixed_edges).fit(table)
        table = table.join(seg.scores_)
        table["rfm_segment_id"] = seg.labels_
    last = rfm.latest_purchase(con) or used
    return Prepared(
        source=source,
        ledger=ledger,
        as_of=used,
        as_of_given=as_of is not None,
        first_date=rfm.earliest_purchase(con) or used,
        last_date=last,
        table=table,
        segmenter=seg,
        timings=timer,
        store=store,
        warnings=data_warnings(con, used, last, na_ids),
    )


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
) -> Summary:
    """summary.json with the clustering results (when given) and timings so far."""
    timings: dict[str, Any] = {k: round(v, 3) for k, v in prep.timings.seconds.items()}
    timings["total"] = round(time.perf_counter() - t0, 3)
    return build_summary(prep, cfg, params, clus.summary if clus else None, timings)


@dataclass
class RunResult:
    """Everything one run computes: the RFM stage, the clusters (if any) and the summary."""

    prep: Prepared
    clusters: ClusteringResult | None
    summary: Summary
    config: Config
    data_path: Path


def compute(
    params: RunParams,
    progress: Progress | None = None,
    on_prepared: Callable[[Prepared, Config], None] | None = None,
) -> RunResult:
    """The one path through the stages: read -> ledger -> RFM -> clusters -> summary; writes nothing.

    ``on_prepared`` is called once the RFM stage is done (``segwork run`` claims OUT and starts
    the notebooks that need no clusters there, while the clusters are fitted).
    """
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    cfg, data, prep = start(params, say)
    if on_prepared is not None:
        on_prepared(prep, cfg)
    clus = cluster(prep, params, load_truth(data), say) if params.clusters else None
    return RunResult(prep, clus, full_summary(prep, cfg, params, clus, t0), cfg, data)
