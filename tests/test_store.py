"""store.py: one object names the run's relations; the stages create exactly those."""

from __future__ import annotations

import duckdb
import pytest

from segwork.errors import ResourceError, SegworkInputError
from segwork.pipeline import prepare
from segwork.schema import Config
from segwork.store import (
    IDLE_MEMORY_MB,
    MEMORY_LIMIT_ENV,
    Store,
    default_memory_limit,
    resource_guard,
    size_bytes,
)


def test_open_limits_memory_and_names_the_relations():
    store = Store.open(memory_limit="512MB", threads=1)
    (limit,) = store.rows("SELECT current_setting('memory_limit')")[0]
    assert "MiB" in str(limit) or "MB" in str(limit)
    assert (store.tx, store.kept, store.by_customer) == ("tx", "tx_kept", "cust_reason")


def test_prepare_creates_the_named_relations(tmp_path):
    csv = tmp_path / "o.csv"
    csv.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "1,A,Mug,2,2024-01-02 10:00,3.5,c1,UK\n"
        "2,A,Mug,1,2024-02-02 10:00,3.5,c2,UK\n",
        encoding="utf-8",
    )
    prep = prepare(csv, Config())
    store = prep.store
    for name in (
        store.tx,
        store.classified,
        store.orders,
        store.kept_orders,
        store.kept,
        store.by_customer,
    ):
        assert store.rows(f"SELECT count(*) FROM {name}")[0][0] >= 1, name
    assert store.rows(f"SELECT sum(amount) FROM {store.kept}")[0][0] == 10.5


def test_a_store_spills_into_its_own_scratch_folder_and_removes_it_on_close():
    store = Store.open(memory_limit="256MB")
    folder = store.scratch
    assert folder is not None and folder.is_dir() and folder.name.startswith("segwork-duckdb-")
    (tmp,) = store.rows("SELECT current_setting('temp_directory')")[0]
    assert str(tmp) == str(folder)
    assert store.rows("SELECT current_setting('preserve_insertion_order')")[0][0] is False
    store.close()
    assert not folder.exists()


def test_the_memory_limit_comes_from_the_environment_or_the_machine(monkeypatch):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "300MB")
    assert default_memory_limit() == "300MB"
    monkeypatch.delenv(MEMORY_LIMIT_ENV)
    mb = int(default_memory_limit().removesuffix("MB"))
    assert 256 <= mb <= 1024  # a quarter of this machine, capped at 1 GiB
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(SegworkInputError, match="SEGWORK_MEMORY_LIMIT: 'lots'"):
        Store.open()


def test_out_of_memory_becomes_one_resource_error():
    store = Store.open(memory_limit="16MB", threads=1)
    # a sort that must keep every string in memory at once: it cannot finish in 16 MB
    # (list() results are not spillable)
    sql = "SELECT list(repeat('x', 100) || i::VARCHAR) FROM range(2000000) t(i)"
    with pytest.raises(ResourceError) as info, resource_guard():
        store.rows(sql)
    message = str(info.value)
    assert message.startswith("out of memory in DuckDB") and "\n" not in message
    assert MEMORY_LIMIT_ENV in message
    store.close()


def test_other_errors_pass_through_the_guard():
    with pytest.raises(ZeroDivisionError), resource_guard():
        1 / 0  # noqa: B018


def test_a_spark_out_of_memory_becomes_one_resource_error():
    class Py4JJavaError(Exception):  # what py4j raises, with the JVM's stack trace as text
        pass

    trace = (
        "An error occurred while calling o123.collectToPython.\n"
        ": org.apache.spark.SparkException: Job aborted due to stage failure: ...\n"
        "java.lang.OutOfMemoryError: Java heap space\n\tat org.apache.spark.util.collection..."
    )
    with pytest.raises(ResourceError) as info, resource_guard():
        raise Py4JJavaError(trace)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("out of memory in Spark: java.lang.OutOfMemoryError: Java heap space")
    assert "spark.driver.memory" in msg


def _limit_bytes(store: Store) -> float:
    got = store.rows("SELECT current_setting('memory_limit')")[0][0]
    value = size_bytes(str(got))
    assert value is not None, got
    return value


def test_idle_shrinks_duckdb_and_working_gives_the_full_limit_back():
    store = Store.open(memory_limit="900MB")
    try:
        full = _limit_bytes(store)
        store.idle()
        assert _limit_bytes(store) == pytest.approx(IDLE_MEMORY_MB * 2**20, rel=0.01)
        with store.working():
            assert _limit_bytes(store) == pytest.approx(full, rel=0.01)
        assert _limit_bytes(store) == pytest.approx(IDLE_MEMORY_MB * 2**20, rel=0.01)
    finally:
        store.close()


def test_idle_never_raises_a_limit_below_the_idle_size_and_leaves_foreign_connections_alone():
    small = Store.open(memory_limit="100MB")
    try:
        small.idle()
        assert _limit_bytes(small) == pytest.approx(100e6, rel=0.01)
    finally:
        small.close()
    con = duckdb.connect()
    con.execute("SET memory_limit = '3GB'")
    foreign = Store(con)  # a connection the caller made: its limit is the caller's
    foreign.idle()
    with foreign.working():
        pass
    assert _limit_bytes(foreign) == pytest.approx(3e9, rel=0.05)  # shown as 2.7 GiB
    con.close()


def test_size_bytes_reads_duckdb_sizes():
    assert size_bytes("1GB") == 1e9
    assert size_bytes("976.5 MiB") == 976.5 * 2**20
    assert size_bytes("256MiB") == 256 * 2**20
    assert size_bytes("80%") is None
