"""Behaviour events: reading, the events ledger, visits, non-buyers and the RFM basis."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from segwork import events
from segwork.errors import SegworkInputError
from segwork.pipeline import prepare
from segwork.schema import Config, EventOptions, config_from_dict
from segwork.store import EV_VISITS

NOW = dt.datetime(2024, 6, 1, 12, 0)
TX = (
    "invoice_id,customer_id,invoice_date,quantity,unit_price,product_id\n"
    "1,00012,2024-03-01 10:00,1,10.0,A1\n"
    "2,00012,2024-03-10 11:00,2,10.0,A1\n"
    "3,777,2024-03-05 09:00,1,5.0,A2\n"
)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _events(
    path: Path, rows: list[tuple[str, ...]], header: str = "customer_id,timestamp,event_type"
) -> Path:
    return _write(path, header + "\n" + "\n".join(",".join(r) for r in rows) + "\n")


def _run(tmp_path: Path, rows: list[tuple[str, ...]], cfg: Config | None = None, **kw):
    tx = _write(tmp_path / "tx.csv", TX)
    ev = _events(tmp_path / "ev.csv", rows)
    return prepare(tx, cfg or Config(), events_path=ev, **kw)


def _visits(con: duckdb.DuckDBPyConnection) -> dict[str, list[int]]:
    rows = con.execute(
        f"SELECT customer_id, visit_no FROM {EV_VISITS} ORDER BY customer_id, ts"
    ).fetchall()
    out: dict[str, list[int]] = {}
    for cust, n in rows:
        out.setdefault(cust, []).append(int(n))
    return out


# --------------------------------------------------------------------------- visits


def test_sessionisation_by_gap_on_a_hand_built_case(tmp_path):
    rows = [
        ("A", "2024-03-01 09:00", "visit"),
        ("A", "2024-03-01 09:30", "view"),  # exactly 30 minutes: same visit
        ("A", "2024-03-01 10:00:01", "view"),  # 30 min 1 s after the previous: new visit
        ("A", "2024-03-01 10:20", "cart"),
        ("A", "2024-03-03 08:00", "visit"),  # another day: new visit
        ("B", "2024-03-01 09:10", "visit"),  # another customer at the same time: own visits
        ("B", "2024-03-01 09:05", "view"),  # out of order in the file: sorted by time
    ]
    prep = _run(tmp_path, rows, as_of=dt.date(2024, 4, 1))
    assert _visits(prep.con) == {"A": [1, 1, 2, 2, 3], "B": [1, 1]}
    assert prep.events.ledger.visits == 4
    assert prep.table.loc["A", "visits"] == 3 and prep.table.loc["B", "visits"] == 1


def test_session_gap_is_configurable(tmp_path):
    rows = [("A", "2024-03-01 09:00", "visit"), ("A", "2024-03-01 09:20", "view")]
    cfg = config_from_dict({"events": {"session_gap_minutes": 10}})
    prep = _run(tmp_path, rows, cfg, as_of=dt.date(2024, 4, 1))
    assert _visits(prep.con) == {"A": [1, 2]}


def test_session_id_decides_visits_when_present(tmp_path):
    tx = _write(tmp_path / "tx.csv", TX)
    ev = _events(
        tmp_path / "ev.csv",
        [
            ("A", "2024-03-01 09:00", "s1"),
            ("A", "2024-03-01 13:00", "s1"),  # hours later, same session id: same visit
            ("A", "2024-03-01 13:01", "s2"),  # a minute later, new session id: new visit
        ],
        header="customer_id,timestamp,session_id",
    )
    prep = prepare(tx, Config(), as_of=dt.date(2024, 4, 1), events_path=ev)
    assert _visits(prep.con) == {"A": [1, 1, 2]}
    assert prep.events.source.mapping == {
        "customer_id": "customer_id",
        "timestamp": "timestamp",
        "session_id": "session_id",
    }


# --------------------------------------------------------------------------- ledger


def test_events_ledger_drops_bad_rows_for_one_reason_each(tmp_path):
    bot = [("BOT", f"2024-03-02 10:{i % 60:02d}:{i // 60:02d}", "view") for i in range(120)]
    rows = [
        ("00012", "2024-03-01 09:40", "visit"),
        ("888", "2024-03-02 10:00", "visit"),
        ("888", "2024-03-02 10:05", "장바구니"),
        ("888", "2024-03-02 10:05", "장바구니"),  # exact copy: duplicate
        ("", "2024-03-02 10:05", "visit"),  # no customer
        ("NA", "2024-03-02 10:05", "visit"),  # NA marker: no customer
        ("888", "not a date", "visit"),  # unparseable time
        ("888", "", "visit"),  # empty time
        ("888", "2030-01-01 10:00", "visit"),  # in the future (after NOW)
        ("888", "2024-05-01 10:00", "visit"),  # after the as-of date
        ("999", "2024-03-25 10:00", "wishlist"),  # unknown type: kept as other, warned
        *bot,  # 120 events on one day: above 100 per active day -> bot
    ]
    cfg = config_from_dict({"events": {"max_events_per_day": 100}})
    prep = _run(tmp_path, rows, cfg, as_of=dt.date(2024, 4, 1), now=NOW)
    led = prep.events.ledger
    assert led.rows_in == len(rows)
    assert led.dropped == {
        "missing_customer": 2,
        "missing_timestamp": 2,
        "in_future": 1,
        "after_as_of": 1,
        "duplicate": 1,
        "bot": 120,
    }
    assert led.rows_kept == 4 and led.kept_by_type == {"cart": 1, "other": 1, "visit": 2}
    assert led.bot_customers == 1 and led.customers_kept == 3
    led.check()  # reconciles: kept + dropped == read
    assert "BOT" not in prep.table.index
    codes = {w[0]: w[2] for w in prep.warnings}
    assert codes["unmapped_event_types"]["values"] == ["wishlist"]
    assert codes["event_bots"]["customers"] == 1 and codes["event_bots"]["rows"] == 120


def test_ledger_check_catches_a_lost_row():
    led = events.EventsLedger(
        rows_in=5, rows_kept=3, dropped={"duplicate": 1}, kept_by_type={"visit": 3}
    )
    with pytest.raises(AssertionError, match="4 rows accounted, 5 read"):
        led.check()


def test_events_ledger_in_summary_dict_keeps_rule_order(tmp_path):
    rows = [
        ("888", "2030-01-01 10:00", "visit"),
        ("", "2024-03-02", "visit"),
        ("1", "2024-03-02", "visit"),
    ]
    prep = _run(tmp_path, rows, as_of=dt.date(2024, 4, 1), now=NOW)
    assert list(prep.events.ledger.as_dict()["dropped"]) == ["missing_customer", "in_future"]


# --------------------------------------------------------------------------- customers and basis


def test_non_buyers_are_kept_with_monetary_zero(tmp_path):
    rows = [
        ("00012", "2024-03-01 09:40", "visit"),
        ("888", "2024-03-02 10:00", "visit"),
        ("888", "2024-03-12 10:00", "view"),
    ]
    prep = _run(tmp_path, rows, as_of=dt.date(2024, 4, 1))
    t = prep.table
    assert set(t.index) == {"00012", "777", "888"}  # buyers with and without events, non-buyer
    assert t.loc["888", "monetary"] == 0.0 and t.loc["888", "orders"] == 0
    assert t.loc["00012", "orders"] == 2 and t.loc["00012", "monetary"] == 30.0
    assert t.loc["777", "visits"] == 0 and t.loc["777", "orders"] == 1
    assert prep.basis == "visits"
    # visits basis: recency from the last visit (an order counts), frequency = visits >= orders
    assert t.loc["888", "recency_days"] == 20 and t.loc["888", "frequency"] == 2
    assert t.loc["777", "recency_days"] == 27 and t.loc["777", "frequency"] == 1
    assert t.loc["00012", "frequency"] == 2  # one visit in events, two orders
    assert pd.isna(t.loc["888", "days_to_first_order"]) and t.loc["888", "m_score"] == 1


def test_orders_basis_keeps_non_buyers_at_the_bottom(tmp_path):
    rows = [("888", "2024-03-12 10:00", "view"), ("00012", "2024-03-11 10:00", "visit")]
    cfg = config_from_dict({"rfm": {"basis": "orders"}})
    prep = _run(tmp_path, rows, cfg, as_of=dt.date(2024, 4, 1))
    t = prep.table
    assert prep.basis == "orders" and prep.segmenter.map_.name == "ko_crm10"
    assert t.loc["00012", "recency_days"] == 22 and t.loc["00012", "frequency"] == 2
    # a non-buyer has gone the whole window (from the first order, 2024-03-01) without buying
    assert t.loc["888", "recency_days"] == 31 and t.loc["888", "frequency"] == 0
    assert t.loc["888", ["r_score", "f_score", "m_score"]].tolist() == [1, 1, 1]


def test_carts_abandoned_open_and_recovered(tmp_path):
    rows = [
        ("00012", "2024-03-01 09:50", "add_to_cart"),  # ordered 10:00 the same day: recovered
        ("00012", "2024-03-15 09:50", "add_to_cart"),  # no order within 7 days: abandoned
        ("888", "2024-03-29 10:00", "cart"),  # 3 days before the as-of: still open
        ("999", "2024-03-01 10:00", "cart"),
        ("999", "2024-03-03 10:00", "purchase"),  # a purchase event recovers it
    ]
    prep = _run(tmp_path, rows, as_of=dt.date(2024, 4, 1))
    t = prep.table
    assert t.loc["00012", ["carts", "carts_abandoned"]].tolist() == [2, 1]
    assert t.loc["888", ["carts", "carts_abandoned", "carts_decided"]].tolist() == [1, 0, 0]
    assert t.loc["999", ["carts", "carts_abandoned", "carts_decided"]].tolist() == [1, 0, 1]


def test_default_as_of_is_after_the_latest_of_orders_and_events(tmp_path):
    prep = _run(tmp_path, [("888", "2024-03-20 10:00", "visit")], now=NOW)
    assert prep.as_of == dt.date(2024, 3, 21) and not prep.as_of_given
    assert prep.table.loc["888", "recency_days"] == 1


def test_event_types_config_maps_shop_values(tmp_path):
    rows = [("1", "2024-03-01 10:00", "PDP"), ("1", "2024-03-01 10:01", "basket")]
    cfg = config_from_dict({"events": {"event_types": {"PDP": "view", "Basket": "cart"}}})
    prep = _run(tmp_path, rows, cfg, as_of=dt.date(2024, 4, 1))
    assert prep.events.ledger.kept_by_type == {"cart": 1, "view": 1}
    assert not [w for w in prep.warnings if w[0] == "unmapped_event_types"]


# --------------------------------------------------------------------------- reading


def test_excel_and_parquet_events_keep_text_ids(tmp_path):
    frame = pd.DataFrame(
        {
            "회원번호": ["00012", "00012", "0888"],
            "일시": pd.to_datetime(["2024-03-01 09:00", "2024-03-01 09:10", "2024-03-02 00:00"]),
            "행동": ["방문", "상품조회", "회원가입"],
        }
    )
    cfg = config_from_dict(
        {"events": {"customer_id": "회원번호", "timestamp": "일시", "event_type": "행동"}}
    )
    tx = _write(tmp_path / "tx.csv", TX)
    for name in ("ev.xlsx", "ev.parquet"):
        path = tmp_path / name
        frame.to_excel(path, index=False) if name.endswith("xlsx") else frame.to_parquet(path)
        prep = prepare(tx, cfg, as_of=dt.date(2024, 4, 1), events_path=path)
        assert {"00012", "0888"} <= set(prep.table.index), name
        assert prep.events.ledger.kept_by_type == {"signup": 1, "view": 1, "visit": 1}, name
        assert prep.table.loc["00012", "orders"] == 2  # joined to the orders of '00012'


def test_events_cp949_csv_and_korean_dates(tmp_path):
    text = "customer_id,timestamp\n12,2024-03-01 오후 1:05:00\n12,2024-03-01 오후 1:20:00\n"
    ev = tmp_path / "ev.csv"
    ev.write_bytes(text.encode("cp949"))
    tx = _write(tmp_path / "tx.csv", TX)
    prep = prepare(tx, Config(), as_of=dt.date(2024, 4, 1), events_path=ev)
    assert prep.events.source.encoding == "cp949"
    assert prep.events.ledger.visits == 1 and prep.table.loc["12", "visits"] == 1


@pytest.mark.parametrize(
    ("text", "config", "match"),
    [
        ("who,when\n1,2024-01-01\n", {}, r"events.customer_id = 'customer_id' is not a column"),
        ("customer_id,time\n1,2024-01-01\n", {}, r"closest: 'time'\?"),
        ("customer_id,timestamp\n1,soon\n2,later\n", {}, "no value that reads as a date"),
        (
            "customer_id,timestamp\n1,2024-01-01\n",
            {"event_type": "kind"},
            "events.event_type = 'kind'",
        ),
    ],
)
def test_bad_events_files_fail_in_one_line(tmp_path, text, config, match):
    tx = _write(tmp_path / "tx.csv", TX)
    ev = _write(tmp_path / "ev.csv", text)
    cfg = config_from_dict({"events": config})
    with pytest.raises(SegworkInputError, match=match) as exc:
        prepare(tx, cfg, as_of=dt.date(2024, 4, 1), events_path=ev)
    assert "\n" not in str(exc.value) and "ev.csv" in str(exc.value)


def test_missing_events_file(tmp_path):
    tx = _write(tmp_path / "tx.csv", TX)
    with pytest.raises(SegworkInputError, match="nope.csv: file not found"):
        prepare(tx, Config(), events_path=tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"event_types": {"x": "click"}}, "events.event_types.x is 'click'"),
        ({"session_gap_minutes": 0}, "events.session_gap_minutes must be positive"),
        ({"sesion_id": "s"}, "did you mean 'session_id'"),
    ],
)
def test_events_config_is_checked(raw, match):
    with pytest.raises(SegworkInputError, match=match):
        config_from_dict({"events": raw})


def test_event_options_defaults():
    opts = EventOptions()
    assert (opts.session_gap_minutes, opts.cart_window_days) == (30, 7)
    assert opts.customer_id == "customer_id" and opts.timestamp == "timestamp"


# --------------------------------------------------------------------------- the synthetic shop


@pytest.fixture(scope="module")
def shop_run(tmp_path_factory):
    """The synthetic shop with events (2,000 buyers + 400 who never buy), on the visits basis."""
    from segwork.synth import EventSpec, SynthSpec, write_synthetic

    folder = tmp_path_factory.mktemp("shop")
    write_synthetic(folder, SynthSpec(n_customers=2_000, seed=5), events=EventSpec())
    # the shop ends 2025-12-31; the clock (now) is later, its 2099 events are in the future
    prep = prepare(folder / "transactions.parquet", Config(), events_path=folder / "events.parquet")
    buyers = pd.read_parquet(
        folder / "personas.parquet", columns=["customer_id", "persona", "slipping_vip"]
    )
    # VIPs planted as slipping away (their orders thin out, the last one months ago) are the
    # future-state test's; they are not the loyal VIPs this map must find
    buyers.loc[buyers["slipping_vip"], "persona"] = "slipping_vip"
    truth = pd.concat(
        [buyers[["customer_id", "persona"]], pd.read_parquet(folder / "event_personas.parquet")]
    ).set_index("customer_id")["persona"]
    return prep, truth


def test_visit_map_finds_the_planted_personas(shop_run):
    prep, truth = shop_run
    t = prep.table.join(truth)
    found = pd.crosstab(t["persona"], t["rfm_segment_id"], normalize="index")
    assert found.loc["newcomer", "new"] >= 0.9
    assert found.loc["browser", "win_now"] >= 0.9  # recent visits, no order, no cart
    assert found.loc["cart_abandoner", "cart_abandoners"] >= 0.9
    assert found.loc["vip", "vip"] >= 0.9  # loyal buyers who visit more than they buy
    stage = t["rfm_segment_id"].map({s.id: s.stage for s in prep.segment_map.segments})
    assert (stage[t["persona"].isin(["vip", "loyal"])] == "retention").mean() >= 0.95


def test_synthetic_stages_hold_the_people_they_are_for(shop_run):
    prep, _ = shop_run
    t = prep.table
    stage = t["rfm_segment_id"].map({s.id: s.stage for s in prep.segment_map.segments})
    assert (t.loc[stage == "acquisition", "orders"] == 0).all()
    assert (t.loc[stage == "conversion", "orders"] == 1).all()
    assert (t.loc[stage == "retention", "orders"] >= 2).all()
    sizes = stage.value_counts()
    assert sizes.min() >= 200 and set(sizes.index) == {"acquisition", "conversion", "retention"}
    assert prep.basis == "visits" and prep.segment_map.name == "ko_crm_visits"


def test_synthetic_events_ledger_catches_the_planted_faults(shop_run):
    prep, _ = shop_run
    led = prep.events.ledger
    led.check()
    assert led.bot_customers == 2  # one bot per block of 1,000 customers
    assert set(led.dropped) == {"missing_customer", "in_future", "duplicate", "bot"}
    assert 2 <= led.dropped["in_future"] <= 4  # two broken clocks per block (some lose the ID)
    assert (prep.table["orders"] == 0).sum() == 400  # the never-buyers are all kept


def test_summary_events_block_states_basis_and_kpis(shop_run):
    from segwork.summary import events_block

    prep, _ = shop_run
    block = events_block(prep, Config())
    assert block is not None and block.non_buyers == 400
    assert block.rows_in == prep.events.ledger.rows_in
    kpis = block.stage_kpis
    assert set(kpis) == {"acquisition", "conversion", "retention"}
    assert 0 < kpis["acquisition"]["visit_to_first_order"] < 1
    assert 0 < kpis["conversion"]["cart_recovery"] < 1


def test_empty_event_type_is_kept_as_other_and_named(tmp_path):
    rows = [("1", "2024-03-01 10:00", "view"), ("1", "2024-03-01 10:02", "")]
    prep = _run(tmp_path, rows, as_of=dt.date(2024, 4, 1))
    assert prep.events.ledger.kept_by_type == {"other": 1, "view": 1}
    warning = next(w for w in prep.warnings if w[0] == "unmapped_event_types")
    assert warning[2] == {"n": 1, "values": ["(empty)"]}
