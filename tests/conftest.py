"""Shared fixtures: the real UCI data (fail, not skip, when CI asks for it) and small frames."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")


def _uci_dir() -> Path | None:
    raw = os.environ.get("SEGWORK_UCI_DIR", "").strip()
    return Path(raw) if raw else None


@pytest.fixture(scope="session")
def uci_dir() -> Path:
    """Folder with online_retail.parquet / .csv.gz; skip only when nobody asked for it."""
    d = _uci_dir()
    if d is None:
        if os.environ.get("SEGWORK_REQUIRE_UCI"):
            pytest.fail("SEGWORK_REQUIRE_UCI is set but SEGWORK_UCI_DIR is not")
        pytest.skip("SEGWORK_UCI_DIR not set: real-data tests skipped")
    if not (d / "online_retail.parquet").is_file():
        pytest.fail(f"SEGWORK_UCI_DIR={d} but {d / 'online_retail.parquet'} is missing")
    return d


@pytest.fixture(scope="session")
def uci_parquet(uci_dir: Path) -> Path:
    """The UCI Online Retail Parquet file."""
    return uci_dir / "online_retail.parquet"
