"""Future state per customer: who buys again in the next H days, how often, for how much.

The recipe is the same at every cut date ``c`` (a time split):
features come from orders dated before ``c``, labels from orders in ``[c, c + H)``.
The final model is trained at ``T - H`` (labels = the last window before the as-of date ``T``)
and applied to the features at ``T``. The back-test repeats it one window earlier (train at
``T - 2H``, predict at ``T - H``, compare with ``[T - H, T)``) for the model and every baseline
on the same customers, so every figure a reader sees comes from data the model never saw.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from segwork.schema import PredictOptions

Progress = Callable[[str], None]
Notice = tuple[str, str, dict[str, Any]]

#: Customer features as of a cut date, in matrix column order.
FEATURES: tuple[str, ...] = (
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "avg_order_value",
    "ipt_mean",
    "ipt_std",
    "orders_recent",
    "orders_previous",
    "revenue_recent",
    "trend",
    "rate",
    "recency_ratio",
    "active_days",
    "repeat_rate",
    "orders_recent_2h",
)
#: The three per-customer columns a prediction adds (segments.csv, the customers artefact).
COLUMNS: tuple[str, ...] = ("p_purchase", "expected_orders", "expected_revenue")
#: Baselines scored on the same split as the model, in report order.
BASELINES: tuple[str, ...] = ("recency", "historical_rate", "bgnbd")
#: A back-test (or the training split) needs this many customers with history ...
MIN_CUSTOMERS = 50
#: ... and at least this many buyers and non-buyers in the label window.
MIN_CLASS = 10
#: Customers the BG/NBD and Gamma-Gamma MAP fits see (population parameters; all are scored).
BTYD_FIT_SAMPLE = 20_000
CALIBRATION_BINS = 10
TOP_N = 1_000
#: OpenMP threads of the boosters. One: they train on at most ``max_train`` customers, and
#: on a shared 2-core machine a thread team cost 4x the time it saved (bench/predict.py).
BOOSTER_THREADS = 1
#: Above this many customers, scoring (not training) runs on every core: each row is
#: independent, and at 1M customers one thread spends most of the stage walking trees.
PARALLEL_PREDICT_ROWS = 200_000


# --------------------------------------------------------------------------- time split


def order_table(
    con: duckdb.DuckDBPyConnection, kept_orders: str, table: str = "predict_orders"
) -> str:
    """One row per kept order (customer, day, revenue, purchase flag, gap), built once per run.

    Read off the ledger's per-order table (``store.kept_orders``), so the source is not scanned
    again. ``gap`` is the days since the customer's previous purchase order (NULL for the first,
    and for refunds): it reads only earlier orders, so it is the same at every cut date.
    """
    per_order = f"""
        SELECT customer_id::VARCHAR AS customer_id,
               min(first_ts)::DATE AS day,
               round(sum(revenue), 6) AS revenue,  -- the same bits whatever the sum order
               NOT bool_and(is_cancel) AS purchase
        FROM {kept_orders}
        WHERE customer_id IS NOT NULL
        GROUP BY customer_id, invoice_id
    """
    return with_gaps(con, f"({per_order})", table)


def with_gaps(con: duckdb.DuckDBPyConnection, source: str, table: str) -> str:
    """Order table ``table`` from ``source`` (customer_id, day, revenue, purchase) plus ``gap``:
    days since the customer's previous purchase order (NULL for the first and for refunds)."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        SELECT customer_id::VARCHAR AS customer_id, day::DATE AS day, revenue, purchase,
               CASE WHEN purchase THEN date_diff('day',
                   lag(day::DATE) OVER (PARTITION BY customer_id, purchase ORDER BY day), day::DATE)
               END AS gap
        FROM {source}
        """
    )
    return table


def _d(day: date) -> str:
    return f"DATE '{day.isoformat()}'"


def _window_sql(orders: str, cut: date, horizon_days: int, with_labels: bool) -> str:
    """SQL: per customer with a purchase before ``cut``, the :data:`FEATURES` from orders dated
    strictly before ``cut`` and, ``with_labels``, the purchase orders and revenue in
    ``[cut, cut + H)`` (one scan for both)."""
    c, h = _d(cut), int(horizon_days)
    past = f"day < {c}"
    if with_labels:
        scan = f"day < {_d(cut + timedelta(days=h))}"
        label_cols = f""",
                   count(*) FILTER (WHERE purchase AND day >= {c})::DOUBLE AS orders,
                   coalesce(round(sum(revenue) FILTER (WHERE day >= {c}), 6), 0)::DOUBLE
                       AS revenue"""
        outer_labels = ", orders, revenue"
    else:
        scan, label_cols, outer_labels = past, "", ""
    return f"""
        WITH f AS (
            SELECT customer_id,
                   date_diff('day', max(day) FILTER (WHERE purchase AND {past}), {c})::DOUBLE
                       AS recency_days,
                   count(*) FILTER (WHERE purchase AND {past})::DOUBLE AS frequency,
                   round(sum(revenue) FILTER (WHERE {past}), 6)::DOUBLE AS monetary,
                   date_diff('day', min(day) FILTER (WHERE purchase AND {past}), {c})::DOUBLE
                       AS tenure_days,
                   avg(gap) FILTER (WHERE {past})::DOUBLE AS ipt_mean,
                   stddev_samp(gap) FILTER (WHERE {past})::DOUBLE AS ipt_std,
                   count(*) FILTER (WHERE purchase AND day >= {c} - {h} AND {past})::DOUBLE
                       AS orders_recent,
                   count(*) FILTER (WHERE purchase AND day >= {c} - {2 * h} AND day < {c} - {h})
                       ::DOUBLE AS orders_previous,
                   coalesce(round(sum(revenue) FILTER (WHERE day >= {c} - {h} AND {past}), 6), 0)
                       ::DOUBLE AS revenue_recent{label_cols}
            FROM {orders} WHERE {scan}
            GROUP BY customer_id
            HAVING count(*) FILTER (WHERE purchase AND {past}) > 0
        )
        SELECT customer_id, recency_days, frequency, monetary, tenure_days,
               monetary / frequency AS avg_order_value, ipt_mean, ipt_std,
               orders_recent, orders_previous, revenue_recent,
               orders_recent - orders_previous AS trend,
               frequency / greatest(tenure_days, {h}) AS rate,
               recency_days / nullif(ipt_mean, 0) AS recency_ratio,
               tenure_days - recency_days AS active_days,
               (frequency - 1) / greatest(tenure_days - recency_days, 1) AS repeat_rate,
               orders_recent + orders_previous AS orders_recent_2h{outer_labels}
        FROM f
        ORDER BY customer_id
        """


def features(
    con: duckdb.DuckDBPyConnection, orders: str, cut: date, horizon_days: int
) -> pd.DataFrame:
    """Customer features from orders dated strictly before ``cut``, indexed by customer_id.

    Only customers with a purchase before ``cut`` appear; nothing on or after ``cut`` is read
    (``gap`` looks back only, see :func:`order_table`).
    """
    df = con.execute(_window_sql(orders, cut, horizon_days, with_labels=False)).df()
    return df.set_index("customer_id")[list(FEATURES)]


def split(
    con: duckdb.DuckDBPyConnection, orders: str, cut: date, horizon_days: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(:func:`features`, labels) at ``cut`` from one scan of the orders: the labels are the
    purchase orders and revenue in ``[cut, cut + H)`` of each customer with a purchase before
    ``cut`` (0 when none), without a second query and a reindex on a million customer IDs."""
    df = con.execute(_window_sql(orders, cut, horizon_days, with_labels=True)).df()
    df = df.set_index("customer_id")
    return df[list(FEATURES)], df[["orders", "revenue"]]


def _xy(x: pd.DataFrame | np.ndarray, y: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Features as a float matrix (FEATURES order when a frame) and targets as (n, 2)."""
    if isinstance(x, pd.DataFrame):
        x = x[list(FEATURES)]
    xm = np.asarray(x, dtype=np.float64)
    if xm.ndim != 2 or xm.shape[1] != len(FEATURES):
        raise ValueError(f"X needs the {len(FEATURES)} columns {FEATURES}, got shape {xm.shape}")
    if y is None:
        return xm, None
    ym = np.asarray(y, dtype=np.float64)
    if ym.shape != (xm.shape[0], 2):
        raise ValueError(f"y needs shape (n, 2) = (orders, revenue), got {ym.shape}")
    return xm, ym


def _col(xm: np.ndarray, name: str) -> np.ndarray:
    return xm[:, FEATURES.index(name)]


# --------------------------------------------------------------------------- estimators


class PurchaseModel(BaseEstimator):
    """Gradient boosting with isotonic calibration (cross-fitted), plus count and spend models.

    ``fit(X, y)``: X has the :data:`FEATURES` columns, y is (orders, revenue) in the window.
    ``predict(X)`` gives (p_purchase, expected_orders, expected_revenue) per row:
    expected orders = p x E[orders | buys], expected revenue = that x E[revenue per order | buys].
    The probability is calibrated by ``CalibratedClassifierCV`` (isotonic, ``calibration_folds``
    folds): by default one booster trained on every sampled customer, calibrated on the
    out-of-fold predictions of the folds (``ensemble=False``); ``calibration_ensemble=True``
    keeps each fold's booster and averages them, which scores no better here (bench/predict.py:
    AUC 0.9255-0.9258 against 0.9258-0.9263, Brier 0.0813-0.0814 against 0.0812, two seeds at
    1M customers) and costs three boosters per row scored instead of one.
    """

    def __init__(
        self,
        max_iter: int = 60,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 7,
        min_samples_leaf: int = 40,
        calibration_folds: int = 3,
        calibration_ensemble: bool = False,
        max_train: int = 50_000,
        random_state: int = 0,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.calibration_folds = calibration_folds
        self.calibration_ensemble = calibration_ensemble
        self.max_train = max_train
        self.random_state = random_state

    def _booster(self, cls: type, **kw: Any) -> Any:
        return cls(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=self.random_state,
            **kw,
        )

    def fit(self, X: Any, y: Any) -> PurchaseModel:
        """Train on a sample of at most ``max_train`` customers (y = orders, revenue)."""
        xm, ym = _xy(X, y)
        assert ym is not None
        rng = np.random.default_rng(self.random_state)
        if xm.shape[0] > self.max_train:
            keep = rng.choice(xm.shape[0], self.max_train, replace=False)
            xm, ym = xm[keep], ym[keep]
        bought = ym[:, 0] > 0
        if min(int(bought.sum()), int((~bought).sum())) < self.calibration_folds:
            raise ValueError("PurchaseModel needs buyers and non-buyers in the label window")
        self.classifier_ = CalibratedClassifierCV(
            self._booster(HistGradientBoostingClassifier),
            method="isotonic",
            cv=self.calibration_folds,
            ensemble=self.calibration_ensemble,
        ).fit(xm, bought)
        xb, orders, revenue = xm[bought], ym[bought, 0], ym[bought, 1]
        self.count_model_ = self._booster(HistGradientBoostingRegressor, loss="poisson").fit(
            xb, orders - 1.0
        )
        per_order = np.maximum(revenue / orders, 0.01)
        self.spend_model_ = self._booster(HistGradientBoostingRegressor, loss="gamma").fit(
            xb, per_order
        )
        self.n_features_in_ = xm.shape[1]
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated (P(no order), P(at least one order)) in the window."""
        check_is_fitted(self)
        xm, _ = _xy(X)
        return self.classifier_.predict_proba(xm)

    def predict(self, X: Any) -> np.ndarray:
        """(p_purchase, expected_orders, expected_revenue) per row."""
        check_is_fitted(self)
        xm, _ = _xy(X)
        threads = (os.cpu_count() or 1) if len(xm) > PARALLEL_PREDICT_ROWS else BOOSTER_THREADS
        with threadpool_limits(limits=threads, user_api="openmp"):
            p = self.predict_proba(xm)[:, 1]
            per_buyer = 1.0 + np.maximum(self.count_model_.predict(xm), 0.0)
            orders = p * per_buyer
            spend = self.spend_model_.predict(xm)
        return np.column_stack([p, orders, orders * spend])


class RecencyBaseline(BaseEstimator):
    """Recency alone: the purchase rate, orders and revenue seen per recency decile in training."""

    def __init__(self, bins: int = 10) -> None:
        self.bins = bins

    def fit(self, X: Any, y: Any) -> RecencyBaseline:
        """Learn decile edges of recency and the mean outcome per decile."""
        xm, ym = _xy(X, y)
        assert ym is not None
        r = _col(xm, "recency_days")
        qs = np.linspace(0, 1, self.bins + 1)[1:-1]
        self.edges_ = np.unique(np.quantile(r, qs))
        b = np.searchsorted(self.edges_, r, side="right")
        n = self.edges_.size + 1
        counts = np.maximum(np.bincount(b, minlength=n), 1)
        self.table_ = np.column_stack(
            [
                np.bincount(b, weights=(ym[:, 0] > 0).astype(float), minlength=n) / counts,
                np.bincount(b, weights=ym[:, 0], minlength=n) / counts,
                np.bincount(b, weights=ym[:, 1], minlength=n) / counts,
            ]
        )
        self.n_features_in_ = xm.shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """(p_purchase, expected_orders, expected_revenue) of each row's recency decile."""
        check_is_fitted(self)
        xm, _ = _xy(X)
        return self.table_[np.searchsorted(self.edges_, _col(xm, "recency_days"), side="right")]


class HistoricalRateBaseline(BaseEstimator):
    """The customer's own past purchase rate carried forward (Poisson): learns nothing."""

    def __init__(self, horizon_days: int = 90) -> None:
        self.horizon_days = horizon_days

    def fit(self, X: Any, y: Any = None) -> HistoricalRateBaseline:
        """Nothing to learn; records the feature count."""
        xm, _ = _xy(X)
        self.n_features_in_ = xm.shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Orders per day since the first purchase x H; p = 1 - exp(-orders)."""
        check_is_fitted(self)
        xm, _ = _xy(X)
        per_day = _col(xm, "frequency") / np.maximum(_col(xm, "tenure_days"), 1.0)
        orders = per_day * self.horizon_days
        return np.column_stack(
            [1.0 - np.exp(-orders), orders, orders * _col(xm, "avg_order_value")]
        )


def _import_btyd() -> Any:
    """pymc_marketing.clv, imported without tqdm's "IProgress not found" warning, which a
    notebook kernel would otherwise show on stderr (and nbval compare)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        import pymc_marketing.clv

    return pymc_marketing.clv


def btyd_available() -> bool:
    """True when pymc-marketing (the optional ``btyd`` extra) can be imported."""
    try:
        _import_btyd()
    except ImportError:
        return False
    return True


def _import_btyd_beside() -> Callable[[], bool]:
    """Start importing pymc-marketing on a thread; the returned call waits and says whether it
    can be used. The import (2.2 s, most of it Python) runs while DuckDB computes the
    features, which leaves the GIL, instead of before them."""
    found: list[bool] = []
    thread = threading.Thread(
        target=lambda: found.append(btyd_available()), name="segwork-btyd-import", daemon=True
    )
    thread.start()

    def available() -> bool:
        thread.join()
        return bool(found and found[0])

    return available


def _btyd_frame(xm: np.ndarray) -> pd.DataFrame:
    """BTYD inputs from features: repeat purchases, t_x and T in days, mean order value."""
    tenure = np.maximum(_col(xm, "tenure_days"), 1.0)
    return pd.DataFrame(
        {
            "customer_id": np.arange(xm.shape[0]),
            "frequency": _col(xm, "frequency") - 1.0,
            "recency": np.clip(tenure - _col(xm, "recency_days"), 0.0, tenure),
            "T": tenure,
            "monetary_value": np.maximum(_col(xm, "avg_order_value"), 0.01),
        }
    )


class BetaGeoBaseline(BaseEstimator):
    """BG/NBD (purchases) with Gamma-Gamma (spend) from pymc-marketing, fitted by MAP."""

    def __init__(
        self, horizon_days: int = 90, fit_sample: int = BTYD_FIT_SAMPLE, random_state: int = 0
    ) -> None:
        self.horizon_days = horizon_days
        self.fit_sample = fit_sample
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> BetaGeoBaseline:
        """MAP fit of both models on at most ``fit_sample`` customers (y is not used)."""
        clv = _import_btyd()
        BetaGeoModel, GammaGammaModel = clv.BetaGeoModel, clv.GammaGammaModel  # noqa: N806

        xm, _ = _xy(X)
        d = _btyd_frame(xm)
        if len(d) > self.fit_sample:
            d = d.sample(self.fit_sample, random_state=self.random_state)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.bgnbd_ = BetaGeoModel(data=d[["customer_id", "frequency", "recency", "T"]])
            self.bgnbd_.fit(method="map", progressbar=False)
            rep = d[d["frequency"] > 0][["customer_id", "monetary_value", "frequency"]]
            self.gamma_gamma_ = GammaGammaModel(data=rep)
            self.gamma_gamma_.fit(method="map", progressbar=False)
        self.fit_seconds_ = time.perf_counter() - t0
        self.n_features_in_ = xm.shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """(P(at least one order), expected orders, expected orders x expected spend)."""
        check_is_fitted(self)
        xm, _ = _xy(X)
        d = _btyd_frame(xm)
        h = int(self.horizon_days)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            none = np.asarray(self.bgnbd_.expected_probability_no_purchase(h, data=d)).ravel()
            orders = np.asarray(self.bgnbd_.expected_purchases(d, future_t=h)).ravel()
            spend = np.asarray(
                self.gamma_gamma_.expected_customer_spend(
                    data=d[["customer_id", "monetary_value", "frequency"]]
                )
            ).ravel()
        return np.column_stack([np.clip(1.0 - none, 0.0, 1.0), orders, orders * spend])


def baseline(name: str, horizon_days: int, seed: int) -> BaseEstimator:
    """A baseline estimator by id (see :data:`BASELINES`)."""
    if name == "recency":
        return RecencyBaseline()
    if name == "historical_rate":
        return HistoricalRateBaseline(horizon_days=horizon_days)
    if name == "bgnbd":
        return BetaGeoBaseline(horizon_days=horizon_days, random_state=seed)
    raise ValueError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")


# --------------------------------------------------------------------------- scoring


def scores(pred: np.ndarray, actual: pd.DataFrame | np.ndarray) -> dict[str, Any]:
    """AUC, Brier, MAE of orders and revenue, predicted/actual totals, top-N hits, calibration."""
    y = np.asarray(actual, dtype=np.float64)
    bought = y[:, 0] > 0
    p = pred[:, 0]
    both = bought.any() and not bought.all()
    n = p.size
    top_n = int(min(TOP_N, max(1, n // 10)))
    top = np.argsort(-p, kind="stable")[:top_n]
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    b = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, CALIBRATION_BINS - 1)
    curve = []
    for i in range(CALIBRATION_BINS):
        m = b == i
        if m.any():
            curve.append(
                {
                    "lower": float(edges[i]),
                    "upper": float(edges[i + 1]),
                    "customers": int(m.sum()),
                    "predicted": round(float(p[m].mean()), 4),
                    "observed": round(float(bought[m].mean()), 4),
                }
            )
    total = float(y[:, 0].sum())
    total_rev = float(y[:, 1].sum())
    return {
        "customers": int(n),
        "buyers": int(bought.sum()),
        "auc": round(float(roc_auc_score(bought, p)), 4) if both else None,
        "brier": round(float(brier_score_loss(bought, np.clip(p, 0, 1))), 4),
        "mae_orders": round(float(np.abs(pred[:, 1] - y[:, 0]).mean()), 4),
        "mae_revenue": round(float(np.abs(pred[:, 2] - y[:, 1]).mean()), 2),
        "total_orders_ratio": round(float(pred[:, 1].sum()) / total, 4) if total else None,
        "total_revenue_ratio": round(float(pred[:, 2].sum()) / total_rev, 4) if total_rev else None,
        "top_n": top_n,
        "top_hits": int(bought[top].sum()),
        "calibration": curve,
    }


# --------------------------------------------------------------------------- the stage


@dataclass
class PredictionResult:
    """Per-customer predictions as of T, the back-test and what the summary needs."""

    customers: pd.DataFrame  # index customer_id; p_purchase, expected_orders, expected_revenue
    last_window_revenue: pd.Series  # revenue in [T - H, T) per customer (0 when none)
    model: str  # "gradient_boosting" or the baseline id used as the fallback
    horizon_days: int
    at_risk_below: float
    backtest: dict[str, Any] | None  # {"model": scores, "baselines": {id: scores}, dates}
    warnings: tuple[Notice, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)  # RFM id -> future state
    clusters: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # method -> ...

    def summary(self) -> dict[str, Any]:
        """The ``prediction`` block of summary.json (ids and numbers only)."""
        return {
            "horizon_days": self.horizon_days,
            "at_risk_below": self.at_risk_below,
            "model": self.model,
            "features": list(FEATURES),
            "customers": len(self.customers),
            "backtest": self.backtest,
            "segments": self.segments,
            "clusters": self.clusters,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def _enough(y: pd.DataFrame) -> bool:
    """A split can train or score a model: enough customers, buyers and non-buyers."""
    bought = int((y["orders"] > 0).sum())
    return len(y) >= MIN_CUSTOMERS and MIN_CLASS <= bought <= len(y) - MIN_CLASS


def _fittable(baselines: tuple[str, ...], x: pd.DataFrame) -> tuple[str, ...]:
    """The baselines that can be fitted on ``x``: BG/NBD + Gamma-Gamma need repeat customers."""
    repeat = int((x["frequency"] > 1).sum())
    return tuple(b for b in baselines if b != "bgnbd" or repeat >= MIN_CLASS)


def _frame(pred: np.ndarray, index: pd.Index) -> pd.DataFrame:
    out = pd.DataFrame(pred, index=index, columns=list(COLUMNS))
    out.index.name = "customer_id"
    return out


def run_prediction(
    con: duckdb.DuckDBPyConnection,
    orders: str,
    as_of: date,
    opts: PredictOptions,
    seed: int = 0,
    progress: Progress | None = None,
    baselines: tuple[str, ...] = BASELINES,
) -> PredictionResult:
    """Back-test (T-2H -> T-H), then train at T-H and predict every customer as of T.

    The boosters run on :data:`BOOSTER_THREADS` OpenMP threads.
    """
    with threadpool_limits(limits=BOOSTER_THREADS, user_api="openmp"):
        return _run_prediction(con, orders, as_of, opts, seed, progress, baselines)


def _run_prediction(
    con: duckdb.DuckDBPyConnection,
    orders: str,
    as_of: date,
    opts: PredictOptions,
    seed: int,
    progress: Progress | None,
    baselines: tuple[str, ...],
) -> PredictionResult:
    say = progress or (lambda _msg: None)
    h = int(opts.horizon_days)
    step = timedelta(days=h)
    sec: dict[str, float] = {}
    t = time.perf_counter()
    notes: list[Notice] = []
    btyd = _import_btyd_beside() if "bgnbd" in baselines else None
    # at most two windows' features are alive at a time (each is ~200 MB at 1M customers)
    x_mid, y_mid = split(con, orders, as_of - step, h)
    x_old, y_old = split(con, orders, as_of - 2 * step, h)
    sec["features"] = time.perf_counter() - t
    if btyd is not None and not btyd():
        baselines = tuple(b for b in baselines if b != "bgnbd")
        notes.append(
            (
                "predict_btyd_unavailable",
                "pymc-marketing is not installed (pip install segwork[btyd]); the BG/NBD "
                "baseline is left out",
                {},
            )
        )

    backtest: dict[str, Any] | None = None
    if _enough(y_old) and _enough(y_mid):
        t = time.perf_counter()
        say(
            f"  back-test: train as of {as_of - 2 * step} ({len(x_old):,} customers), "
            f"score as of {as_of - step} against ({as_of - step}, {as_of})"
        )
        model = PurchaseModel(random_state=seed).fit(x_old, y_old)
        backtest = {
            "train_as_of": (as_of - 2 * step).isoformat(),
            "score_as_of": (as_of - step).isoformat(),
            "model": scores(model.predict(x_mid), y_mid),
            "baselines": {},
        }
        sec["backtest_model"] = time.perf_counter() - t
        for name in _fittable(baselines, x_old):
            t = time.perf_counter()
            est = baseline(name, h, seed).fit(x_old, y_old)
            backtest["baselines"][name] = scores(est.predict(x_mid), y_mid)
            sec[f"backtest_{name}"] = time.perf_counter() - t
        del model, x_old, y_old
        t = time.perf_counter()
        final = PurchaseModel(random_state=seed).fit(x_mid, y_mid)
        fit_seconds = time.perf_counter() - t
        del x_mid, y_mid
        x_now = _now_features(con, orders, as_of, h, sec)
        t = time.perf_counter()
        pred = final.predict(x_now)
        used = "gradient_boosting"
        sec["fit_predict"] = fit_seconds + time.perf_counter() - t
    else:
        del x_old, y_old, x_mid, y_mid
        x_now = _now_features(con, orders, as_of, h, sec)
        used = "bgnbd" if "bgnbd" in _fittable(baselines, x_now) else "historical_rate"
        first = con.execute(f"SELECT min(day) FROM {orders}").fetchall()[0][0]
        notes.append(
            (
                "predict_short_history",
                f"too little history for a back-test of a {h}-day horizon (data from {first}, "
                f"as of {as_of}; needs {2 * h} days with {MIN_CUSTOMERS}+ customers and "
                f"{MIN_CLASS}+ buyers and non-buyers per window); predictions use the "
                f"{used} baseline, not back-tested",
                {"horizon_days": h, "first": str(first), "fallback": used},
            )
        )
        t = time.perf_counter()
        pred = baseline(used, h, seed).fit(x_now).predict(x_now)
        sec["fit_predict"] = time.perf_counter() - t
    return PredictionResult(
        customers=_frame(pred, x_now.index),
        # revenue in [T - H, T): the label of the last window, i.e. the features' revenue_recent
        last_window_revenue=x_now["revenue_recent"].rename("revenue"),
        model=used,
        horizon_days=h,
        at_risk_below=float(opts.at_risk_below),
        backtest=backtest,
        warnings=tuple(notes),
        seconds=sec,
    )


def _now_features(
    con: duckdb.DuckDBPyConnection, orders: str, as_of: date, h: int, sec: dict[str, float]
) -> pd.DataFrame:
    """Features as of the run's date (timed with the other windows' features)."""
    t = time.perf_counter()
    x_now = features(con, orders, as_of, h)
    sec["features"] = sec.get("features", 0.0) + time.perf_counter() - t
    return x_now


def aligned(result: PredictionResult, index: pd.Index) -> PredictionResult:
    """``result`` with its per-customer frames reindexed to ``index`` once: each
    :func:`future_state` over groups on that index then skips the lookup (at a million
    text IDs, about a second per frame per grouping)."""
    return dataclasses.replace(
        result,
        customers=result.customers.reindex(index),
        last_window_revenue=result.last_window_revenue.reindex(index),
    )


def future_state(
    result: PredictionResult, groups: pd.Series, key: Callable[[Any], str] = str
) -> dict[str, dict[str, Any]]:
    """Per group id: customers, mean p_purchase, expected orders and revenue, at-risk figures.

    Only customers with a prediction count (visitors who never ordered have none); a group of
    such customers only has no future state. A group's id is ``key`` of its label (labels whose
    ids coincide are one group); ``key`` runs once per distinct label, not once per customer.

    At risk = p_purchase below ``at_risk_below``; ``at_risk_revenue`` is what those customers
    spent in the last window ``[T - H, T)``.
    """
    c = result.customers.reindex(groups.index)
    p = c["p_purchase"].to_numpy(dtype=np.float64)
    risk = p < result.at_risk_below
    last = result.last_window_revenue.reindex(groups.index).fillna(0.0).to_numpy(np.float64)
    codes, labels = pd.factorize(groups, use_na_sentinel=False)
    codes, ids = pd.factorize(np.asarray([key(v) for v in labels], dtype=object)[codes])
    # customers with no order history (visitors who never bought) have no prediction
    rows = np.flatnonzero(~np.isnan(p))
    rows = rows[np.argsort(codes[rows], kind="stable")]  # each group's rows, in table order
    bounds = np.searchsorted(codes[rows], np.arange(len(ids) + 1))
    columns = {
        "p": p,
        "o": c["expected_orders"].to_numpy(dtype=np.float64),
        "r": c["expected_revenue"].to_numpy(dtype=np.float64),
        "risk_rev": np.where(risk, last, 0.0),
    }
    # the rows of every column in group order: each group's sums are numpy's sums of its slice
    taken = {name: np.nan_to_num(col[rows], nan=0.0) for name, col in columns.items()}
    at_risk = risk[rows]
    out: dict[str, dict[str, Any]] = {}
    for g in sorted(range(len(ids)), key=lambda i: (not ids[i].isdigit(), ids[i].zfill(12))):
        lo, hi = bounds[g], bounds[g + 1]
        if hi == lo:
            continue
        part = {name: col[lo:hi] for name, col in taken.items()}
        out[str(ids[g])] = {
            "customers": int(hi - lo),
            "mean_p_purchase": round(float(part["p"].sum() / (hi - lo)), 4),
            "expected_orders": round(float(part["o"].sum()), 2),
            "expected_revenue": round(float(part["r"].sum()), 2),
            "at_risk": int(at_risk[lo:hi].sum()),
            "at_risk_revenue": round(float(part["risk_rev"].sum()), 2),
        }
    return out
