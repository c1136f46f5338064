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

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import PowerTransformer, RobustScaler, StandardScaler

from segwork.errors import SegworkInputError

DEFAULT_FEATURES = ("recency_days", "frequency", "monetary")
OPTIONAL_FEATURES = ("tenure_days", "avg_order_value", "mean_interpurchase_days")
ALLOWED_FEATURES = DEFAULT_FEATURES + OPTIONAL_FEATURES
_CLIP_AT_ZERO = ("monetary", "avg_order_value")
_TRANSFORMS = ("log1p", "yeo-johnson", "none")
_SCALES = ("standard", "robust", "none")


@dataclass(frozen=True)
class FeatureSpec:
    """Which RFM columns feed clustering and how they are transformed and scaled."""

    features: tuple[str, ...] = DEFAULT_FEATURES
    transform: Literal["log1p", "yeo-johnson", "none"] = "log1p"
    scale: Literal["standard", "robust", "none"] = "standard"

    def __post_init__(self) -> None:
        """Reject unknown features, transforms and scalers early with a fixable message."""
        feats = tuple(self.features)
        object.__setattr__(self, "features", feats)
        if not feats:
            raise SegworkInputError("FeatureSpec.features must name at least one column")
        unknown = [f for f in feats if f not in ALLOWED_FEATURES]
        if unknown:
            raise SegworkInputError(
                f"FeatureSpec: unknown feature '{unknown[0]}'; allowed: {', '.join(ALLOWED_FEATURES)}"
            )
        if len(set(feats)) != len(feats):
            raise SegworkInputError("FeatureSpec.features lists a column twice")
        if self.transform not in _TRANSFORMS:
            raise SegworkInputError(
                f"FeatureSpec.transform must be one of {', '.join(_TRANSFORMS)}, not {self.transform!r}"
            )
        if self.scale not in _SCALES:
            raise SegworkInputError(
                f"FeatureSpec.scale must be one of {', '.join(_SCALES)}, not {self.scale!r}"
            )


def raw_feature_frame(rfm: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Select the spec's columns as float64 with the documented NaN fill (no transform yet)."""
    missing = [c for c in spec.features if c not in rfm.columns]
    if missing:
        raise SegworkInputError(
            f"RFM table has no column '{missing[0]}' needed by the feature spec "
            f"(columns present: {', '.join(map(str, rfm.columns))})"
        )
    out = pd.DataFrame(index=rfm.index)
    for col in spec.features:
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
    """scikit-learn transformer: RFM table -> float64 matrix (fill, transform, scale)."""

    def __init__(self, spec: FeatureSpec | None = None) -> None:
        self.spec = spec

    def _spec(self) -> FeatureSpec:
        """The spec in force (defaults when none was given)."""
        return self.spec if self.spec is not None else FeatureSpec()

    def _pre(self, rfm: pd.DataFrame) -> np.ndarray:
        """Fill, clip and apply the stateless part (log1p) of the transform."""
        spec = self._spec()
        frame = raw_feature_frame(rfm, spec)
        if spec.transform == "log1p":
            for col in _CLIP_AT_ZERO:
                if col in frame.columns:
                    frame[col] = frame[col].clip(lower=0.0)
            # recency/tenure/frequency are >= 0 by contract; clip guards bad rows anyway.
            frame = frame.clip(lower=0.0)
        x = frame.to_numpy(dtype=np.float64, copy=True)
        if spec.transform == "log1p":
            np.log1p(x, out=x)
        return x

    def fit(self, rfm: pd.DataFrame, y: object = None) -> FeatureBuilder:
        """Learn fill medians, the Yeo-Johnson lambdas and the scaler from the RFM table."""
        spec = self._spec()
        x = self._pre(rfm)
        with np.errstate(all="ignore"):
            med = np.nanmedian(x, axis=0) if len(x) else np.zeros(x.shape[1])
        self.fill_values_ = np.where(np.isfinite(med), med, 0.0)
        x = self._fill(x)
        self.power_ = None
        if spec.transform == "yeo-johnson" and len(x) > 1:
            self.power_ = PowerTransformer(method="yeo-johnson", standardize=False).fit(x)
            x = self.power_.transform(x)
        self.scaler_ = None
        if spec.scale != "none" and len(x) > 0:
            scaler = StandardScaler() if spec.scale == "standard" else RobustScaler()
            self.scaler_ = scaler.fit(x)
        self.feature_names_out_ = np.asarray(spec.features, dtype=object)
        self.n_features_in_ = len(spec.features)
        return self

    def _fill(self, x: np.ndarray) -> np.ndarray:
        """Replace leftover NaN/inf with the fitted column medians."""
        bad = ~np.isfinite(x)
        if bad.any():
            x[bad] = np.take(self.fill_values_, np.nonzero(bad)[1])
        return x

    def transform(self, rfm: pd.DataFrame) -> np.ndarray:
        """Apply the fitted fill/transform/scale to (possibly new) customers."""
        x = self._fill(self._pre(rfm))
        if self.power_ is not None:
            x = self.power_.transform(x)
        if self.scaler_ is not None:
            x = self.scaler_.transform(x)
        return np.ascontiguousarray(x, dtype=np.float64)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Output column names (the spec's features, in order)."""
        return self.feature_names_out_


def build_features(rfm: pd.DataFrame, spec: FeatureSpec | None = None) -> np.ndarray:
    """Fit-and-transform in one call: the float64 matrix all methods cluster on."""
    return FeatureBuilder(spec).fit_transform(rfm)
