"""The typed ``summary.json`` contract: pydantic models, its JSON Schema, reading and writing.

A run's summary holds ids and machine codes only (segment ids, reason codes, warning codes,
cluster ids with ``"noise"`` for HDBSCAN's -1); display names come from the segment map and
the text catalogue. The JSON Schema shipped beside this module (``summary.schema.json``) is
generated from these models; regenerate it after changing them::

    python -m segwork.summary --write-schema

Readers use attributes (``read_summary(path).ledger.rows_in``), never ``.get()`` chains.
The module is longer than most on purpose: the whole contract is declared in one place.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer

from segwork.clean import REASONS
from segwork.config import RunParams
from segwork.errors import SegworkInputError
from segwork.events import REASONS as EVENT_REASONS
from segwork.feedback import Feedback
from segwork.maps import STAGES
from segwork.schema import Config

if TYPE_CHECKING:
    from segwork import migrate
    from segwork.pipeline import Prepared

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("summary.schema.json")
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
Reason = Literal[REASONS]  # type: ignore[valid-type]  # the ledger's drop reasons, in rule order
Stage = Literal[STAGES]  # type: ignore[valid-type]  # journey stage of an RFM group
RFMColumn = Literal["recency_days", "frequency", "monetary"]
ClusterId = Annotated[str, Field(pattern=r"^(noise|[0-9]+)$")]  # "0", "1", ... or "noise"
Score = float | None  # a metric; None where it is undefined (NaN)
Scalar = str | int | float | bool | None


class Model(BaseModel):
    """Base of every summary model: unknown keys are an error, so the contract cannot drift."""

    model_config = ConfigDict(extra="forbid")


class Sparse(Model):
    """A model whose unset (None) fields are left out of the JSON: method-specific blocks."""

    @model_serializer(mode="wrap")
    def _drop_none(self, handler: Any) -> dict[str, Any]:
        """Serialise, then drop keys whose value is None."""
        return {k: v for k, v in handler(self).items() if v is not None}


# --------------------------------------------------------------------------- data and ledger


class Period(Model):
    """First and last day with a kept purchase."""

    first: date
    last: date


class Source(Model):
    """What the reader found: format, layout, encoding, mapping, sheets, header row, dates."""

    path: str
    format: Literal["parquet", "csv", "excel"]
    layout: str  # "uci_online_retail" | "online_retail_ii" | "segwork" | "config"
    encoding: str | None  # the encoding used for CSV, else None
    mapping: dict[str, str]  # canonical column -> header used
    sheets: list[str] | None  # Excel sheets read, else None
    sheets_skipped: list[str]
    header_row: int
    date_format: str | None  # a strftime pattern, "ISO 8601", "Excel date cells", ...


class Dropped(Model):
    """Rows and revenue dropped for one reason."""

    rows: int
    revenue: float


class Ledger(Model):
    """Rows and revenue read, kept, and dropped per reason (in rule order); they reconcile."""

    rows_in: int
    rows_kept: int
    revenue_in: float
    revenue_kept: float
    customers_kept: int
    dropped: dict[Reason, Dropped]


EventReason = Literal[EVENT_REASONS]  # type: ignore[valid-type]  # the events ledger's reasons
EventType = Literal["visit", "view", "cart", "purchase", "signup", "other"]
KpiId = Literal[
    "visit_to_first_order",
    "second_order_rate",
    "cart_recovery",
    "recent_repeat_rate",
    "revenue_per_repeat_customer",
]


class EventsSource(Model):
    """The events file as read: format, encoding, the headers used and the time format."""

    path: str
    format: Literal["parquet", "csv", "excel"]
    encoding: str | None
    mapping: dict[str, str]  # customer_id / timestamp / event_type / session_id -> header
    date_format: str | None
    header_row: int
    sheets: list[str] | None


class Events(Model):
    """The behaviour events (--events): their ledger, visits, non-buyers and stage KPIs."""

    source: EventsSource
    rows_in: int
    rows_kept: int
    customers_kept: int
    visits: int
    bot_customers: int
    dropped: dict[EventReason, int]  # reason -> rows, in rule order
    kept_by_type: dict[EventType, int]
    non_buyers: int  # customers seen only in events, kept with no orders and monetary 0
    stage_kpis: dict[Stage, dict[KpiId, float | None]]  # current values over all customers


class Note(Model):
    """A clustering method's note (sampling, a degenerate fit): a catalogue code and its values."""

    code: Code
    params: dict[str, Scalar | list[Scalar]] = {}
    message: str  # English, for the log


class DataWarning(Model):
    """A data-quality warning: a code (the catalogue key), its values, and the English log line."""

    code: Code
    params: dict[str, Scalar | list[Scalar]] = {}
    message: str  # English, for the log and for readers without a catalogue entry


# --------------------------------------------------------------------------- RFM


class Segments(Model):
    """Customers per group for each segmentation, keyed by ids (RFM segment id, cluster id)."""

    rfm: dict[str, int]
    kmeans: dict[ClusterId, int] | None = None
    ward: dict[ClusterId, int] | None = None
    hdbscan: dict[ClusterId, int] | None = None
    gmm: dict[ClusterId, int] | None = None


class BinEdges(Model):
    """Inner edges of one score: score = 1 + #(edges strictly below the value), reversed for
    recency; equal values get equal scores."""

    edges: list[float]
    source: Literal["quantile", "fixed"]
    higher_is_better: bool
    customers_on_edge: list[int]


class RFMGroup(Model):
    """One RFM group (its names, KPI and actions are in the segment map / catalogue)."""

    stage: Stage
    customers: int
    revenue: float
    median_recency_days: float | None = None  # days since the last order (typical customer)
    median_frequency: float | None = None  # orders (typical customer)
    median_monetary: float | None = None
    kpis: dict[str, float | None] = {}  # KPI id (segwork.kpi) -> current value; None if undefined


class RFM(Model):
    """The RFM segmentation: which map, how many bins, the edges, and each group by id."""

    segment_map: str
    bins: int
    edges: dict[RFMColumn, BinEdges]
    groups: dict[str, RFMGroup]  # segment id -> group, in map order
    basis: Literal["orders", "visits"] = "orders"  # what R and F count (rfm.basis as run)


# --------------------------------------------------------------------------- clustering


class SelectionScores(Sparse):
    """Scores per candidate k (lists aligned with ``k``)."""

    k: list[int]
    silhouette: list[Score]
    calinski_harabasz: list[Score] | None = None
    davies_bouldin: list[Score] | None = None
    inertia: list[Score] | None = None
    n_silhouette_sample: int
    smallest_share: list[float] | None = None  # share of customers in the smallest cluster
    stability: list[Score] | None = None  # bootstrap ARI of refits at this k
    bic: list[Score] | None = None  # Gaussian mixture
    merge_gap: list[Score] | None = None  # Ward: gap in merge height around the cut at k


class GridPoint(Model):
    """One HDBSCAN grid setting and how it scored."""

    min_cluster_size: int
    min_cluster_size_param: float
    min_samples: int
    cluster_selection_method: Literal["eom", "leaf"] | None = None
    n_clusters: int
    noise_share: float
    dbcv: Score


class Assignment(Model):
    """How HDBSCAN placed customers outside its fit sample, checked against approximate_predict."""

    method: Literal["nearest", "approximate_predict"]
    n_checked: int
    agreement_with_approximate_predict: float
    ari_with_approximate_predict: Score


class Selection(Sparse):
    """Model-selection evidence of one method; which keys are present depends on the method."""

    rule: str | None = None  # the selection rule (English; see the README)
    status: Literal["degenerate"] | None = None
    reason: str | None = None  # why a fit was degenerate: a note code (text/<lang>.yaml notes)
    chosen_k: int | None = None
    k_range: tuple[int, int] | None = None  # k was chosen in this range (inclusive)
    min_share: float | None = None  # no chosen cluster holds fewer customers than this share
    gap_k: int | None = None  # Ward: the k in range at the largest dendrogram gap
    covariance_type: str | None = None  # Gaussian mixture
    n_search_sample: int | None = None  # HDBSCAN: customers the grid was scored on
    max_noise_share: float | None = None  # HDBSCAN: grid points above it rank last
    chosen_cluster_selection_method: Literal["eom", "leaf"] | None = None
    distance_threshold: float | None = None
    n_selection_sample: int | None = None
    n_fit_sample: int | None = None
    scores: SelectionScores | None = None
    top_merge_heights: list[float] | None = None
    grid: list[GridPoint] | None = None
    assignment: Assignment | None = None
    chosen_min_cluster_size: int | None = None
    chosen_min_cluster_size_param: float | None = None
    chosen_min_samples: int | None = None
    noise_share: float | None = None


class Stability(Model):
    """Bootstrap stability: pairwise ARI between fits on overlapping subsamples."""

    mean_ari: Score
    min_ari: Score
    pairwise_ari: list[float]
    repeats: int
    subsample_size: int
    pool_size: int
    seconds: float


class SeedSensitivity(Model):
    """K-Means: pairwise ARI between fits that differ only in the random seed."""

    mean_ari: Score
    min_ari: Score
    seeds: list[int]
    pool_size: int


class Rule(Model):
    """One decision-tree leaf predicting a cluster: its conditions, precision and coverage."""

    rule: str  # "recency_days <= 52 and frequency <= 3" (column names and operators)
    precision: float
    coverage: float
    n: int


class Rules(Model):
    """A shallow tree's rules per cluster and how well the tree reproduces the clusters."""

    fidelity: float
    max_depth: int
    n_sample: int
    rules: dict[ClusterId, list[Rule]]


class DominantGroup(Model):
    """The reference group most of a cluster falls in, and that share."""

    cluster: ClusterId
    size: int
    dominant: str  # reference group id (an RFM segment id)
    share: float


class Noise(Model):
    """HDBSCAN's noise: customers in no dense group."""

    count: int
    share: float


class Structure(Model):
    """HDBSCAN's verdict: density structure found (DBCV at or above the threshold) or none."""

    verdict: Literal["found", "none"]
    dbcv: Score
    threshold: float


class Outliers(Model):
    """HDBSCAN's outliers in figures: how many, how much revenue, what they look like."""

    code: Literal["outliers_big_buyers", "outliers_small_buyers", "outliers_mixed", "outliers_none"]
    count: int
    share: float
    revenue_share: float
    median: dict[RFMColumn, Score]
    overall_median: dict[RFMColumn, Score]
    profile: str | None  # profile code, e.g. recent+frequent+high_spend
    top_spenders_share: float  # share of the top 1% of customers by spend that are outliers


class MethodSilhouette(Model):
    """Silhouette of the final labels on a common sample; counted only with no tiny cluster."""

    value: Score
    smallest_share: float
    counted: bool
    n_sample: int


class Published(Model):
    """A published figure a method's result is reported beside."""

    silhouette: float
    source: str  # a reference id, worded in the text catalogue


class BestSilhouette(Model):
    """The counted method with the highest silhouette."""

    method: str
    value: float


class Method(Model):
    """Everything one clustering method produced."""

    status: Literal["ok", "degenerate"]
    n_clusters: int
    counts: dict[ClusterId, int]
    selection: Selection
    sampled: bool
    notes: list[Note]  # sampling, degenerate fits: codes, worded on the page
    stability: Stability | None = None
    seed_sensitivity: SeedSensitivity | None = None
    rules: Rules | None = None
    names: dict[ClusterId, str] = {}  # RFM segment id, profile code or "noise"
    dominant_groups: dict[str, list[DominantGroup]] = {}  # reference -> one entry per cluster
    noise: Noise | None = None
    structure: Structure | None = None  # HDBSCAN
    outliers: Outliers | None = None  # HDBSCAN
    silhouette: MethodSilhouette | None = None
    published: Published | None = None  # Gaussian mixture


class Agreement(Model):
    """Pairwise agreement between every two segmentations (symmetric matrices)."""

    ari: dict[str, dict[str, float]]
    ami: dict[str, dict[str, float]]


class Truth(Model):
    """Synthetic data only: each segmentation's ARI against the planted personas."""

    ari_vs_truth: dict[str, float]
    best_method: str | None
    best_ari: Score
    any_reaches_0_8: bool
    n_matched: int


class Features(Model):
    """The feature builder's parameters."""

    columns: list[RFMColumn]
    scale: str
    transformation: str


class ClusteringConfig(Model):
    """:class:`segwork.compare.ClusterConfig` as plain values."""

    features: Features
    k_range: tuple[int, int]
    k: int | None
    min_share: float
    curve_min_k: int
    selection_stability_sample: int
    kmeans_selection_sample: int
    silhouette_sample: int
    ward_max_fit_size: int
    ward_cut: Literal["rule", "gap"]
    hdbscan_max_fit_size: int
    hdbscan_min_cluster_size_grid: list[float]
    hdbscan_min_samples_grid: list[int]
    hdbscan_selection_methods: list[Literal["eom", "leaf"]]
    hdbscan_search_sample: int
    hdbscan_max_noise: float
    dbcv_threshold: float
    gmm_max_fit_size: int
    gmm_covariance_type: str
    stability_repeats: int
    stability_pool: int
    stability_fraction: float
    kmeans_seeds: list[int]
    rules_max_depth: int
    rules_sample: int
    ami_sample: int
    seed: int


class FitSample(Model):
    """Spark engine: the clusterings were fitted on the driver on this seeded sample of the
    customers; every customer was then labelled on the executors."""

    n_sample: int
    n_customers: int
    seed: int


class Clustering(Model):
    """The clustering stage: each method, their agreement, references, errors and timing."""

    n_customers: int
    config: ClusteringConfig
    seconds: dict[str, float]  # fit seconds per segmenter (references included)
    agreement: Agreement
    methods: dict[str, Method]  # "kmeans" | "ward" | "hdbscan" | "gmm" -> what it produced
    # methods whose clusters the comparison may present as segments (not HDBSCAN when its
    # structure verdict is "none", not a degenerate fit)
    segment_methods: list[str] = []
    best_silhouette: BestSilhouette | None = None  # among counted silhouettes
    errors: dict[str, str]  # segmenter -> "ExceptionType: message" when its fit failed
    references: dict[str, dict[str, int]]  # reference segmenter -> customers per group id
    truth: Truth | None = None
    fit_sample: FitSample | None = None  # None: fitted on every customer


# --------------------------------------------------------------------------- migration


class MigrationFlow(Model):
    """Customers on one path from a segment at the earlier date to one at the later date
    (``__new__``: absent earlier; ``__departed__``: gone later) and their kept revenue in the
    window between the dates and in the window of the same length before the earlier date."""

    source: str
    target: str
    customers: int
    revenue: float
    revenue_prior: float


class MigrationBacktest(Model):
    """The projection run one period earlier: transitions fitted on [fitted_from,
    projected_from), projected to checked_at and compared with the actual mix there."""

    fitted_from: date
    projected_from: date
    checked_at: date
    metric: Literal["total_absolute_share_error"]  # sum over segments of |projected - actual| share
    error: float
    naive_error: float  # the same metric for "the mix stays as it is"
    projected: dict[str, float]
    actual: dict[str, int]


class MigrationProjection(Model):
    """Expected customers per segment one period after the later date."""

    method: Literal["transitions", "transitions+p_purchase"]
    horizon_days: int
    at: date
    customers: dict[str, float]
    backtest: MigrationBacktest | None
    backtest_note: str | None  # why there is no back-test


class Migration(Model):
    """Segment migration between two as-of dates, both scored with the later run's edges."""

    earlier: date
    later: date
    period_days: int
    edges_from: Literal["later"]  # the later run's fitted edges scored both snapshots
    edges: dict[RFMColumn, list[float]]
    basis: Literal["recomputed"]  # the earlier snapshot is recomputed from this run's data
    previous_report: str | None  # the earlier month's report that named the date, if any
    revenue_window: dict[str, list[date]]  # "revenue" / "revenue_prior" -> [start, end)
    customers_union: int  # sum of all flows = customers at either date
    flows: list[MigrationFlow]  # non-empty paths, largest first
    projection: MigrationProjection


# --------------------------------------------------------------------------- prediction


class CalibrationBin(Model):
    """One bin of predicted probability: customers in it, mean prediction, share who bought."""

    lower: float
    upper: float
    customers: int
    predicted: float
    observed: float


class BacktestScores(Model):
    """One predictor scored on the back-test window (T-H, T] from features as of T-H."""

    customers: int
    buyers: int
    auc: Score  # of p_purchase; None when everyone (or no one) bought
    brier: float
    mae_orders: float  # per customer
    mae_revenue: float  # per customer
    total_orders_ratio: float | None  # predicted total orders / actual
    total_revenue_ratio: float | None
    top_n: int  # the customers rated most likely to buy (top decile, at most 1,000) ...
    top_hits: int  # ... and how many of them did
    calibration: list[CalibrationBin]


class Backtest(Model):
    """The model and every baseline trained as of T-2H and scored on (T-H, T]."""

    train_as_of: date
    score_as_of: date
    model: BacktestScores
    baselines: dict[Literal["recency", "historical_rate", "bgnbd"], BacktestScores]


class FutureState(Model):
    """A group's future in the horizon: likely buyers, expected value, customers at risk."""

    customers: int
    mean_p_purchase: float
    expected_orders: float
    expected_revenue: float
    at_risk: int  # p_purchase below at_risk_below
    at_risk_revenue: float  # what the at-risk customers spent in the last window (T-H, T]


class Prediction(Model):
    """Per-customer purchase predictions as of T for the next horizon_days, back-tested."""

    horizon_days: int
    at_risk_below: float
    model: Literal["gradient_boosting", "recency", "historical_rate", "bgnbd"]
    features: list[str]
    customers: int
    backtest: Backtest | None  # None when the history is too short (see warnings)
    segments: dict[str, FutureState]  # RFM segment id -> future state
    clusters: dict[str, dict[ClusterId, FutureState]]  # method -> cluster id -> future state
    seconds: dict[str, float]


# --------------------------------------------------------------------------- the summary


class Environment(Model):
    """Where the run ran."""

    python: str
    platform: str


class Timings(Sparse):
    """Wall seconds per stage in run order, the total, and each report notebook."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, float] = Field(init=False)  # stages added later

    read: float
    ledger_rfm: float
    rfm_segments: float
    clustering: float | None = None
    predict: float | None = None
    write: float | None = None
    report: float | None = None
    total: float
    notebooks: dict[str, float] = {}


class Summary(Model):
    """``summary.json``: one run, in ids and codes."""

    schema_version: Literal[1] = SCHEMA_VERSION
    segwork_version: str
    as_of: date
    as_of_source: Literal["given", "latest_plus_one"]
    period: Period
    source: Source
    ledger: Ledger
    warnings: list[DataWarning]
    customers: int
    currency: str | None = None  # ISO 4217 code money is shown in (segwork.currency); None: plain
    segments: Segments
    rfm: RFM
    clustering: Clustering | None = None  # None when the run skipped clustering
    migration: Migration | None = None  # with --compare-to or an earlier month's report
    feedback: Feedback | None = None  # the latest campaign feedback found in the reports folder
    events: Events | None = None  # None when the run had no events file
    prediction: Prediction | None = None  # None when the run skipped prediction
    params: RunParams
    config: Config
    environment: Environment
    timings: Timings


class HeadlineLedger(BaseModel):
    """The two ledger figures the monthly index lists."""

    rows_kept: int
    revenue_kept: float


class HeadlineGroup(BaseModel):
    """Customers and revenue of one RFM group, for the monthly segment mix."""

    customers: int
    revenue: float = 0.0


class HeadlineRFM(BaseModel):
    """The RFM groups of a month (the segment mix)."""

    groups: dict[str, HeadlineGroup] = {}


class Headline(BaseModel):
    """What the monthly index reads from any month's summary.json, older versions included."""

    as_of: date
    customers: int
    ledger: HeadlineLedger
    currency: str | None = None
    rfm: HeadlineRFM | None = None


def read_headline(path: str | Path) -> Headline | None:
    """The headline figures of a summary.json written by any segwork version; None if unreadable."""
    try:
        return Headline.model_validate_json(Path(path).read_bytes())
    except (OSError, ValidationError):
        return None


# --------------------------------------------------------------------------- building


def cluster_key(label: Any) -> str:
    """The summary's id of a cluster label: ``"noise"`` for HDBSCAN's -1, else the number."""
    return "noise" if str(label) in ("-1", "noise") else str(label)


def _keyed(d: dict[str, Any]) -> dict[str, Any]:
    """A dict keyed by cluster label, re-keyed by :func:`cluster_key`."""
    return {cluster_key(k): v for k, v in d.items()}


def method_block(raw: dict[str, Any]) -> Method:
    """One method of the clustering stage's summary as a :class:`Method` (noise as ``"noise"``)."""
    out = dict(raw)
    out["counts"] = _keyed(raw["counts"])
    if "names" in raw:
        out["names"] = _keyed(raw["names"])
    if raw.get("rules"):
        out["rules"] = {**raw["rules"], "rules": _keyed(raw["rules"]["rules"])}
    if "dominant_groups" in raw:
        out["dominant_groups"] = {
            ref: [{**d, "cluster": cluster_key(d["cluster"])} for d in rows]
            for ref, rows in raw["dominant_groups"].items()
        }
    return Method.model_validate(out)


def clustering_block(raw: dict[str, Any]) -> Clustering:
    """The clustering stage's summary dict as a validated :class:`Clustering`."""
    methods = {name: method_block(m) for name, m in raw["methods"].items()}
    return Clustering.model_validate({**raw, "methods": methods})


def migration_block(m: migrate.Migration) -> Migration:
    """The run's :class:`segwork.migrate.Migration` as the validated summary block."""
    flows = m.flows()
    bt = m.backtest
    return Migration.model_validate(
        {
            "earlier": m.earlier,
            "later": m.later,
            "period_days": m.period_days,
            "edges_from": "later",
            "edges": m.edges,
            "basis": m.basis,
            "previous_report": m.previous_report,
            "revenue_window": {
                "revenue": [m.earlier, m.later],
                "revenue_prior": [m.earlier - timedelta(days=m.period_days), m.earlier],
            },
            "customers_union": int(m.counts.to_numpy().sum()),
            "flows": [
                {
                    "source": r["from"],
                    "target": r["to"],
                    "customers": int(r["customers"]),
                    "revenue": float(r["revenue"]),
                    "revenue_prior": float(r["revenue_prior"]),
                }
                for _, r in flows.iterrows()
            ],
            "projection": {
                "method": m.projected_with,
                "horizon_days": m.period_days,
                "at": m.later + timedelta(days=m.period_days),
                "customers": {k: round(float(v), 2) for k, v in m.projected.items()},
                "backtest": None
                if bt is None
                else {
                    "fitted_from": bt.dates[0],
                    "projected_from": bt.dates[1],
                    "checked_at": bt.dates[2],
                    "metric": "total_absolute_share_error",
                    "error": bt.error,
                    "naive_error": bt.naive_error,
                    "projected": {k: round(float(v), 2) for k, v in bt.projected.items()},
                    "actual": {k: int(v) for k, v in bt.actual.items()},
                },
                "backtest_note": m.backtest_note,
            },
        }
    )


def data_warnings(prep: Prepared) -> list[DataWarning]:
    """The reader's warnings (ambiguous dates, skipped sheets, ...) then the data's (stale data,
    cancel-heavy customers, ...)."""
    found = (*prep.source.warnings, *prep.warnings)
    return [
        DataWarning(code=code, params=dict(params), message=message)
        for code, message, params in found
    ]


def events_block(prep: Prepared, cfg: Config) -> Events | None:
    """The events ledger, visits, non-buyers and the stages' KPI values; None without events."""
    from segwork.visitkpi import stage_kpis

    ev = prep.events
    if ev is None:
        return None
    src = ev.source
    return Events(
        source=EventsSource(
            path=str(src.path),
            format=src.format,
            encoding=src.encoding,
            mapping=dict(src.mapping),
            date_format=src.date_format,
            header_row=src.header_row,
            sheets=list(src.sheets) if src.sheets is not None else None,
        ),
        **ev.ledger.as_dict(),
        non_buyers=int((prep.table["orders"] == 0).sum()),
        stage_kpis=stage_kpis(prep.table, cfg.events.repeat_window_days),
    )


def build_summary(
    prep: Prepared,
    cfg: Config,
    params: RunParams,
    clustering: dict[str, Any] | None,
    timings: dict[str, Any],
    prediction: dict[str, Any] | None = None,
) -> Summary:
    """The run's summary from what it computed: ids and codes only."""
    from segwork import __version__
    from segwork.kpi import kpi_table, stage_kpis
    from segwork.rfm import edges_report

    table = prep.table
    counts = table["rfm_segment_id"].value_counts()
    revenue = table.groupby("rfm_segment_id")["monetary"].sum()
    # the typical customer in orders (on the visits basis R and F count visits)
    cols = {"recency_days": "last_order_days", "frequency": "orders"}
    picked = {k: (v if v in table else k) for k, v in cols.items()}
    medians = (
        table.groupby("rfm_segment_id")[[picked["recency_days"], picked["frequency"], "monetary"]]
        .median()
        .rename(columns={v: k for k, v in picked.items()})
    )
    kpis = kpi_table(table)
    visit_kpis: dict[str, dict[str, float | None]] = {}
    if getattr(prep, "basis", "orders") == "visits" and prep.events is not None:
        from segwork.visitkpi import segment_kpis

        window = cfg.events.repeat_window_days
        visit_kpis = segment_kpis(table, prep.segment_map, window)

    def value(frame: Any, gid: str, col: str) -> float | None:
        v = frame[col].get(gid) if gid in frame.index else None
        return None if v is None or v != v else round(float(v), 4)

    groups = {
        s.id: RFMGroup(
            stage=s.stage,
            customers=int(counts.get(s.id, 0)),
            revenue=round(float(revenue.get(s.id, 0.0)), 2),
            median_recency_days=value(medians, s.id, "recency_days"),
            median_frequency=value(medians, s.id, "frequency"),
            median_monetary=value(medians, s.id, "monetary"),
            kpis=visit_kpis.get(s.id) or {k: value(kpis, s.id, k) for k in stage_kpis(s.stage)},
        )
        for s in prep.segment_map.segments
    }
    clus = clustering_block(clustering) if clustering is not None else None
    per_method = {m: clus.methods[m].counts for m in clus.methods} if clus else {}
    src = prep.source
    edges = {
        c: {k: v for k, v in e.items() if k != "rule"}
        for c, e in edges_report(prep.segmenter.edges_).items()
    }
    return Summary(
        segwork_version=__version__,
        as_of=prep.as_of,
        as_of_source="given" if prep.as_of_given else "latest_plus_one",
        period=Period(first=prep.first_date, last=prep.last_date),
        source=Source(
            path=str(src.path),
            format=src.format,
            layout=src.layout,
            encoding=src.encoding,
            mapping=dict(src.mapping),
            sheets=list(src.sheets) if src.sheets is not None else None,
            sheets_skipped=list(src.sheets_skipped),
            header_row=src.header_row,
            date_format=src.date_format,
        ),
        ledger=Ledger.model_validate(prep.ledger.as_dict()),
        warnings=data_warnings(prep),
        customers=len(table),
        currency=prep.currency,
        segments=Segments(rfm={g: v.customers for g, v in groups.items()}, **per_method),
        rfm=RFM(
            segment_map=prep.segment_map.name,
            bins=prep.segmenter.bins,
            edges=edges,
            groups=groups,
            basis=prep.basis,
        ),
        clustering=clus,
        events=events_block(prep, cfg),
        prediction=Prediction.model_validate(prediction) if prediction is not None else None,
        params=params,
        config=cfg,
        environment=Environment(python=platform.python_version(), platform=sys.platform),
        timings=Timings.model_validate(timings),
    )


# --------------------------------------------------------------------------- schema and files


def schema() -> dict[str, Any]:
    """The JSON Schema of ``summary.json`` (draft 2020-12), as shipped in the package."""
    out = Summary.model_json_schema(mode="validation")
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": "summary.schema.json", **out}


def shipped_schema() -> dict[str, Any]:
    """The JSON Schema file that ships beside this module."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def dump(summary: Summary) -> str:
    """The summary as UTF-8 JSON text (Korean kept readable), newline-terminated."""
    return summary.model_dump_json(indent=2) + "\n"


def write_summary(path: str | Path, summary: Summary) -> Path:
    """Write ``summary`` through a temporary file, so a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(dump(summary), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_summary(path: str | Path) -> Summary:
    """A validated :class:`Summary` from ``path``; a file that breaks the contract is an input error."""
    path = Path(path)
    try:
        return Summary.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise SegworkInputError(
            f"{path}: not a summary.json of this segwork version ({exc.error_count()} "
            f"problem(s); first at {where}: {first['msg']})"
        ) from None
    except OSError as exc:
        raise SegworkInputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def write_schema(path: str | Path = SCHEMA_PATH) -> Path:
    """Write the generated JSON Schema to ``path`` (the packaged file by default)."""
    path = Path(path)
    path.write_text(json.dumps(schema(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m segwork.summary --write-schema [PATH]`` or ``--validate FILE...``."""
    ap = argparse.ArgumentParser(prog="python -m segwork.summary", description=__doc__)
    ap.add_argument("--write-schema", nargs="?", const=str(SCHEMA_PATH), metavar="PATH")
    ap.add_argument("--validate", nargs="+", metavar="FILE", default=[])
    args = ap.parse_args(argv)
    if args.write_schema is None and not args.validate:
        ap.error("give --write-schema or --validate")
    if args.write_schema is not None:
        print(write_schema(args.write_schema))
    status = 0
    for f in args.validate:
        try:
            read_summary(f)
            print(f"{f}: ok")
        except SegworkInputError as exc:
            print(f"segwork: {exc}", file=sys.stderr)
            status = 2
    return status


if __name__ == "__main__":
    raise SystemExit(main())
