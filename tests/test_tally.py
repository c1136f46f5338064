"""tally.py: contingency tables and the adjusted Rand index equal pandas' and sklearn's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from segwork.tally import adjusted_rand, crosstab


def _labels(rng: np.random.Generator, n: int, k: int, kind: str) -> np.ndarray:
    """n labels among k values: ints with noise (-1), or segment-like strings."""
    ints = rng.integers(-1, k - 1, size=n)
    if kind == "int":
        return ints
    return np.array([f"seg_{v + 1:02d}" for v in ints], dtype=object)


@pytest.mark.parametrize("seed", range(12))
def test_adjusted_rand_equals_sklearn_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 3000))
    a = _labels(rng, n, int(rng.integers(1, 9)), "int")
    b = _labels(rng, n, int(rng.integers(1, 12)), "str" if seed % 2 else "int")
    if seed % 3 == 0:  # related labelings, not only independent ones
        b = np.where(rng.random(n) < 0.7, a, b if b.dtype != object else a)
    assert adjusted_rand(a, b) == adjusted_rand_score(a, b)
    assert adjusted_rand(b, a) == adjusted_rand_score(b, a)


def test_adjusted_rand_special_cases_match_sklearn() -> None:
    same = np.array([3, 3, 1, 1, 2])
    cases = [
        (same, same),  # identical: 1.0
        (np.zeros(6, int), np.zeros(6, int)),  # one cluster each
        (np.arange(6), np.arange(6)),  # every point alone
        (np.zeros(6, int), np.arange(6)),  # one cluster against singletons: 0.0
        (np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])),  # discordant: -0.5
        (np.array([5]), np.array([7])),
    ]
    for a, b in cases:
        assert adjusted_rand(a, b) == adjusted_rand_score(a, b)
    assert adjusted_rand(np.array([], int), np.array([], int)) == 1.0
    with pytest.raises(ValueError, match="one length"):
        adjusted_rand(np.zeros(3), np.zeros(4))


@pytest.mark.parametrize("seed", range(8))
def test_crosstab_equals_pandas(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 2000))
    idx = pd.Index([f"c{i}" for i in range(n)], name="customer_id")
    a = pd.Series(_labels(rng, n, 6, "int"), index=idx, name="kmeans_cluster")
    b = pd.Series(_labels(rng, n, 10, "str"), index=idx, name="rfm_segment_id")
    if seed % 2:
        b = b.astype("str")  # pandas' string dtype, as Parquet reads it back
    pd.testing.assert_frame_equal(crosstab(a, b), pd.crosstab(a, b))
    pd.testing.assert_frame_equal(crosstab(b, a), pd.crosstab(b, a))


def test_crosstab_hands_missing_and_categorical_labels_to_pandas() -> None:
    a = pd.Series([1, 2, None, 2], name="a")
    b = pd.Series(["x", "y", "y", None], name="b")
    pd.testing.assert_frame_equal(crosstab(a, b), pd.crosstab(a, b))
    cat = pd.Series(pd.Categorical(["x", "x"], categories=["x", "y"]), name="c")
    pd.testing.assert_frame_equal(crosstab(cat, a.iloc[:2]), pd.crosstab(cat, a.iloc[:2]))


def test_adjusted_rand_of_codes_is_adjusted_rand_on_coded_labels() -> None:
    from segwork.tally import adjusted_rand_of_codes, codes

    rng = np.random.default_rng(5)
    a, b = _labels(rng, 700, 5, "int"), _labels(rng, 700, 9, "str")
    (ca, ua), (cb, ub) = codes(a), codes(b)
    assert adjusted_rand_of_codes(ca, len(ua), cb, len(ub)) == adjusted_rand_score(a, b)
