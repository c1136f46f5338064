"""Which engine runs the heavy stages: DuckDB on this machine (default) or a Spark session.

Both run the same definitions (the SQL in :mod:`segwork.read`, :mod:`segwork.clean` and
:mod:`segwork.rfm`); the Spark engine replays it through :mod:`segwork.spark`. ``--engine`` is
the only switch a user touches; the Spark master comes from $SEGWORK_SPARK_MASTER.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from segwork.errors import SegworkInputError
from segwork.read import SourceInfo, open_source
from segwork.store import Store

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

    from segwork.schema import Config

ENGINES = ("duckdb", "spark")
DEFAULT_ENGINE = "duckdb"


def check_engine(name: str) -> str:
    """The engine's name, or a one-line error naming the flag and the choices."""
    if name not in ENGINES:
        raise SegworkInputError(f"--engine: '{name}' is not an engine; use {' or '.join(ENGINES)}")
    return name


def data_location(engine: str, data: str) -> str | Path:
    """A local path as Path; with Spark a URL (hdfs://, s3a://) stays a string."""
    return data if engine == "spark" and "://" in data else Path(data)


def open_store(
    engine: str,
    path: str | Path,
    cfg: Config,
    con: duckdb.DuckDBPyConnection | None = None,
) -> tuple[Store, SourceInfo]:
    """A store on the chosen engine with the canonical ``tx`` view opened over ``path``."""
    if check_engine(engine) == "spark":
        from segwork.sparkread import open_store as open_spark

        return open_spark(str(path), cfg)
    store = Store(con) if con is not None else Store.open()
    return store, open_source(Path(path), cfg, store.con)
