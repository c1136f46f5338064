"""Turn the RFM table into the one numeric matrix every clustering method sees.

Handling of awkward values (documented here once, applied everywhere):

* ``monetary`` / ``avg_order_value`` <= 0 (refund-heavy customers): clipped at 0 before
  ``log1p`` (log of a negative is undefined); kept as-is for ``"yeo-johnson"`` (defined for
  negatives) and ``"none"``.
* ``mean_interpurchase_days`` is NaN for one-order customers: filled with the customer's
  ``tenure_days`` (they have gone at least that long without a second order), falling back to
  ``recency_days`` when tenure is missing too.
* Any other NaN left after that is filled with the column median learnt at ``fit`` time (0 if the
  whole column is NaN), so a matrix with NaN never reaches a clustering algorithm.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.preprocessing import PowerTransformer, RobustScaler, StandardScaler
from sklearn.utils.validation import check_is_fitted

from segwork import visitbasis
from segwork.errors import SegworkInputError

DEFAULT_FEATURES = ("recency_days", "frequency", "monetary")
OPTIONAL_FEATURES = ("tenure_days", "avg_order_value", "mean_interpurchase_days")
#: Present when a run has events (segwork.visitbasis); NaN (no visit, no order) gets the median.
#: ``orders`` is left out: it is frequency again on the orders basis.
VISIT_FEATURES = tuple(c for c in visitbasis.VISIT_FEATURES if c != "orders")
ALLOWED_FEATURES = DEFAULT_FEATURES + OPTIONAL_FEATURES + VISIT_FEATURES
_CLIP_AT_ZERO = ("monetary", "avg_order_value")
_TRANSFORMS = ("log1p", "yeo-johnson", "none")
_SCALES = ("standard", "robust", "none")


def check_feature_params(
    columns: Sequence[str], transformation: str, scale: str
) -> tuple[str, ...]:
    """Reject unknown columns, transforms and scalers with a fixable message; the columns as a tuple."""
    if isinstance(columns, str):
        raise SegworkInputError(
            f"FeatureBuilder.columns must be a list of column names, not the string {columns!r}"
        )
    cols = tuple(columns)
    if not cols:
        raise SegworkInputError("FeatureBuilder.columns must name at least one column")
    unknown = [c for c in cols if c not in ALLOWED_FEATURES]
    if unknown:
        raise SegworkInputError(
            f"FeatureBuilder: unknown feature '{unknown[0]}'; allowed: {', '.join(ALLOWED_FEATURES)}"
        )
    if len(set(cols)) != len(cols):
        raise SegworkInputError("FeatureBuilder.columns lists a column twice")
    if transformation not in _TRANSFORMS:
        raise SegworkInputError(
            f"FeatureBuilder.transformation must be one of {', '.join(_TRANSFORMS)}, "
            f"not {transformation!r}"
        )
    if scale not in _SCALES:
        raise SegworkInputError(
            f"FeatureBuilder.scale must be one of {', '.join(_SCALES)}, not {scale!r}"
        )
    return cols


def raw_feature_frame(rfm: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Select ``columns`` as float64 with the documented NaN fill (no transform yet)."""
    missing = [c for c in columns if c not in rfm.columns]
    if missing:
        raise SegworkInputError(
            f"RFM table has no column '{missing[0]}' needed by the features "
            f"(columns present: {', '.join(map(str, rfm.columns))})"
        )
    out = pd.DataFrame(index=rfm.index)
    for col in columns:
        values = pd.to_numeric(rfm[col], errors="coerce").astype("float64")
        if col == "mean_interpurchase_days":
            values = values.fillna(_tenure_fallback(rfm))
        out[col] = values
    return out


def _tenure_fallback(rfm: pd.DataFrame) -> pd.Series:
    """Tenure (else recency) per customer: the fill for a one-order customer's interpurchase gap."""
    for col in ("tenure_days", "recency_days"):
        if col in rfm.columns:
            return pd.to_numeric(rfm[col], errors="coerce").astype("float64")
    return pd.Series(np.nan, index=rfm.index)


class FeatureBuilder(TransformerMixin, BaseEstimator):
    """scikit-learn transformer: RFM table -> float64 matrix (fill, transform, scale).

    ``columns``: which RFM columns feed clustering (any of :data:`ALLOWED_FEATURES`);
    ``transformation``: ``"log1p"``, ``"yeo-johnson"`` or ``"none"`` (not ``transform``, which
    is the method); ``scale``: ``"standard"``, ``"robust"`` or ``"none"``. They are plain
    estimator parameters, so ``clone``, ``set_params(features__transformation=...)`` on a
    segmenter and parameter grids work; they are checked at ``fit`` (scikit-learn's
    convention), with a :class:`SegworkInputError`.
    """

    def __init__(
        self,
        columns: Sequence[str] = DEFAULT_FEATURES,
        transformation: str = "log1p",
        scale: str = "standard",
    ) -> None:
        self.columns = columns
        self.transformation = transformation
        self.scale = scale

    def _pre(self, rfm: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
        """Fill, clip and apply the stateless part (log1p) of the transform."""
        if not isinstance(rfm, pd.DataFrame):
            raise SegworkInputError(
                f"FeatureBuilder expects the RFM table (a pandas DataFrame), not {type(rfm).__name__}"
            )
        frame = raw_feature_frame(rfm, columns)
        if self.transformation == "log1p":
            for col in _CLIP_AT_ZERO:
                if col in frame.columns:
                    frame[col] = frame[col].clip(lower=0.0)
            # recency/tenure/frequency are >= 0 by contract; clip guards bad rows anyway.
            frame = frame.clip(lower=0.0)
        x = frame.to_numpy(dtype=np.float64, copy=True)
        if self.transformation == "log1p":
            np.log1p(x, out=x)
        return x

    def fit(self, rfm: pd.DataFrame, y: object = None) -> FeatureBuilder:
        """Learn fill medians, the Yeo-Johnson lambdas and the scaler from the RFM table."""
        columns = check_feature_params(self.columns, self.transformation, self.scale)
        x = self._pre(rfm, columns)
        with np.errstate(all="ignore"):
            med = np.nanmedian(x, axis=0) if len(x) else np.zeros(x.shape[1])
        self.fill_values_ = np.where(np.isfinite(med), med, 0.0)
        x = self._fill(x)
        self.power_ = None
        if self.transformation == "yeo-johnson" and len(x) > 1:
            self.power_ = PowerTransformer(method="yeo-johnson", standardize=False).fit(x)
            x = self.power_.transform(x)
        self.scaler_ = None
        if self.scale != "none" and len(x) > 0:
            scaler = StandardScaler() if self.scale == "standard" else RobustScaler()
            self.scaler_ = scaler.fit(x)
        self.feature_names_out_ = np.asarray(columns, dtype=object)
        self.n_features_in_ = rfm.shape[1]
        self.feature_names_in_ = np.asarray(rfm.columns.map(str), dtype=object)
        return self

    def _fill(self, x: np.ndarray) -> np.ndarray:
        """Replace leftover NaN/inf with the fitted column medians."""
        bad = ~np.isfinite(x)
        if bad.any():
            x[bad] = np.take(self.fill_values_, np.nonzero(bad)[1])
        return x

    def transform(self, rfm: pd.DataFrame) -> np.ndarray:
        """Apply the fitted fill/transform/scale to (possibly new) customers."""
        check_is_fitted(self)
        x = self._fill(self._pre(rfm, tuple(self.feature_names_out_)))
        if self.power_ is not None:
            x = self.power_.transform(x)
        if self.scaler_ is not None:
            x = self.scaler_.transform(x)
        return np.ascontiguousarray(x, dtype=np.float64)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Output column names (the fitted ``columns``, in order)."""
        check_is_fitted(self)
        return self.feature_names_out_.copy()


def build_features(rfm: pd.DataFrame, features: FeatureBuilder | None = None) -> np.ndarray:
    """Fit-and-transform in one call: the float64 matrix all methods cluster on."""
    return clone(features if features is not None else FeatureBuilder()).fit_transform(rfm)
