"""RFM table (from the one-pass DuckDB aggregate), quantile scoring with a tie rule, RFMSegmenter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted

from segwork.errors import SegworkInputError
from segwork.maps import SegmentMap, load_map
from segwork.store import BY_CUSTOMER

RFM_COLUMNS = ("recency_days", "frequency", "monetary")
#: Scores where a larger value is better get ``higher=True``; recency is better when small.
_HIGHER_IS_BETTER = {"recency_days": False, "frequency": True, "monetary": True}
SCORE_COLUMNS = {"recency_days": "r_score", "frequency": "f_score", "monetary": "m_score"}


def latest_purchase(con: duckdb.DuckDBPyConnection, table: str = BY_CUSTOMER) -> date | None:
    """Date of the latest kept purchase, or None when nothing was kept."""
    ts = con.execute(f"SELECT max(last_purchase) FROM {table} WHERE reason IS NULL").fetchall()[0][
        0
    ]
    return None if ts is None else pd.Timestamp(ts).date()


def earliest_purchase(con: duckdb.DuckDBPyConnection, table: str = BY_CUSTOMER) -> date | None:
    """Date of the earliest kept purchase, or None when nothing was kept."""
    ts = con.execute(f"SELECT min(first_purchase) FROM {table} WHERE reason IS NULL").fetchall()[0][
        0
    ]
    return None if ts is None else pd.Timestamp(ts).date()


def default_as_of(con: duckdb.DuckDBPyConnection, table: str = BY_CUSTOMER) -> date | None:
    """The day after the latest kept transaction: recency 1 means 'bought on the last day'."""
    last = latest_purchase(con, table)
    return None if last is None else last + timedelta(days=1)


#: Decimals kept for money (cents) and for the R, F, M bin edges reported and used.
MONEY_DECIMALS = 2


def money_sql(expr: str) -> str:
    """SQL rounding a floating-point sum to cents via 4 decimals, so equal cents compare equal."""
    return f"round(round({expr}, 4), {MONEY_DECIMALS})"


def rfm_table(
    con: duckdb.DuckDBPyConnection, as_of: date, table: str = BY_CUSTOMER
) -> pd.DataFrame:
    """One row per customer with at least one kept purchase, indexed by ``customer_id``.

    recency_days: whole days from the last purchase's date to ``as_of``; frequency: distinct
    purchase orders; monetary: net kept revenue in cents (refunds netted when
    cancellations='net'); tenure_days: days since the first purchase; avg_order_value =
    monetary / frequency; mean_interpurchase_days = (last - first) / (frequency - 1), NaN for
    one-order customers.

    Monetary is rounded to 4 decimals (removing the order-of-summation noise of floating
    point: 100.1 + 103.45 is 203.54999999999998) and then to cents, so customers who spent
    the same amount always hold the same number and always get the same score.
    """
    d = f"DATE '{as_of.isoformat()}'"
    df = con.execute(
        f"""
        SELECT customer_id,
               date_diff('day', last_purchase::DATE, {d})::BIGINT AS recency_days,
               frequency::BIGINT AS frequency,
               {money_sql("revenue")} AS monetary,
               date_diff('day', first_purchase::DATE, {d})::BIGINT AS tenure_days,
               {money_sql("revenue")} / frequency AS avg_order_value,
               CASE WHEN frequency > 1
                    THEN date_diff('second', first_purchase, last_purchase) / 86400.0 / (frequency - 1)
               END AS mean_interpurchase_days,
               first_purchase, last_purchase, country
        FROM {table}
        WHERE reason IS NULL AND frequency > 0
        ORDER BY customer_id
        """
    ).df()
    df["customer_id"] = df["customer_id"].astype(str)
    return df.set_index("customer_id")


@dataclass(frozen=True)
class BinEdges:
    """Inner edges of one score: a value v gets score 1 + #{edges < v} (reversed for recency)."""

    column: str
    edges: tuple[float, ...]
    higher_is_better: bool
    source: str  # "quantile" or "fixed"
    on_boundary: tuple[int, ...]  # customers whose value equals each edge


def quantile_edges(values: pd.Series, bins: int) -> tuple[float, ...]:
    """The (bins-1) inner quantile edges, rounded to cents (as monetary is), so summary.json
    shows the very numbers scores were compared with; ties stay together because scoring
    compares values."""
    qs = np.linspace(0, 1, bins + 1)[1:-1]
    edges = np.quantile(values.to_numpy(dtype=float), qs)
    return tuple(round(float(x), MONEY_DECIMALS) for x in edges)


def score_values(values: pd.Series, edges: BinEdges, bins: int) -> pd.Series:
    """Scores 1..bins; equal values always get equal scores (edge values fall in the lower bin)."""
    raw = 1 + np.searchsorted(np.asarray(edges.edges), values.to_numpy(dtype=float), side="left")
    raw = np.clip(raw, 1, bins)
    scores = raw if edges.higher_is_better else bins + 1 - raw
    return pd.Series(scores.astype("int64"), index=values.index, name=SCORE_COLUMNS[edges.column])


def fit_edges(
    rfm: pd.DataFrame, bins: int, fixed: dict[str, list[float]] | None = None
) -> dict[str, BinEdges]:
    """Edges per R, F, M column: quantiles of this data, or fixed edges from config."""
    out: dict[str, BinEdges] = {}
    for col in RFM_COLUMNS:
        if fixed and col in fixed:
            edges = tuple(float(x) for x in fixed[col])
            if len(edges) != bins - 1 or list(edges) != sorted(edges):
                raise SegworkInputError(
                    f"config: rfm.fixed_edges.{col} needs {bins - 1} increasing edges, got {list(edges)}"
                )
            source = "fixed"
        else:
            edges = quantile_edges(rfm[col], bins)
            source = "quantile"
        vals = rfm[col].to_numpy(dtype=float)
        on = tuple(int(np.count_nonzero(vals == e)) for e in edges)
        out[col] = BinEdges(col, edges, _HIGHER_IS_BETTER[col], source, on)
    return out


def score(rfm: pd.DataFrame, edges: dict[str, BinEdges], bins: int) -> pd.DataFrame:
    """r_score, f_score, m_score for each customer."""
    return pd.concat([score_values(rfm[c], edges[c], bins) for c in RFM_COLUMNS], axis=1)


def edges_report(edges: dict[str, BinEdges]) -> dict[str, dict[str, object]]:
    """JSON-ready description of the bins used and how many customers sit on each edge."""
    return {
        c: {
            "edges": list(e.edges),
            "source": e.source,
            "higher_is_better": e.higher_is_better,
            "customers_on_edge": list(e.on_boundary),
            "rule": "score = 1 + number of edges strictly below the value"
            + ("" if e.higher_is_better else ", reversed (recent = high)")
            + "; equal values get equal scores",
        }
        for c, e in edges.items()
    }


class RFMSegmenter(ClusterMixin, BaseEstimator):
    """Assigns named RFM groups from scores using a segment map (data, not code).

    ``fit`` learns the bin edges on the RFM table; ``predict`` scores new customers with
    those edges and looks the (r, f, m) cell up in the map. Labels are segment ids, or the
    display names in ``label_lang`` ("ko" or "en") when set, for tables a reader will see.
    """

    def __init__(
        self,
        segment_map: str | SegmentMap = "ko_crm10",
        bins: int = 5,
        fixed_edges: dict[str, list[float]] | None = None,
        label_lang: str | None = None,
    ) -> None:
        self.segment_map = segment_map
        self.bins = bins
        self.fixed_edges = fixed_edges
        self.label_lang = label_lang

    def fit(self, X: pd.DataFrame, y: object = None) -> RFMSegmenter:
        """Learn edges and load the map; ``labels_`` holds each customer's segment id."""
        if len(X) == 0:
            raise SegworkInputError("no customers to segment")
        self.map_ = load_map(self.segment_map)
        if self.map_.bins != self.bins:
            raise SegworkInputError(
                f"segment map '{self.map_.name}' is defined for {self.map_.bins} bins, not {self.bins}"
            )
        self.edges_ = fit_edges(X, self.bins, self.fixed_edges)
        self.scores_ = score(X, self.edges_, self.bins)
        self.labels_ = self._name(self.map_.assign(self._cells(X, self.scores_)))
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Segment ids (or names) for customers scored with the fitted edges."""
        check_is_fitted(self, "edges_")
        return self._name(self.map_.assign(self._cells(X, score(X, self.edges_, self.bins))))

    def _cells(self, X: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
        """The scores, plus the visit features a map with visit conditions tests."""
        present = [c for c in self.map_.features if c in X.columns]
        return scores.join(X[present]) if present else scores

    def _name(self, ids: np.ndarray) -> np.ndarray:
        if self.label_lang is None:
            return ids
        names = self.map_.labels(self.label_lang)
        return np.array([names[i] for i in ids], dtype=object)
