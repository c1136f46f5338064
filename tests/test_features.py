"""FeatureBuilder / build_features: dtype, NaN and negatives, fitted reuse, scikit-learn conventions."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import (
    check_do_not_raise_errors_in_init_or_set_params,
    check_estimator_cloneable,
    check_estimator_repr,
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
    check_transformers_unfitted,
)

from segwork.errors import SegworkInputError
from segwork.features import FeatureBuilder, build_features


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
    x = build_features(_rfm(), FeatureBuilder(scale="none"))
    assert x[2, 2] == 0.0  # log1p(max(-5, 0))
    np.testing.assert_allclose(x[:, 0], np.log1p([1, 10, 100, 400]))


def test_nan_interpurchase_filled_with_tenure() -> None:
    spec = FeatureBuilder(("mean_interpurchase_days",), transformation="none", scale="none")
    x = build_features(_rfm(), spec)
    assert x[2, 0] == 100.0  # tenure_days of the one-order customer


def test_yeo_johnson_and_robust_accept_negatives() -> None:
    spec = FeatureBuilder(
        columns=["recency_days", "frequency", "monetary", "avg_order_value"],
        transformation="yeo-johnson",
        scale="robust",
    )
    x = build_features(_rfm(), spec)
    assert x.shape == (4, 4) and np.isfinite(x).all()


def test_fitted_builder_reused_on_new_customers() -> None:
    rfm = _rfm()
    builder = FeatureBuilder().fit(rfm)
    np.testing.assert_allclose(builder.transform(rfm.iloc[[1]]), builder.transform(rfm)[[1]])


def test_bad_params_raise_fixable_errors_at_fit_not_init() -> None:
    rfm = _rfm()
    bad = FeatureBuilder(columns=("recency", "frequency"))  # scikit-learn: init never validates
    with pytest.raises(SegworkInputError, match="unknown feature 'recency'"):
        bad.fit(rfm)
    with pytest.raises(SegworkInputError, match="transformation"):
        FeatureBuilder(transformation="log").fit(rfm)
    with pytest.raises(SegworkInputError, match="scale"):
        FeatureBuilder(scale="minmax").fit(rfm)
    with pytest.raises(SegworkInputError, match="not the string 'monetary'"):
        FeatureBuilder(columns="monetary").fit(rfm)
    with pytest.raises(SegworkInputError, match="twice"):
        FeatureBuilder(columns=("monetary", "monetary")).fit(rfm)
    with pytest.raises(SegworkInputError, match="no column 'tenure_days'"):
        build_features(rfm.drop(columns="tenure_days"), FeatureBuilder(columns=("tenure_days",)))
    with pytest.raises(SegworkInputError, match="pandas DataFrame"):
        FeatureBuilder().fit(rfm.to_numpy())


def test_transform_before_fit_raises_not_fitted() -> None:
    builder = FeatureBuilder()
    with pytest.raises(NotFittedError):
        builder.transform(_rfm())
    with pytest.raises(NotFittedError):
        builder.get_feature_names_out()


def test_params_are_stored_verbatim_and_clone_keeps_them() -> None:
    cols = ["recency_days", "monetary"]
    builder = FeatureBuilder(columns=cols, transformation="none", scale="robust")
    assert builder.columns is cols  # verbatim: no copy, no conversion in __init__
    assert builder.get_params() == {
        "columns": cols,
        "transformation": "none",
        "scale": "robust",
    }
    twin = clone(builder)
    assert twin.get_params() == builder.get_params() and twin is not builder


def test_fit_returns_self_and_fitted_state_ends_in_underscore() -> None:
    rfm = _rfm()
    builder = FeatureBuilder(columns=("monetary", "frequency"))
    before = set(vars(builder))
    assert builder.fit(rfm) is builder
    learned = set(vars(builder)) - before
    assert learned and all(a.endswith("_") for a in learned)
    assert list(builder.get_feature_names_out()) == ["monetary", "frequency"]
    assert builder.n_features_in_ == rfm.shape[1]  # the RFM table's width, as scikit-learn means it
    assert list(builder.feature_names_in_) == list(rfm.columns)
    again = pickle.loads(pickle.dumps(builder))
    np.testing.assert_array_equal(again.transform(rfm), builder.transform(rfm))


def test_set_params_changes_the_matrix() -> None:
    rfm = _rfm()
    builder = FeatureBuilder().set_params(scale="none", columns=("recency_days",))
    np.testing.assert_allclose(builder.fit_transform(rfm)[:, 0], np.log1p([1, 10, 100, 400]))


@pytest.mark.parametrize(
    "check",
    [
        check_parameters_default_constructible,
        check_no_attributes_set_in_init,
        check_get_params_invariance,
        check_set_params,
        check_estimator_cloneable,
        check_estimator_repr,
        check_do_not_raise_errors_in_init_or_set_params,
        check_transformers_unfitted,
    ],
    ids=lambda c: c.__name__,
)
def test_sklearn_estimator_checks(check) -> None:
    check(type(FeatureBuilder()).__name__, FeatureBuilder())


def test_visit_features_feed_the_builder_with_nan_filled() -> None:
    table = pd.DataFrame(
        {
            "recency_days": [1, 30, 200, 5],
            "visits": [10, 2, 0, 4],
            "days_to_first_order": [3.0, np.nan, np.nan, 9.0],  # non-buyers have none
        }
    )
    fb = FeatureBuilder(
        columns=("recency_days", "visits", "days_to_first_order"), scale="none"
    ).fit(table)
    x = fb.transform(table)
    assert np.isfinite(x).all()
    # the missing ones take the median learnt at fit, of the log1p'd values
    assert x[1, 2] == pytest.approx((np.log1p(3.0) + np.log1p(9.0)) / 2)
    assert x[0, 1] == pytest.approx(np.log1p(10))
