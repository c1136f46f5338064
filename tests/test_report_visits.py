"""Display helpers for behaviour events, in both languages."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from segwork.report import visits
from segwork.summary import Events, EventsSource


@pytest.fixture
def events() -> Events:
    return Events(
        source=EventsSource(
            path="ev.csv",
            format="csv",
            encoding="utf-8",
            mapping={"customer_id": "customer_id", "timestamp": "timestamp"},
            date_format="ISO 8601",
            header_row=1,
            sheets=None,
        ),
        rows_in=1_000,
        rows_kept=900,
        customers_kept=50,
        visits=120,
        bot_customers=1,
        dropped={"missing_customer": 20, "bot": 80},
        kept_by_type={"visit": 120, "view": 700, "cart": 80},
        non_buyers=12,
        stage_kpis={
            "acquisition": {"visit_to_first_order": 0.25},
            "conversion": {"second_order_rate": 0.5, "cart_recovery": None},
            "retention": {"recent_repeat_rate": 0.4, "revenue_per_repeat_customer": 1234.5},
        },
    )


def _summary(events, basis="visits"):
    return SimpleNamespace(
        events=events, as_of=dt.date(2025, 1, 1), rfm=SimpleNamespace(basis=basis)
    )


def test_events_ledger_table_reconciles(events):
    en = visits.events_ledger_table(events, "en")
    assert list(en.columns) == ["Step", "Events", "% of events read"]
    assert en["Step"].tolist() == [
        "Events read",
        "Missing customer ID",
        "Bot: too many events per day",
        "Events kept",
    ]
    assert en["Events"].tolist() == [1_000, -20, -80, 900]
    assert en["Events"].iloc[0] + en["Events"].iloc[1:-1].sum() == en["Events"].iloc[-1]
    ko = visits.events_ledger_table(events, "ko")
    assert ko.iloc[2, 0] == "봇: 하루 이벤트 수 초과" and ko.iloc[2, 2] == 8.0


def test_basis_statement_per_basis(events):
    assert "12 customers who have visited" in visits.basis_statement(_summary(events), "en")
    assert "2025-01-01" in visits.basis_statement(_summary(events), "ko")
    assert "방문 기준" in visits.basis_statement(_summary(events), "ko")
    orders = visits.basis_statement(_summary(events, "orders"), "en")
    assert "rfm.basis: orders" in orders and "12" in orders
    assert visits.basis_statement(_summary(None, "orders"), "en").startswith("R and F count orders")
    assert visits.events_sentence(_summary(events), "en") == (
        "900 of 1,000 events kept (120 visits by 50 customers)"
    )
    assert "이벤트 파일이 없어" in visits.events_sentence(_summary(None, "orders"), "ko")


def test_stage_kpi_table(events):
    en = visits.stage_kpi_table(events.stage_kpis, "en", repeat_window_days=60)
    assert en.values.tolist() == [
        ["Acquisition", "Visit-to-first-order conversion", "25.0%"],
        ["Conversion", "Second-order rate", "50.0%"],
        ["Conversion", "Cart recovery", "-"],
        ["Retention", "Repeat rate (ordered in the last 60 days)", "40.0%"],
        ["Retention", "Revenue per repeat customer", "1,234"],
    ]
    ko = visits.stage_kpi_table(events.stage_kpis, "ko")
    assert ko.iloc[0].tolist() == ["획득", "첫 구매 전환율", "25.0%"]


def test_segment_kpi_table_and_types(events):
    table = visits.segment_kpi_table(
        {"vip": {"recent_repeat_rate": 1.0}, "new": {"visit_to_first_order": 0.0}},
        {"vip": "VIP", "new": "New visitors"},
        {"vip": "retention", "new": "acquisition"},
        "en",
    )
    assert table.values.tolist() == [
        ["VIP", "Retention", "Repeat rate (ordered in the last 90 days)", "100.0%"],
        ["New visitors", "Acquisition", "Visit-to-first-order conversion", "0.0%"],
    ]
    types = visits.event_types_table(events, "ko")
    assert types.iloc[:, 0].tolist() == ["방문", "상품 조회", "장바구니 담기"]
