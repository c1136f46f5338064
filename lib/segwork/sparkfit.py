"""Clustering on the Spark engine: fitted on a seeded sample pulled to the driver, every customer
labelled on the executors.

The driver holds at most :data:`FIT_SAMPLE` customers of the per-customer table for the fit
(:func:`driver_sample`, chosen by a seeded hash of the customer id, so the same data and seed
give the same sample on any cluster); the fitted segmenters are broadcast and every customer is
labelled where the table lives (:func:`segwork.spark.assign_on_executors`). A table no larger
than the sample is clustered whole, exactly as the DuckDB engine does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin, clone

from segwork.clustering import METHOD_COLUMNS, ClusterConfig, ClusteringResult, run_clustering
from segwork.spark import SparkCon, assign_on_executors, rfm_frame
from segwork.text import make_note

#: Customers the clusterings are fitted on, on the driver (a seeded sample above this).
FIT_SAMPLE = 200_000


class FittedReference(ClusterMixin, BaseEstimator):
    """A fitted segmenter used as a reference without refitting: ``fit`` only labels (the RFM
    segments of a sample keep the edges fitted on every customer)."""

    def __init__(self, segmenter: Any = None) -> None:
        self.segmenter = segmenter

    def fit(self, X: pd.DataFrame, y: object = None) -> FittedReference:
        """``labels_``: the fitted segmenter's labels for ``X``."""
        self.labels_ = np.asarray(self.segmenter.predict(X))
        return self


def driver_sample(con: SparkCon, as_of: date, size: int, seed: int) -> pd.DataFrame:
    """``size`` customers of the per-customer table (smallest seeded hash of the id), on the driver."""
    from pyspark.sql import functions as F

    frame = rfm_frame(con, as_of)
    key = F.xxhash64(F.col("customer_id"), F.lit(int(seed)))
    picked = frame.orderBy(key, F.col("customer_id")).limit(int(size)).toPandas()
    picked["customer_id"] = picked["customer_id"].astype(str)
    return picked.set_index("customer_id").sort_index()


def executor_labels(
    con: SparkCon, as_of: date, segmenter: Any, fitted: dict[str, Any]
) -> pd.DataFrame:
    """Cluster labels and memberships of every customer, computed on the executors."""
    frame = assign_on_executors(rfm_frame(con, as_of), segmenter, fitted)
    keep = [c for c in frame.columns if c.endswith(("_cluster", "_probability"))]
    out = frame.select("customer_id", *keep).toPandas()
    return out.set_index(out["customer_id"].astype(str)).drop(columns="customer_id")


def _mark_sampled(summary: dict[str, Any], sample: int, n: int, seed: int) -> None:
    """Every method's block says it was fitted on the driver's sample (``sampled`` and a note)."""
    for name, block in summary["methods"].items():
        block["sampled"] = True
        note = make_note("driver_sample", method=name, sample=sample, n=n, seed=seed)
        block["notes"] = [*block["notes"], note]
    summary["fit_sample"] = {"n_sample": sample, "n_customers": n, "seed": seed}


def cluster_on_sample(
    prep: Any,
    cfg: ClusterConfig,
    truth: pd.Series | None = None,
    say: Callable[[str], None] | None = None,
    size: int = FIT_SAMPLE,
) -> ClusteringResult:
    """The clustering stage on Spark: fit on the driver's sample, label everyone on the executors.

    ``prep`` is the run's :class:`segwork.pipeline.Prepared` on a :class:`SparkCon`. Up to
    ``size`` customers the whole table is clustered, as on DuckDB.
    """
    say = say or (lambda _msg: None)
    n = len(prep.table)
    if n <= size:
        ref = {"rfm": clone(prep.segmenter)}
        return run_clustering(prep.table, cfg, reference=ref, truth=truth, progress=say)
    sample = driver_sample(prep.store.con, prep.as_of, size, cfg.seed)
    say(f"clustering on a sample of {len(sample):,} of {n:,} customers pulled to the driver")
    ref = {"rfm": FittedReference(prep.segmenter)}
    result = run_clustering(sample, cfg, reference=ref, truth=truth, progress=say)
    _mark_sampled(result.summary, len(sample), n, cfg.seed)
    errors = result.summary.get("errors", {})
    fitted = {m: result.segmenters[m] for m in METHOD_COLUMNS if m not in errors}
    say(f"labelling {n:,} customers on the executors")
    labels = executor_labels(prep.store.con, prep.as_of, prep.segmenter, fitted)
    fit_cols = [c for c in result.labels.columns if c in labels.columns]
    # the sample keeps the labels its fit gave (Ward's tree cut, HDBSCAN's own clusters)
    labels = result.labels[fit_cols].combine_first(labels).reindex(prep.table.index)
    labels["rfm_segment"] = prep.table["rfm_segment_id"]
    result.labels = _complete(labels, list(result.labels.columns))
    return result


def _complete(labels: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``labels`` with ``columns`` in order; a failed method's column filled as
    :func:`segwork.clustering.run_clustering` fills it (-1 for HDBSCAN, else 0; membership 0)."""
    out = labels.reindex(columns=columns)
    for col in columns:
        if col.endswith("_cluster"):
            fill = -1 if col == METHOD_COLUMNS["hdbscan"] else 0
            out[col] = out[col].fillna(fill).astype(np.int64)
        elif col.endswith("_probability"):
            out[col] = out[col].fillna(0.0).astype(np.float64)
    return out
