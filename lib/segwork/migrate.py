"""Segment migration between two as-of dates: transition matrix, revenue per flow, next mix.

Both snapshots are scored with the **later** run's fitted bin edges and segment map (the
earlier RFM table is computed from the same data with an earlier as-of date and passed to
``RFMSegmenter.predict``), so a customer moves only because their behaviour changed, never
because the quantiles did.

The matrix has one row per segment at the earlier date plus :data:`NEW` (customers absent
then) and one column per segment at the later date plus :data:`DEPARTED` (customers in the
earlier table but not the later one: their kept purchases were later cancelled, or the data
lost them). Its cells sum to the union of both customer sets.

Revenue per flow: the kept net revenue of the customers on that path in the **window between
the two dates** ``[earlier, later)`` (``revenue``) and in the window of the same length
before the earlier date (``revenue_prior``: what a declining flow was worth before it moved).

Projection one period ahead (a first-order Markov chain on segment counts): today's customers
in segment s move with the observed row s of the transition probabilities; new customers
arrive as many and in the same mix as in the observed period. When ``p_purchase`` is known per
customer, each row is split into the transitions of customers who bought in the observed
period and of those who did not, and customer i moves with
``p_i * P_buy[s] + (1 - p_i) * P_idle[s]``. The back-test projects the period before with the
same method (no ``p_purchase``: it has no past values) and reports the **total absolute share
error** ``sum_s |projected share_s - actual share_s|`` (0 = perfect, 2 = disjoint; half of it
is the total-variation distance) next to the naive forecast "the mix stays as it is".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from segwork import clean, rfm
from segwork.errors import SegworkInputError
from segwork.read import NA_TOKENS
from segwork.schema import Config
from segwork.store import Store
from segwork.tally import crosstab

#: Row of customers absent at the earlier date; column of customers gone at the later one.
NEW = "__new__"
DEPARTED = "__departed__"
#: Relations of the earlier snapshot, next to the run's own (the run's are left as they are).
_PREV = "prev"


# --------------------------------------------------------------------------- snapshots


def snapshot_table(
    store: Store, cfg: Config, as_of: date, tag: str = _PREV, revenue_from: date | None = None
) -> tuple[pd.DataFrame, pd.Series | None]:
    """The RFM table at ``as_of`` from the same stored lines: a second ledger/RFM pass under
    relations suffixed ``_<tag>``, so the run's own views are not touched. With
    ``revenue_from``, also each customer's kept revenue in ``[revenue_from, as_of)`` as kept
    at that date (a purchase cancelled later still counts there)."""
    con = store.con
    classified, by_customer = f"{store.classified}_{tag}", f"{store.by_customer}_{tag}"
    orders = f"{store.orders}_{tag}"  # its own per-order table: the run's stays as it is
    rules = cfg.clean
    clean.create_classified_view(con, rules, as_of, store.tx, view=classified)
    mixed = rules.cancellations == "net" and bool(rules.cancel_status)
    clean.aggregate_by_customer(
        con,
        classified,
        by_customer,
        folded=rules.drop_duplicates,
        mixed_orders=mixed,
        orders=orders,
    )
    clean.relabel_missing_customers(con, rules, NA_TOKENS, table=by_customer)
    try:
        table = rfm.rfm_table(con, as_of, table=by_customer)
        revenue = None
        if revenue_from is not None:
            kept = f"(SELECT * FROM {classified} WHERE reason IS NULL)"
            revenue = window_revenue(con, kept, revenue_from, as_of)
            revenue = revenue[revenue.index.isin(table.index)]
        return table, revenue
    finally:
        con.execute(f"DROP TABLE IF EXISTS {by_customer}")
        con.execute(f"DROP VIEW IF EXISTS {classified}")
        # every relation the second pass made: at 50M rows its per-order table alone is 5M rows
        for table in (orders, *clean.view_tables(classified)):
            con.execute(f"DROP TABLE IF EXISTS {table}")


def window_revenue(con: duckdb.DuckDBPyConnection, kept: str, start: date, end: date) -> pd.Series:
    """Kept net revenue per customer with ``start <= invoice_date < end`` (customers with none
    are absent)."""
    df = con.execute(
        f"""
        SELECT customer_id, sum(amount) AS revenue FROM {kept}
        WHERE invoice_date >= DATE '{start.isoformat()}' AND invoice_date < DATE '{end.isoformat()}'
          AND customer_id IS NOT NULL
        GROUP BY customer_id
        """
    ).df()
    return pd.Series(
        df["revenue"].to_numpy(dtype=float), index=df["customer_id"].astype(str), name="revenue"
    )


# --------------------------------------------------------------------------- transitions


def transition_counts(before: pd.Series, after: pd.Series, order: list[str]) -> pd.DataFrame:
    """Customers per (from, to): rows ``order + [NEW]``, columns ``order + [DEPARTED]``.

    ``before``/``after`` map customer id -> segment id; every customer of either is counted once.
    """
    ids = before.index.union(after.index)
    src = before.reindex(ids).fillna(NEW)
    dst = after.reindex(ids).fillna(DEPARTED)
    unknown = sorted((set(src) | set(dst)) - set(order) - {NEW, DEPARTED})
    if unknown:
        raise ValueError(f"segment ids not in the map order: {unknown[:5]}")
    table = crosstab(src, dst)
    return table.reindex(index=[*order, NEW], columns=[*order, DEPARTED], fill_value=0).astype(
        "int64"
    )


def flow_sums(
    before: pd.Series, after: pd.Series, values: pd.Series, order: list[str]
) -> pd.DataFrame:
    """Sum of ``values`` (per customer, 0 when absent) over each (from, to) path."""
    ids = before.index.union(after.index)
    frame = pd.DataFrame(
        {
            "src": before.reindex(ids).fillna(NEW),
            "dst": after.reindex(ids).fillna(DEPARTED),
            "v": values.reindex(ids).fillna(0.0).astype(float),
        }
    )
    table = frame.pivot_table(index="src", columns="dst", values="v", aggfunc="sum", fill_value=0)
    return table.reindex(index=[*order, NEW], columns=[*order, DEPARTED], fill_value=0.0).round(2)


def probabilities(counts: pd.DataFrame) -> pd.DataFrame:
    """Row-normalised transitions (rows with no customers stay where they are)."""
    p = counts.astype(float)
    totals = p.sum(axis=1)
    out = p.div(totals.where(totals > 0), axis=0)
    for s in out.index[totals == 0]:
        out.loc[s] = 0.0
        if s in out.columns:
            out.loc[s, s] = 1.0
    return out


def project(
    current: pd.Series,
    counts: pd.DataFrame,
    p_purchase: pd.Series | None = None,
    bought: pd.Series | None = None,
    before: pd.Series | None = None,
    after: pd.Series | None = None,
) -> pd.Series:
    """Expected customers per segment one period ahead (departed excluded, new arrivals added).

    ``current`` maps customer -> segment today. Without ``p_purchase`` the counts move with the
    observed probabilities. With it (and ``bought``: who purchased in the observed period,
    ``before``/``after``: that period's segments), each customer moves with the mixture of the
    buyer and idle transitions weighted by their purchase probability.
    """
    order = [c for c in counts.columns if c != DEPARTED]
    if p_purchase is None or bought is None or before is None or after is None:
        n = current.value_counts().reindex(counts.index[:-1], fill_value=0).astype(float)
        moved = n @ probabilities(counts.iloc[:-1])
    else:
        flag = bought.reindex(before.index).fillna(False).to_numpy(dtype=bool)
        # customers outside the subset land on the NEW row, which is dropped
        p_buy = probabilities(transition_counts(before[flag], after, order).iloc[:-1])
        p_idle = probabilities(transition_counts(before[~flag], after, order).iloc[:-1])
        p = p_purchase.reindex(current.index).astype(float)
        p = p.fillna(float(p.mean()) if p.notna().any() else 0.0).clip(0.0, 1.0)
        rows_buy = p_buy.reindex(current.to_numpy()).to_numpy()
        rows_idle = p_idle.reindex(current.to_numpy()).to_numpy()
        mix = p.to_numpy()[:, None] * rows_buy + (1 - p.to_numpy()[:, None]) * rows_idle
        moved = pd.Series(mix.sum(axis=0), index=p_buy.columns)
    arrivals = counts.loc[NEW].astype(float)
    total = moved.add(arrivals, fill_value=0.0)
    return total.reindex(order, fill_value=0.0)


def shares(counts: pd.Series) -> pd.Series:
    """Counts as shares summing to 1 (all zero stays zero)."""
    total = float(counts.sum())
    return counts.astype(float) / total if total > 0 else counts.astype(float)


def share_error(projected: pd.Series, actual: pd.Series) -> float:
    """Total absolute share error: ``sum_s |projected share - actual share|`` (0..2)."""
    idx = projected.index.union(actual.index)
    a = shares(projected.reindex(idx, fill_value=0.0))
    b = shares(actual.reindex(idx, fill_value=0.0))
    return float((a - b).abs().sum())


# --------------------------------------------------------------------------- the result


@dataclass
class Backtest:
    """The projection method run one period earlier and compared with what happened."""

    dates: tuple[date, date, date]  # (start of the fitted period, projected from, checked at)
    projected: pd.Series  # expected customers per segment at dates[2]
    actual: pd.Series  # customers per segment at dates[2]
    error: float  # total absolute share error of the projection
    naive_error: float  # ... of "the mix stays as at dates[1]"


@dataclass
class Migration:
    """Transitions between two snapshots scored with the same edges and map."""

    earlier: date
    later: date
    order: list[str]  # segment ids in map order
    counts: pd.DataFrame  # rows order+[NEW], columns order+[DEPARTED]
    revenue: pd.DataFrame  # kept revenue in [earlier, later) per path (as kept at ``later``)
    revenue_prior: (
        pd.DataFrame
    )  # kept revenue in [earlier - period, earlier) (as kept at ``earlier``)
    previous: (
        pd.Series
    )  # customer id -> segment id at the earlier date (later customers; NaN = new)
    edges: dict[str, list[float]]  # the later run's edges, used for both snapshots
    projected: pd.Series  # expected customers per segment one period after ``later``
    projected_with: str  # "transitions" or "transitions+p_purchase"
    backtest: Backtest | None
    backtest_note: str | None = None  # why there is no back-test
    basis: str = "recomputed"  # how the earlier snapshot was made
    previous_report: str | None = None  # the earlier month's report folder, when found there

    @property
    def period_days(self) -> int:
        """Days between the two dates (the window of ``revenue`` and of the projection)."""
        return (self.later - self.earlier).days

    def flows(self) -> pd.DataFrame:
        """One row per non-empty (from, to) path: customers, revenue, revenue_prior; largest
        first by customers."""
        c = self.counts.stack().rename("customers")
        r = self.revenue.stack().rename("revenue")
        rp = self.revenue_prior.stack().rename("revenue_prior")
        out = pd.concat([c, r, rp], axis=1).rename_axis(["from", "to"]).reset_index()
        out = out[out["customers"] > 0]
        return out.sort_values(["customers", "revenue"], ascending=False).reset_index(drop=True)


def _current_mix(current: pd.Series, order: list[str]) -> pd.Series:
    return current.value_counts().reindex(order, fill_value=0).astype("int64")


def compare(
    store: Store,
    cfg: Config,
    segmenter: rfm.RFMSegmenter,
    table: pd.DataFrame,
    later: date,
    earlier: date,
    first_date: date | None = None,
    p_purchase: pd.Series | None = None,
    previous_report: str | None = None,
) -> Migration:
    """Score ``earlier`` with the later run's fitted ``segmenter`` and build the migration.

    ``table`` is the later run's scored RFM table (``rfm_segment_id``, ``last_purchase``).
    """
    if earlier >= later:
        raise SegworkInputError(
            f"--compare-to {earlier}: must be before the run's as-of date {later}"
        )
    if first_date is not None and earlier <= first_date:
        raise SegworkInputError(
            f"--compare-to {earlier}: on or before the first kept transaction ({first_date}); "
            "pick a later date"
        )
    order = [s.id for s in segmenter.map_.segments]
    clash = {NEW, DEPARTED} & set(order)
    if clash:
        raise SegworkInputError(f"segment map uses reserved ids {sorted(clash)}")
    period = later - earlier
    after = table["rfm_segment_id"].astype(str)
    prev_table, rev_prior = snapshot_table(store, cfg, earlier, revenue_from=earlier - period)
    assert rev_prior is not None
    before = _labels(segmenter, prev_table)
    counts = transition_counts(before, after, order)
    rev = window_revenue(store.con, store.kept, earlier, later)
    bought = pd.to_datetime(table["last_purchase"]).dt.date >= earlier
    with_p = p_purchase is not None and p_purchase.notna().any()
    projected = project(
        after,
        counts,
        p_purchase if with_p else None,
        bought if with_p else None,
        before if with_p else None,
        after if with_p else None,
    )
    backtest, note = _backtest(store, cfg, segmenter, before, after, earlier, later, first_date)
    return Migration(
        earlier=earlier,
        later=later,
        order=order,
        counts=counts,
        revenue=flow_sums(before, after, rev, order),
        revenue_prior=flow_sums(before, after, rev_prior, order),
        previous=before.reindex(after.index),
        edges={c: list(e.edges) for c, e in segmenter.edges_.items()},
        projected=projected,
        projected_with="transitions+p_purchase" if with_p else "transitions",
        backtest=backtest,
        backtest_note=note,
        previous_report=previous_report,
    )


def _labels(segmenter: rfm.RFMSegmenter, table: pd.DataFrame) -> pd.Series:
    """Segment ids of an RFM table scored with the segmenter's fitted edges."""
    if table.empty:
        return pd.Series([], dtype=object, index=pd.Index([], name="customer_id"))
    return pd.Series(segmenter.predict(table), index=table.index, dtype=object).astype(str)


def _backtest(
    store: Store,
    cfg: Config,
    segmenter: rfm.RFMSegmenter,
    before: pd.Series,
    after: pd.Series,
    earlier: date,
    later: date,
    first_date: date | None,
) -> tuple[Backtest | None, str | None]:
    """Fit transitions on [t0, earlier), project from earlier to later, compare with ``after``."""
    t0 = earlier - (later - earlier)
    if first_date is not None and t0 <= first_date:
        return None, f"no data a full period before {earlier} (first kept purchase {first_date})"
    oldest = _labels(segmenter, snapshot_table(store, cfg, t0, tag="prev2")[0])
    if oldest.empty:
        return None, f"no customers at {t0}"
    order = [s.id for s in segmenter.map_.segments]
    fitted = transition_counts(oldest, before, order)
    projected = project(before, fitted)
    actual = _current_mix(after, order)
    naive = _current_mix(before, order)
    return (
        Backtest(
            dates=(t0, earlier, later),
            projected=projected,
            actual=actual,
            error=round(share_error(projected, actual), 4),
            naive_error=round(share_error(naive.astype(float), actual), 4),
        ),
        None,
    )


# --------------------------------------------------------------------------- earlier reports


def previous_report(
    reports_root: str | Path, as_of: date, exclude: Path | None = None
) -> tuple[date, Path] | None:
    """The latest report under ``reports_root`` of an earlier calendar month than ``as_of``:
    its as-of date (read from its summary.json) and folder, or None."""
    import json

    root = Path(reports_root)
    if not root.is_dir():
        return None
    best: tuple[date, Path] | None = None
    for summary in root.glob("*/summary.json"):
        folder = summary.parent
        if folder.name.startswith(".") or (exclude is not None and folder.resolve() == exclude):
            continue
        try:
            found = date.fromisoformat(json.loads(summary.read_text(encoding="utf-8"))["as_of"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if (found.year, found.month) >= (as_of.year, as_of.month):
            continue
        if best is None or found > best[0]:
            best = (found, folder)
    return best


def previous_columns(m: Migration, labels: dict[str, str]) -> pd.DataFrame:
    """``previous_segment`` (display name) and ``previous_segment_id`` per later customer;
    empty for customers absent at the earlier date."""
    prev = m.previous
    return pd.DataFrame(
        {
            "previous_segment": prev.map(labels),
            "previous_segment_id": prev,
        },
        index=prev.index,
    )
