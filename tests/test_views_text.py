"""Report views word ids and codes through the text catalogue (warnings, rules, notes, tables)."""

from __future__ import annotations

import nbformat
import pandas as pd

from segwork.report.export import export_html, keep_language
from segwork.report.views import (
    ledger_table,
    note_text,
    page_title,
    rule_text,
    truth_sentence,
    warning_text,
)

STALE = {
    "code": "stale_data",
    "params": {"as_of": "2024-05-01", "gap": 184, "last": "2023-10-30"},
    "message": "the as-of date 2024-05-01 is 184 days after the latest kept transaction",
}


def test_warnings_are_worded_from_their_code_and_params():
    assert warning_text(STALE, "ko") == (
        "기준일 2024-05-01은 마지막 사용 거래(2023-10-30)보다 184일 뒤: "
        "최근성이 데이터가 없는 날짜를 기준으로 계산됨"
    )
    assert warning_text(STALE, "en").startswith("The as-of date 2024-05-01 is 184 days after")
    heavy = {
        "code": "cancel_heavy_customers",
        "params": {"n": 1234, "share": 0.5, "examples": "17, 42"},
        "message": "...",
    }
    assert warning_text(heavy, "ko") == "고객 1,234명이 구매 금액의 50% 넘게 취소함 (예: 17, 42)"
    markers = {
        "code": "missing_customer_markers",
        "params": {"ids": ["'nan'", "'-'"]},
        "message": "",
    }
    assert "'nan', '-'" in warning_text(markers, "en")


def test_a_warning_without_words_or_params_shows_its_message():
    unknown = {"code": "brand_new_check", "params": {}, "message": "something odd"}
    assert warning_text(unknown, "ko") == "something odd"
    legacy = {"code": "stale_data", "message": "old summary without params"}
    assert warning_text(legacy, "ko") == "old summary without params"


def test_rules_are_worded_in_the_readers_language_with_money_in_its_currency():
    from segwork.currency import currency

    rule = "recency_days >= 22 and frequency >= 3"
    assert rule_text(rule, "ko") == "최근 구매 22일 이상 전 · 구매 3회 이상"
    assert rule_text(rule, "en") == "last order 22+ days ago · 3+ orders"
    assert rule_text("recency_days <= 52 and monetary > 1234.5", "en", currency("GBP")) == (
        "last order within 52 days · spent over £1,234.50"
    )
    assert rule_text("monetary <= 12900", "ko", currency("KRW")) == "구매액 ₩12,900 이하"
    assert rule_text("tenure_days > 7", "en") == "tenure_days > 7"  # no words: name and operator
    assert rule_text("all customers", "ko") == "모든 고객"


def test_structured_notes_are_worded_and_plain_notes_kept():
    note = {"code": "kmeans_sampled", "params": {"sample": 50000, "n": 120000}}
    assert note_text(note, "ko").startswith("K-Means: 고객 120,000명 중 무작위 표본 50,000명")
    assert note_text("Ward: tree built on 10 of 20 customers", "ko") == (
        "Ward: tree built on 10 of 20 customers"
    )


def test_ledger_table_headers_and_steps_follow_the_language():
    from segwork.summary import Ledger

    ledger = Ledger.model_validate(
        {
            "rows_in": 10,
            "revenue_in": 100.0,
            "rows_kept": 8,
            "revenue_kept": 90.0,
            "customers_kept": 3,
            "dropped": {"cancellation": {"rows": 2, "revenue": 10.0}},
        }
    )
    ko, en = ledger_table(ledger, "ko").data, ledger_table(ledger, "en").data
    assert list(ko.columns) == ["항목", "행 수", "행 비중", "매출"]
    assert list(en.columns) == ["Step", "Rows", "Share of rows", "Revenue"]
    assert list(ko["항목"]) == ["읽은 행", "취소·반품", "사용"]
    assert list(en["Step"]) == ["Read", "Cancellation or return", "Kept"]
    assert list(en["Rows"]) == [10, -2, 8]


def test_truth_sentence_and_page_titles_per_language():
    from segwork.summary import Agreement, Clustering, Summary, Truth

    truth = Truth(
        ari_vs_truth={"kmeans": 0.91, "ward": 0.97},
        best_method="ward",
        best_ari=0.97,
        any_reaches_0_8=True,
        n_matched=10,
    )
    clus = Clustering.model_construct(agreement=Agreement(ari={}, ami={}), methods={}, truth=truth)
    summary = Summary.model_construct(clustering=clus)
    assert truth_sentence(summary, "ko") == (
        "심어 둔 페르소나 대비 ARI: K-Means 0.91, Ward 0.97; 가장 잘 찾은 방법은 Ward (0.97, 0.8 이상 달성)"
    )
    assert truth_sentence(summary, "en").endswith("best is Ward (0.97, reaches 0.8)")
    assert page_title("03_clusters", "ko") == "데이터 기반 군집"
    assert page_title("99_extra", "en") == "99_extra"


def _bilingual() -> nbformat.NotebookNode:
    """A tiny executed-looking notebook with prose in both languages and one shared cell."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("## 일치도", metadata={"tags": ["lang-ko"]}),
        nbformat.v4.new_markdown_cell("## Agreement", metadata={"tags": ["lang-en"]}),
        nbformat.v4.new_markdown_cell("ARI / AMI"),
        nbformat.v4.new_code_cell("1 + 1", metadata={"tags": ["parameters"]}),
    ]
    return nb


def test_keep_language_drops_only_the_other_languages_prose():
    kept = keep_language(_bilingual(), "en")
    assert [c.source for c in kept.cells] == ["## Agreement", "ARI / AMI", "1 + 1"]
    kept = keep_language(_bilingual(), "ko")
    assert [c.source for c in kept.cells] == ["## 일치도", "ARI / AMI", "1 + 1"]


def test_exported_page_holds_one_language_and_a_worded_back_link(tmp_path):
    nb = _bilingual()
    nb.metadata["papermill"] = {"parameters": {"lang": "en"}}
    src = tmp_path / "p.ipynb"
    nbformat.write(nb, src)
    page = export_html(src, tmp_path / "p.html", "Title").read_text(encoding="utf-8")
    assert "Agreement" in page and "일치도" not in page
    assert "← Campaign page" in page and 'lang="en"' in page
    nb.metadata["papermill"]["parameters"]["lang"] = "ko"
    nbformat.write(nb, src)
    page = export_html(src, tmp_path / "p.html", "Title").read_text(encoding="utf-8")
    assert "일치도" in page and "Agreement" not in page and "실행 계획 페이지" in page


def test_named_tables_keep_unknown_ids():
    from segwork.report.views import named

    df = named(pd.DataFrame({"revenue": [1], "brand_new": [2]}), "ko")
    assert list(df.columns) == ["매출", "brand_new"]


def test_a_degenerate_fit_is_worded_in_the_readers_language():
    import pandas as pd

    from segwork.segmenters import KMeansSegmenter

    rfm = pd.DataFrame({"recency_days": [3.0], "frequency": [1.0], "monetary": [9.5]}, index=["c1"])
    seg = KMeansSegmenter().fit(rfm)
    (note,) = seg.notes_
    assert note["code"] == "degenerate" and note["params"]["reason"] == "too_few_customers"
    assert seg.selection_["reason"] == "too_few_customers"  # a code, not a sentence
    ko, en = note_text(note, "ko"), note_text(note, "en")
    assert en == note["message"] and "need at least" in en
    assert "최소" in ko and "need" not in ko and "{" not in ko
