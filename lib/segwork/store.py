"""The DuckDB connection of a run and its relations, behind one object with named accessors.

Modules never spell a view name themselves: the reader creates ``store.tx``, the ledger
``store.classified``, ``store.kept`` and ``store.by_customer``; later stages read them by name
through this object (``f"FROM {store.kept}"``).
"""

from __future__ import annotations

import ctypes
import errno
import gc
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from segwork.errors import ResourceError, SegworkInputError

#: The relations a run creates, in the order it creates them.
TX = "tx"  # the canonical, typed transaction lines (read.py)
MATCHED = "tx_matched"  # purchases removed by a matching cancellation (clean.py)
CLASSIFIED = "tx_classified"  # every line with its one ledger reason (clean.py)
KEPT = "tx_kept"  # the lines that count, a view over the source (clean.py)
ORDERS = "tx_orders"  # per reason, customer and order: the one materialised scan (clean.py)
KEPT_ORDERS = "tx_kept_orders"  # the orders that count (clean.py)
BY_CUSTOMER = "cust_reason"  # per customer and reason: rows, revenue, orders, dates (clean.py)
CUST_CODES = "cust_codes"  # customer ID -> row of the RFM table, an INTEGER key (artifacts.py)
CUST_ITEMS = "cust_items"  # kept revenue per customer number and country / product (artifacts.py)
ITEM_CODES = "item_codes"  # the source's (product name, id) pairs -> item code (artifacts.py)
ITEM_NAMES = "item_names"  # kind, item code -> the name the report shows (artifacts.py)
EVENTS = "ev"  # the canonical, typed behaviour events (events.py)
EV_CLASSIFIED = "ev_classified"  # every event with its one ledger reason (events.py)
EV_VISITS = "ev_visits"  # kept events numbered into visits (events.py)
#: Environment variable overriding DuckDB's memory limit (a DuckDB size such as "1.5GB").
MEMORY_LIMIT_ENV = "SEGWORK_MEMORY_LIMIT"
#: Default limit: this share of the machine's memory, capped, so the whole run (DuckDB, pandas,
#: the notebook kernels) stays within a few GB; DuckDB spills to the scratch folder beyond it.
MEMORY_SHARE = 0.25
#: At 50M rows a 4 GiB cap was no faster than 1 GiB and peaked 1.6 GB higher (bench/scale.py).
MEMORY_CAP_MB = 1024
MEMORY_FLOOR_MB = 256
#: DuckDB's limit while Python holds the big frames (clustering, prediction, notebooks): its
#: tables move to the scratch folder, so the whole process tree stays near 2 GB at 1M customers.
IDLE_MEMORY_MB = 256
_UNITS = {"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip


def size_bytes(size: str) -> float | None:
    """Bytes of a DuckDB size such as '1GB' or '976.5 MiB' (None when it is not one)."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]*)\s*", size)
    unit = m.group(2).lower() if m else ""
    return float(m.group(1)) * _UNITS[unit] if m and unit in _UNITS else None


def default_memory_limit() -> str:
    """$SEGWORK_MEMORY_LIMIT, else a quarter of physical memory capped at 1 GiB (floor 256 MiB)."""
    env = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if env:
        return env
    try:
        total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        total_mb = 4096.0
    return f"{int(max(MEMORY_FLOOR_MB, min(MEMORY_CAP_MB, total_mb * MEMORY_SHARE)))}MB"


def connect(
    memory_limit: str | None = None,
    threads: int | None = None,
    scratch: Path | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that spills to ``scratch`` instead of growing past ``memory_limit``.

    With ``scratch`` (a folder segwork created) DuckDB writes its spill files there.
    Insertion order is not preserved: every query that needs an order says ORDER BY.
    """
    limit = memory_limit or default_memory_limit()
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"SET memory_limit = '{limit}'")
    except duckdb.Error as exc:
        raise SegworkInputError(
            f"{MEMORY_LIMIT_ENV}: '{limit}' is not a DuckDB memory size such as 1GB ({exc})"
        ) from None
    con.execute("SET preserve_insertion_order = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if scratch is not None:
        path = str(Path(scratch)).replace("'", "''")
        con.execute(f"SET temp_directory = '{path}'")
    return con


def _close(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    """Close the connection, then remove the scratch folder segwork created for it."""
    try:
        con.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def resource_error(exc: BaseException) -> ResourceError | None:
    """The one-line :class:`ResourceError` for out-of-memory or disk-full, else None."""
    text = " ".join(str(exc).split()).split(" Possible solutions:")[0]
    limit = f" (set {MEMORY_LIMIT_ENV} higher, e.g. 4GB, or free memory)"
    if isinstance(exc, duckdb.OutOfMemoryException):
        return ResourceError(f"out of memory in DuckDB: {text}{limit}")
    if isinstance(exc, MemoryError):
        return ResourceError(f"out of memory: {text or 'MemoryError'}{limit}")
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return ResourceError(f"disk full: {text} (free space in {tempfile.gettempdir()})")
    if isinstance(exc, duckdb.IOException) and "no space left" in text.lower():
        return ResourceError(f"disk full: {text} (free space in {tempfile.gettempdir()})")
    java = re.search(r"java\.lang\.OutOfMemoryError[^\n]*", str(exc))
    if java:  # the Spark engine: the JVM's own out-of-memory, whatever wrapped it
        return ResourceError(
            f"out of memory in Spark: {java.group(0).strip()} (give the driver and executors "
            "more memory: spark.driver.memory, spark.executor.memory)"
        )
    return None


@contextmanager
def resource_guard() -> Iterator[None]:
    """Turn out-of-memory and disk-full errors into one-line :class:`ResourceError` (exit 3)."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - only resource failures are turned; the rest re-raised
        err = resource_error(exc)
        if err is None:
            raise
        raise err from None


@dataclass(frozen=True)
class Store:
    """One run's DuckDB connection and the names of the relations the stages create on it."""

    con: duckdb.DuckDBPyConnection
    tx: str = TX
    matched: str = MATCHED
    classified: str = CLASSIFIED
    kept: str = KEPT
    by_customer: str = BY_CUSTOMER
    orders: str = ORDERS
    kept_orders: str = KEPT_ORDERS
    cust_codes: str = CUST_CODES
    cust_items: str = CUST_ITEMS
    item_codes: str = ITEM_CODES
    item_names: str = ITEM_NAMES
    scratch: Path | None = None
    #: DuckDB's memory limit for the heavy queries (None: the engine is not DuckDB)
    limit: str | None = None
    #: names of the on-demand tables made so far (each is made once per run)
    made: set[str] = field(default_factory=set, compare=False)

    @classmethod
    def open(cls, memory_limit: str | None = None, threads: int | None = None) -> Store:
        """A fresh store on a new in-memory connection with its own scratch folder.

        The folder (spill files, the scratch database) is created here and removed when the
        store is closed or garbage-collected, or when the interpreter exits.
        """
        folder = Path(tempfile.mkdtemp(prefix="segwork-duckdb-"))
        limit = memory_limit or default_memory_limit()
        try:
            con = connect(limit, threads, folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        store = cls(con, scratch=folder, limit=limit)
        weakref.finalize(store, _close, con, folder)
        return store

    def idle(self) -> None:
        """Shrink DuckDB to :data:`IDLE_MEMORY_MB` while Python works (its tables spill to disk).

        The big frames of clustering and prediction and the notebook kernels then have the
        memory DuckDB held for the ledger; :meth:`working` gives it back for heavy queries.
        """
        full = size_bytes(self.limit) if self.limit else None
        if full is not None:
            idle = min(full, IDLE_MEMORY_MB * 2**20)
            self.con.execute(f"SET memory_limit = '{int(idle // 2**20)}MiB'")

    @contextmanager
    def working(self) -> Iterator[None]:
        """DuckDB's full memory limit for the queries inside, then idle again."""
        if self.limit is not None:
            self.con.execute(f"SET memory_limit = '{self.limit}'")
        try:
            yield
        finally:
            self.idle()

    def close(self) -> None:
        """Close the connection and remove the scratch folder (if this store made one)."""
        if self.scratch is not None:
            _close(self.con, self.scratch)
        else:
            self.con.close()

    def rows(self, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
        """All rows of a query (fetchall: DuckDB 2 keeps a result open after fetchone)."""
        return self.con.execute(sql, params or []).fetchall()


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc, its per-thread arenas
    included, and Arrow's allocator keep them otherwise), so the next stage does not stack on
    what the last one left: at 50M rows after prediction 1,708 -> 1,541 MB by the trim,
    -> 1,498 MB by Arrow's release; before the last notebooks 996 -> 808 -> 666 MB."""
    import pyarrow as pa

    gc.collect()
    with suppress(OSError, AttributeError):  # not glibc: nothing to hand back
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    pa.default_memory_pool().release_unused()
