"""Every default of a run, and the package's own paths, defined once.

The CLI, papermill parameters, notebooks opened on their own and the tests all read these
values; ``tests/test_config.py`` checks that each notebook's ``parameters`` cell matches them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from segwork.errors import SegworkInputError
from segwork.text import languages

PACKAGE = Path(__file__).resolve().parent
NOTEBOOKS_DIR = PACKAGE / "notebooks"  # the report notebooks ship inside the package
TEMPLATES_DIR = PACKAGE / "templates"
MAPS_DIR = PACKAGE / "maps"
KERNEL = "segwork"  # the Jupyter kernel `make install` registers
NOTEBOOKS = ("01_eda", "02_rfm_segments", "03_clusters", "04_compare_and_profile", "05_movement")
METHODS = ("kmeans", "ward", "hdbscan", "gmm")  # clustering methods, in report order
LANGS = languages()  # every language with a text catalogue (text/<lang>.yaml)

DEFAULT_SEED = 0
DEFAULT_SYNTH_CUSTOMERS = 5_000
DEFAULT_LANG = "ko"
SYNTHETIC_EVENTS = "synthetic"  # --events value naming the synthetic shop's events file
MAX_FIT_SIZE = 20_000  # Ward and HDBSCAN fit on a sample above this many customers
SILHOUETTE_SAMPLE = 10_000  # customers scored for the silhouette
KMEANS_SELECTION_SAMPLE = 50_000  # customers K-Means chooses k on
STABILITY_REPEATS = 3
# Choosing k for use (issue 15; the rule is documented in segwork.segmenters.choose_k).
K_RANGE = (3, 8)  # k is chosen in this range (inclusive): a split a campaign can use
CURVE_MIN_K = 2  # curves are scored from this k, so the report can say when k = 2 fits best
MIN_SHARE = 0.02  # no chosen cluster may hold fewer customers than this share
STABILITY_FLOOR = 0.75  # bootstrap ARI a k needs to count as stable
SILHOUETTE_TIE = 0.01  # silhouettes this close to the best count as a tie (the stabler k wins)
K2_MARGIN = 0.03  # silhouette by which k = 2 must beat every k in range to be noted
BIC_MARGIN = 10.0  # BIC difference counted as clear (Kass & Raftery: "very strong")
SELECTION_STABILITY_SAMPLE = 4_000  # customers the per-k bootstrap refits draw from
# HDBSCAN's verdict: the best grid point's DBCV below this means no clear density structure
# (uniform noise reaches ~0.10 on this grid, four separated blobs ~0.58).
DBCV_THRESHOLD = 0.25
HDBSCAN_MAX_NOISE = 0.3  # grid points leaving more customers than this as outliers rank last
PUBLISHED_GMM_SILHOUETTE = 0.80  # John, Shobayo & Ogunleye (2023), GMM on RFM of this data set
STABILITY_POOL = 20_000
LOCK_TIMEOUT = 600.0  # seconds a run waits for another run writing the same OUT
KERNEL_START_TIMEOUT = 60.0  # seconds for a notebook's kernel to start (retried once)
NOTEBOOK_TIMEOUT = 900.0  # seconds for one notebook, start to HTML; then it is killed
WORKERS = 2  # notebooks executed at the same time


def cache_dir() -> Path:
    """Where notebooks opened on their own cache artefacts: $SEGWORK_CACHE or ~/.cache/segwork."""
    env = os.environ.get("SEGWORK_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "segwork"


@dataclass(frozen=True)
class RunParams:
    """What the CLI, papermill and tests pass to a run; plain values only."""

    data_path: str | None = None
    config_path: str | None = None
    as_of: str | None = None  # YYYY-MM-DD
    out_dir: str | None = None  # default reports/<YYYY-MM of as-of>/
    lock_timeout: float = LOCK_TIMEOUT
    lang: str = DEFAULT_LANG
    seed: int = DEFAULT_SEED
    synth_customers: int = DEFAULT_SYNTH_CUSTOMERS
    data_cache: str = "data/synthetic"  # relative to the working folder
    reports_root: str = "reports"
    max_fit_size: int = MAX_FIT_SIZE
    silhouette_sample: int = SILHOUETTE_SAMPLE
    stability_repeats: int = STABILITY_REPEATS
    clusters: bool = True
    predict: bool = True  # back-tested purchase predictions (p_purchase, expected orders/revenue)
    report: bool = True  # execute the notebooks and write the HTML report
    pseudonymise: bool = False  # report files show keyed hashes instead of customer IDs
    workers: int = WORKERS
    notebooks_dir: str | None = None  # default: the notebooks shipped in the package
    kernel_start_timeout: float = KERNEL_START_TIMEOUT
    notebook_timeout: float = NOTEBOOK_TIMEOUT
    compare_to: str | None = None  # YYYY-MM-DD: segment migration since this date
    auto_compare: bool = True  # compare with the latest earlier month under reports_root
    k: int | None = None  # a fixed number of clusters; None: config cluster.k, else chosen
    k_range: tuple[int, int] | None = None  # range k is chosen in; None: config cluster.k_range
    events_path: str | None = None  # behaviour events (--events); "synthetic": the shop's own
    engine: str = "duckdb"  # or "spark": the heavy stages on $SEGWORK_SPARK_MASTER


#: The parameters cell of every report notebook: name -> default (checked by a test).
NOTEBOOK_PARAMETERS: dict[str, object] = {
    "data_path": None,
    "config_path": None,
    "as_of": None,
    "lang": DEFAULT_LANG,
    "seed": DEFAULT_SEED,
    "synth_customers": DEFAULT_SYNTH_CUSTOMERS,
    "max_fit_size": MAX_FIT_SIZE,
    "silhouette_sample": SILHOUETTE_SAMPLE,
    "k": None,
    "k_range": None,
    "out_dir": None,
}


def parse_as_of(text: str | None, flag: str = "--as-of") -> date | None:
    """YYYY-MM-DD -> date; anything else is a one-line input error."""
    if text is None or text == "":
        return None
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        raise SegworkInputError(f"{flag}: '{text}' is not a date in YYYY-MM-DD form") from None


def parse_k_range(text: str | None) -> tuple[int, int] | None:
    """'3-8' -> (3, 8); anything else is a one-line input error."""
    if text is None or text == "":
        return None
    lo, sep, hi = str(text).partition("-")
    if not sep or not lo.strip().isdigit() or not hi.strip().isdigit():
        raise SegworkInputError(f"--k-range: '{text}' is not a range like 3-8")
    return int(lo), int(hi)


def check_k(
    k: int | None, k_range: Sequence[int] | None, names: tuple[str, str] = ("--k", "--k-range")
) -> None:
    """Refuse a fixed k below 2 and a k range that is empty, reversed or starts below 2."""
    if k is not None and k < 2:
        raise SegworkInputError(f"{names[0]}: {k} clusters; give 2 or more")
    if k_range is not None:
        if len(k_range) != 2:
            raise SegworkInputError(
                f"{names[1]}: {list(k_range)}; give two numbers, low and high, e.g. [3, 8]"
            )
        lo, hi = k_range
        if not 2 <= lo <= hi:
            raise SegworkInputError(f"{names[1]}: {lo}-{hi}; give 2 <= low <= high, e.g. 3-8")


def check_params(params: RunParams) -> None:
    """Refuse parameters no run can use, before anything is read or written."""
    if params.lang not in ("ko", "en"):
        raise SegworkInputError(f"--lang: '{params.lang}' is not supported; use ko or en")
    if params.synth_customers < 1:
        raise SegworkInputError(
            f"--synth-customers: {params.synth_customers} customers; give 1 or more"
        )
    check_k(params.k, params.k_range)
    if params.engine not in ("duckdb", "spark"):
        raise SegworkInputError(
            f"--engine: '{params.engine}' is not an engine; use duckdb or spark"
        )
    if params.seed < 0:
        raise SegworkInputError(f"--seed: {params.seed} is negative; give 0 or more")
    if params.compare_to:
        parse_as_of(params.compare_to, "--compare-to")
    if not params.lock_timeout >= 0:
        raise SegworkInputError(f"--wait: {params.lock_timeout} seconds; give 0 or more")
    for flag, value in (
        ("--kernel-timeout", params.kernel_start_timeout),
        ("--notebook-timeout", params.notebook_timeout),
    ):
        if not value > 0:
            raise SegworkInputError(f"{flag}: {value:g} seconds; give a positive number")
