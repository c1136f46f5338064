"""The DuckDB connection of a run and its relations, behind one object with named accessors.

Modules never spell a view name themselves: the reader creates ``store.tx``, the ledger
``store.classified``, ``store.kept`` and ``store.by_customer``; later stages read them by name
through this object (``f"FROM {store.kept}"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

#: The relations a run creates, in the order it creates them.
TX = "tx"  # the canonical, typed transaction lines (read.py)
MATCHED = "tx_matched"  # purchases removed by a matching cancellation (clean.py)
CLASSIFIED = "tx_classified"  # every line with its one ledger reason (clean.py)
KEPT = "tx_kept"  # the lines that count (clean.py)
BY_CUSTOMER = "cust_reason"  # per customer and reason: rows, revenue, orders, dates (clean.py)
EVENTS = "ev"  # the canonical, typed behaviour events (events.py)
EV_CLASSIFIED = "ev_classified"  # every event with its one ledger reason (events.py)
EV_VISITS = "ev_visits"  # kept events numbered into visits (events.py)


def connect(memory_limit: str = "2GB", threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that spills to disk instead of growing past ``memory_limit``."""
    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


@dataclass(frozen=True)
class Store:
    """One run's DuckDB connection and the names of the relations the stages create on it."""

    con: duckdb.DuckDBPyConnection
    tx: str = TX
    matched: str = MATCHED
    classified: str = CLASSIFIED
    kept: str = KEPT
    by_customer: str = BY_CUSTOMER

    @classmethod
    def open(cls, memory_limit: str = "2GB", threads: int | None = None) -> Store:
        """A fresh store on a new in-memory connection."""
        return cls(connect(memory_limit, threads))

    def rows(self, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
        """All rows of a query (fetchall: DuckDB 2 keeps a result open after fetchone)."""
        return self.con.execute(sql, params or []).fetchall()
