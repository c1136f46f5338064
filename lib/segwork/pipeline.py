"""One run's computation, from a file to the scored RFM table: read -> ledger -> RFM -> segments.

Everything downstream (clusters, profiles, reports) starts from :class:`Prepared`; the DuckDB
connection it holds still has the ``tx_kept`` view for charts that need transaction lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from segwork import clean, rfm
from segwork.errors import SegworkInputError
from segwork.io import NA_TOKENS, SourceInfo, open_source
from segwork.maps import SegmentMap
from segwork.schema import Config

Progress = Callable[[str], None]
#: The as-of date this many days after the latest kept transaction means stale data.
STALE_DAYS = 90
#: A customer whose cancelled value exceeds this share of what they bought is cancel-heavy.
CANCEL_HEAVY_SHARE = 0.5


def connect(memory_limit: str = "2GB", threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that spills to disk instead of growing past ``memory_limit``."""
    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


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
    con: duckdb.DuckDBPyConnection
    #: data-quality warnings found while computing, as (code, message)
    warnings: tuple[tuple[str, str], ...] = ()

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
    clean.create_classified_view(con, cfg.clean, as_of)
    rules = cfg.clean
    mixed = rules.cancellations == "net" and bool(rules.cancel_status)
    clean.aggregate_by_customer(con, folded=rules.drop_duplicates, mixed_orders=mixed)
    na_ids = clean.relabel_missing_customers(con, cfg.clean, NA_TOKENS)
    if as_of is not None:
        # earliest purchase of any line, whatever its drop reason: read off the small aggregate
        first = con.execute("SELECT min(first_purchase) FROM cust_reason").fetchall()[0][0]
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
) -> tuple[tuple[str, str], ...]:
    """Warnings an analyst should read before trusting the numbers, as (code, message)."""
    out: list[tuple[str, str]] = []
    gap = (as_of - last).days
    if gap > STALE_DAYS:
        out.append(
            (
                "stale_data",
                f"the as-of date {as_of} is {gap} days after the latest kept transaction "
                f"({last}); recency is measured from a date with no data behind it",
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
            )
        )
    if na_ids:
        out.append(
            (
                "missing_customer_markers",
                "customer IDs " + ", ".join(repr(i) for i in na_ids) + " mean a missing "
                "customer; their rows are counted as missing_customer",
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
    con = con or connect()
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
        con=con,
        warnings=data_warnings(con, used, last, na_ids),
    )
