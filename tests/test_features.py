"""FeatureSpec / build_features: dtype, NaN and negative handling, fitted transform reuse."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segwork.errors import SegworkInputError
from segwork.features import FeatureBuilder, FeatureSpec, build_features


def _rfm() -> pd.DataFrame:
    """Four customers, one refund-heavy (negative monetary), one single-order (NaN gap)."""
    return pd.DataFrame(
        {
            "recency_days": [1, 10, 100, 400],
            "frequency": [10, 3, 1, 2],
            "monetary": [1000.0, 120.0, -5.0, 60.0],
            "tenure_days": [500, 200, 100, 600],
            "avg_order_value": [100.0, 40.0, -5.0, 30.0],
            "mean_interpurchase_days": [50.0, 95.0, np.nan, 200.0],
            "country": ["UK", "UK", "FR", "DE"],
        },
        index=pd.Index(["a", "b", "c", "d"], name="customer_id"),
    )


def test_default_matrix_is_float64_scaled_and_finite() -> None:
    x = build_features(_rfm())
    assert x.shape == (4, 3) and x.dtype == np.float64
    assert np.isfinite(x).all()
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-12)


def test_negative_monetary_clipped_before_log1p() -> None:
    x = build_features(_rfm(), FeatureSpec(scale="none"))
    assert x[2, 2] == 0.0  # log1p(max(-5, 0))
    np.testing.assert_allclose(x[:, 0], np.log1p([1, 10, 100, 400]))


def test_nan_interpurchase_filled_with_tenure() -> None:
    spec = FeatureSpec(features=("mean_interpurchase_days",), transform="none", scale="none")
    x = build_features(_rfm(), spec)
    assert x[2, 0] == 100.0  # tenure_days of the one-order customer


def test_yeo_johnson_and_robust_accept_negatives() -> None:
    spec = FeatureSpec(
        features=("recency_days", "frequency", "monetary", "avg_order_value"),
        transform="yeo-johnson",
        scale="robust",
    )
    x = build_features(_rfm(), spec)
    assert x.shape == (4, 4) and np.isfinite(x).all()


def test_fitted_builder_reused_on_new_customers() -> None:
    rfm = _rfm()
    builder = FeatureBuilder(FeatureSpec()).fit(rfm)
    np.testing.assert_allclose(builder.transform(rfm.iloc[[1]]), builder.transform(rfm)[[1]])


def test_bad_spec_and_missing_column_raise_fixable_errors() -> None:
    with pytest.raises(SegworkInputError, match="unknown feature"):
        FeatureSpec(features=("recency", "frequency"))
    with pytest.raises(SegworkInputError, match="transform"):
        FeatureSpec(transform="log")
    with pytest.raises(SegworkInputError, match="no column 'tenure_days'"):
        build_features(_rfm().drop(columns="tenure_days"), FeatureSpec(features=("tenure_days",)))
