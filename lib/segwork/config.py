"""Every default of a run, and the package's own paths, defined once.

The CLI, papermill parameters, notebooks opened on their own and the tests all read these
values; ``tests/test_config.py`` checks that each notebook's ``parameters`` cell matches them.
"""

from __future__ import annotations

import os
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
NOTEBOOKS = ("01_eda", "02_rfm_segments", "03_clusters", "04_compare_and_profile")
METHODS = ("kmeans", "ward", "hdbscan")  # clustering methods, in report order
LANGS = languages()  # every language with a text catalogue (text/<lang>.yaml)

DEFAULT_SEED = 0
DEFAULT_SYNTH_CUSTOMERS = 5_000
DEFAULT_LANG = "ko"
MAX_FIT_SIZE = 20_000  # Ward and HDBSCAN fit on a sample above this many customers
SILHOUETTE_SAMPLE = 10_000  # customers scored for the silhouette
KMEANS_SELECTION_SAMPLE = 50_000  # customers K-Means chooses k on
STABILITY_REPEATS = 3
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
    report: bool = True  # execute the notebooks and write the HTML report
    pseudonymise: bool = False  # report files show keyed hashes instead of customer IDs
    workers: int = WORKERS
    notebooks_dir: str | None = None  # default: the notebooks shipped in the package
    kernel_start_timeout: float = KERNEL_START_TIMEOUT
    notebook_timeout: float = NOTEBOOK_TIMEOUT
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
    "out_dir": None,
}


def parse_as_of(text: str | None) -> date | None:
    """YYYY-MM-DD -> date; anything else is a one-line input error."""
    if text is None or text == "":
        return None
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        raise SegworkInputError(f"--as-of: '{text}' is not a date in YYYY-MM-DD form") from None


def check_params(params: RunParams) -> None:
    """Refuse parameters no run can use, before anything is read or written."""
    if params.lang not in ("ko", "en"):
        raise SegworkInputError(f"--lang: '{params.lang}' is not supported; use ko or en")
    if params.synth_customers < 1:
        raise SegworkInputError(
            f"--synth-customers: {params.synth_customers} customers; give 1 or more"
        )
    if params.engine not in ("duckdb", "spark"):
        raise SegworkInputError(
            f"--engine: '{params.engine}' is not an engine; use duckdb or spark"
        )
    if params.seed < 0:
        raise SegworkInputError(f"--seed: {params.seed} is negative; give 0 or more")
    if not params.lock_timeout >= 0:
        raise SegworkInputError(f"--wait: {params.lock_timeout} seconds; give 0 or more")
    for flag, value in (
        ("--kernel-timeout", params.kernel_start_timeout),
        ("--notebook-timeout", params.notebook_timeout),
    ):
        if not value > 0:
            raise SegworkInputError(f"{flag}: {value:g} seconds; give a positive number")
