"""One run's computation: read -> ledger -> RFM -> segments -> clusters -> predictions.

Everything downstream (clusters, profiles, reports) starts from :class:`Prepared`; the DuckDB
store it holds (:class:`segwork.store.Store`) has the per-order table the one scan made
(``store.orders``, kept orders in ``store.kept_orders``) and the kept lines as a view.
"""

from __future__ import annotations

import datetime as dt
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

from segwork import clean, currency, events, migrate, predict, rfm, visitbasis
from segwork.clustering import ClusterConfig, ClusteringResult, run_clustering
from segwork.config import SYNTHETIC_EVENTS, RunParams, check_params, parse_as_of
from segwork.engine import DEFAULT_ENGINE, data_location, open_store
from segwork.errors import SegworkInputError
from segwork.feedback import latest_feedback
from segwork.maps import SegmentMap
from segwork.publish import atomic_dir, out_lock
from segwork.read import NA_TOKENS, Notice, SourceInfo
from segwork.schema import ClusterOptions, Config, load_config
from segwork.store import BY_CUSTOMER, Store, release_memory
from segwork.summary import Summary, build_summary, migration_block
from segwork.summary import cluster_key as summary_cluster_key

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
    currency: str | None = None  # ISO 4217 code the report shows money in (None: plain numbers)
    #: the behaviour events (--events), None without them
    events: events.EventsResult | None = None
    #: what R and F count: "orders" or "visits" (rfm.basis as run)
    basis: str = "orders"

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


def main_country(con: duckdb.DuckDBPyConnection, kept_orders: str) -> tuple[str | None, float]:
    """The country with the most kept revenue and its share of it (None when no country).

    Read off the per-order table (an order's country is its lines' country), never the source.
    """
    row = con.execute(
        f"""
        SELECT country, sum(revenue) / nullif((SELECT sum(revenue) FROM {kept_orders}), 0)
        FROM {kept_orders} WHERE country IS NOT NULL GROUP BY 1 ORDER BY 2 DESC NULLS LAST LIMIT 1
        """
    ).fetchall()
    return (str(row[0][0]), float(row[0][1] or 0.0)) if row else (None, 0.0)


def prepare(
    data_path: str | Path,
    cfg: Config,
    as_of: date | None = None,
    progress: Progress | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    events_path: str | Path | None = None,
    now: dt.datetime | None = None,
    engine: str = DEFAULT_ENGINE,
) -> Prepared:
    """Read, clean with the ledger, and segment by RFM; bad input raises SegworkInputError.

    With ``events_path`` the events are read and ledgered too, their customers join the table
    (non-buyers included) and R and F count visits unless ``rfm.basis`` says orders; events
    after ``now`` (default: the clock) are dropped as in the future. ``engine="spark"`` runs the
    same SQL on a Spark session (:mod:`segwork.spark`).
    """
    say = progress or (lambda _msg: None)
    timer = Timer()
    path = Path(data_path)
    _check_cancel_status(cfg, path)
    basis = visitbasis.resolve_basis(cfg.rfm.basis, events_path is not None)
    now = now or dt.datetime.now()
    with timer.stage("read"):
        say(f"reading {data_path}" + (" on Spark" if engine == "spark" else ""))
        if events_path is not None and engine != DEFAULT_ENGINE:
            raise SegworkInputError(
                f"--events: behaviour events run on the {DEFAULT_ENGINE} engine only; "
                f"drop --engine {engine} or --events"
            )
        store, source = open_store(engine, data_path, cfg, con)
        con = store.con
        ev_source = None
        if events_path is not None:
            say(f"reading events {events_path}")
            ev_source = events.open_events(events_path, cfg.events, con)
    with timer.stage("ledger_rfm"):
        say("cleaning (ledger) and building the RFM table")
        ledger, used, table, na_ids = compute_ledger_and_rfm(con, cfg, as_of, path)
        clean.create_kept_view(con, exclude_customers=na_ids)
        clean.create_kept_orders_view(con, exclude_customers=na_ids)
    ev = None
    if ev_source is not None:
        with timer.stage("events"):
            last_event = events.latest_event(con, now)
            if as_of is None and last_event is not None and last_event >= used:
                used = last_event + dt.timedelta(days=1)  # the day after the latest of either
                table = rfm.rfm_table(con, used)
            say("events ledger, visits and visit features")
            ev = events.prepare_events(
                con, ev_source.path, cfg.events, used, now, orders=store.kept, source=ev_source
            )
            first = min(rfm.earliest_purchase(con) or used, used)
            table = visitbasis.customer_table(table, ev.customers, basis, used, first)
    with timer.stage("rfm_segments"):
        say(f"scoring {len(table):,} customers and assigning RFM segments")
        smap = visitbasis.map_for_basis(cfg.rfm.segment_map, basis)
        seg = rfm.RFMSegmenter(smap, cfg.rfm.bins, cfg.rfm.fixed_edges).fit(table)
        table = table.join(seg.scores_)
        table["rfm_segment_id"] = seg.labels_
    last = rfm.latest_purchase(con) or used
    country, share = main_country(con, store.kept_orders)
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
        warnings=data_warnings(con, used, last, na_ids) + (ev.warnings if ev else ()),
        currency=currency.resolve(cfg.report.currency, country, share),
        events=ev,
        basis=basis,
    )


def default_data(params: RunParams, progress: Progress) -> Path:
    """The seeded synthetic shop, written once into the cache folder and reused afterwards."""
    from segwork import synth
    from segwork.synth import EventSpec, SynthSpec, write_synthetic

    # The generator's own source is part of the key: a change to synth.py makes new data,
    # never a stale cache that nbval would replay.
    code = hashlib.sha256(Path(synth.__file__).read_bytes()).hexdigest()[:10]
    name = f"shop-{params.synth_customers}c-seed{params.seed}-{code}"
    folder = Path(params.data_cache) / name
    tx = folder / "transactions.parquet"

    def cached() -> bool:
        names = ("personas.parquet", "events.parquet", synth.FUTURE_FILE, tx.name)
        return all((folder / f).is_file() for f in names)

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
                events=EventSpec(),
            )
    return tx


def events_file(params: RunParams, data: str | Path) -> Path | None:
    """The --events file: a path, or ``synthetic`` for the events beside the synthetic shop."""
    if params.events_path is None:
        return None
    if params.events_path != SYNTHETIC_EVENTS:
        return Path(params.events_path)
    beside = Path(data).parent / "events.parquet"
    if params.data_path is not None or not beside.is_file():
        raise SegworkInputError(
            f"--events {SYNTHETIC_EVENTS}: only the synthetic shop (no --data) has events "
            "of its own; give the events file's path"
        )
    return beside


def load_truth(data_path: str | Path) -> pd.Series | None:
    """Planted personas beside a synthetic data file (``personas.parquet``), if any."""
    p = Path(data_path).parent / "personas.parquet"
    if not p.is_file():
        return None
    df = pd.read_parquet(p, columns=["customer_id", "persona"])
    return df.set_index(df["customer_id"].astype(str))["persona"]


def cluster_config(params: RunParams, options: ClusterOptions | None = None) -> ClusterConfig:
    """The clustering stage's configuration: run parameters (--k, --k-range) over the config's
    ``cluster`` section over the defaults."""
    opts = options or ClusterOptions()
    return ClusterConfig(
        k_range=tuple(params.k_range) if params.k_range is not None else tuple(opts.k_range),
        k=params.k if params.k is not None else opts.k,
        min_share=opts.min_share,
        dbcv_threshold=opts.dbcv_threshold,
        ward_max_fit_size=params.max_fit_size,
        hdbscan_max_fit_size=params.max_fit_size,
        silhouette_sample=params.silhouette_sample,
        stability_repeats=params.stability_repeats,
        seed=params.seed,
    )


def cluster(
    prep: Prepared,
    params: RunParams,
    truth: pd.Series | None,
    say: Progress,
    options: ClusterOptions | None = None,
) -> ClusteringResult:
    """K-Means, Ward, HDBSCAN and the Gaussian mixture on the RFM table, RFM in the same loop."""
    ref = {"rfm": clone(prep.segmenter)}
    with prep.timings.stage("clustering"):
        if params.engine == "spark":  # fitted on a sample on the driver, labelled on executors
            from segwork.sparkfit import cluster_on_sample

            return cluster_on_sample(prep, cluster_config(params, options), truth, say)
        return run_clustering(
            prep.table, cluster_config(params, options), reference=ref, truth=truth, progress=say
        )


def start(
    params: RunParams, progress: Progress | None = None
) -> tuple[Config, str | Path, Prepared]:
    """Validate parameters, read, clean and score RFM: everything before clustering."""
    say = progress or (lambda _msg: None)
    check_params(params)
    cfg = load_config(params.config_path)
    as_of = parse_as_of(params.as_of)
    if params.data_path:
        data = data_location(params.engine, params.data_path)
    else:
        data = default_data(params, say)
    prep = prepare(
        data,
        cfg,
        as_of,
        progress=say,
        events_path=events_file(params, data),
        engine=params.engine,
    )
    say(
        f"as-of date {prep.as_of} ({'given' if prep.as_of_given else 'day after the latest kept transaction'})"
    )
    return cfg, data, prep


def full_summary(
    prep: Prepared,
    cfg: Config,
    params: RunParams,
    clus: ClusteringResult | None,
    t0: float,
    prediction: predict.PredictionResult | None = None,
) -> Summary:
    """summary.json with the clustering results and predictions (when given) and timings so far."""
    timings: dict[str, Any] = {k: round(v, 3) for k, v in prep.timings.seconds.items()}
    timings["total"] = round(time.perf_counter() - t0, 3)
    return build_summary(
        prep,
        cfg,
        params,
        clus.summary if clus else None,
        timings,
        prediction.summary() if prediction else None,
    )


def predict_future(
    prep: Prepared, cfg: Config, params: RunParams, clus: ClusteringResult | None, say: Progress
) -> predict.PredictionResult:
    """Back-tested purchase predictions as of the run's date, with each segment's future state.

    Its warnings (short history, no BTYD library) join the run's data warnings.
    """
    h = cfg.predict.horizon_days
    with prep.timings.stage("predict"):
        say(f"predicting purchases in the next {h} days (back-tested one window earlier)")
        # DuckDB stays idle here: at 50M rows this window ran as fast at 256 MiB as at 1 GiB
        orders = predict.order_table(prep.con, prep.store.kept_orders)
        res = predict.run_prediction(
            prep.con, orders, prep.as_of, cfg.predict, seed=params.seed, progress=say
        )
        by_customer = predict.aligned(res, prep.table.index)
        res.segments = predict.future_state(by_customer, prep.table["rfm_segment_id"])
        if clus is not None:
            for col in clus.labels.columns:
                if col.endswith("_cluster"):
                    res.clusters[col.removesuffix("_cluster")] = predict.future_state(
                        by_customer, clus.labels[col], key=summary_cluster_key
                    )
    prep.warnings = (*prep.warnings, *res.warnings)
    return res


@dataclass
class RunResult:
    """Everything one run computes: the RFM stage, the clusters and predictions (if any), the summary."""

    prep: Prepared
    clusters: ClusteringResult | None
    summary: Summary
    config: Config
    data_path: str | Path  # a URL (hdfs://, s3a://) stays a string on the Spark engine
    migration: migrate.Migration | None = None
    prediction: predict.PredictionResult | None = None


def migration(
    prep: Prepared,
    cfg: Config,
    params: RunParams,
    say: Progress,
    p_purchase: pd.Series | None = None,
) -> migrate.Migration | None:
    """Segment migration since ``params.compare_to``, or (``auto_compare``) since the latest
    earlier month's report under ``reports_root``; None when there is nothing to compare with.

    An earlier report only names the date: its snapshot is recomputed from this run's data with
    this run's edges and map (so "same edges" holds even when that report's quantiles differed).
    ``p_purchase`` (customer id -> probability; default: the table's column when present)
    weights the projected mix.
    """
    earlier = parse_as_of(params.compare_to, "--compare-to")
    found = None
    if earlier is None and params.auto_compare:
        found = migrate.previous_report(params.reports_root, prep.as_of)
        if found is None:
            return None
        earlier = found[0]
        if earlier <= prep.first_date or earlier >= prep.as_of:
            say(f"not comparing with {found[1]}: its as-of date {earlier} is outside this data")
            return None
        say(f"comparing with the earlier report {found[1]} (as of {earlier})")
    if earlier is None:
        return None
    p = p_purchase if p_purchase is not None else prep.table.get("p_purchase")
    with prep.timings.stage("migration"):
        say(f"segment migration since {earlier} (scored with this run's bin edges)")
        return migrate.compare(
            prep.store,
            cfg,
            prep.segmenter,
            prep.table,
            later=prep.as_of,
            earlier=earlier,
            first_date=prep.first_date,
            p_purchase=p,
            previous_report=str(found[1]) if found else None,
        )


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
    cfg, data, prep = start(params, say)  # --compare-to was checked with the parameters
    if on_prepared is not None:
        on_prepared(prep, cfg)
    prep.store.idle()  # the frames of clustering and prediction get DuckDB's memory
    clus = cluster(prep, params, load_truth(data), say, cfg.cluster) if params.clusters else None
    release_memory()  # the diagnostics' threads leave freed pages in their malloc arenas
    pred = predict_future(prep, cfg, params, clus, say) if params.predict else None
    release_memory()  # ~210 MB of the back-test's frames, before the segments frame is built
    # migration after the prediction: the expected mix moves buyers and non-buyers apart
    p_buy = pred.customers["p_purchase"] if pred is not None else None
    with prep.store.working():  # an earlier as-of date is a second ledger pass
        mig = migration(prep, cfg, params, say, p_purchase=p_buy)
    summary = full_summary(prep, cfg, params, clus, t0, pred)
    summary = summary.model_copy(
        update={
            "migration": migration_block(mig) if mig else None,
            "feedback": latest_feedback(params.reports_root),
        }
    )
    return RunResult(prep, clus, summary, cfg, data, migration=mig, prediction=pred)
