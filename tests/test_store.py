"""store.py: one object names the run's relations; the stages create exactly those."""

from __future__ import annotations

from segwork.pipeline import prepare
from segwork.schema import Config
from segwork.store import Store


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
    for name in (store.tx, store.classified, store.kept, store.by_customer):
        assert store.rows(f"SELECT count(*) FROM {name}")[0][0] >= 1, name
    assert store.rows(f"SELECT sum(amount) FROM {store.kept}")[0][0] == 10.5
