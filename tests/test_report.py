"""report.py: the rendered report (pages, escaping, pseudonyms, failures, month index) and UCI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import nbformat
import pytest

from segwork.cli import main
from segwork.report.pages import month_entries
from segwork.report.views import ledger_table
from tests.browser import BROWSER, chromium

ROOT = Path(__file__).resolve().parents[1]
HEAD = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
XSS_ID = "<script>alert(1)</script>"
XSS_PRODUCT = "<img src=x onerror=alert(2)>"
PAGES = ("01_eda", "02_rfm_segments", "03_clusters", "04_compare_and_profile", "05_movement")


def crafted_csv(path: Path, n_customers: int = 60) -> Path:
    """Small UCI-layout file whose biggest customer ID and a product name hold HTML."""
    lines = []
    for c in range(n_customers):
        cid = f'"{XSS_ID}"' if c == n_customers - 1 else f"K{1000 + c}Z"
        for o in range(1 + c % 6):
            day = 1 + (c * 7 + o * 3) % 27
            name, qty = (XSS_PRODUCT, 50) if o == 0 else (f"Mug {o}", 1 + o)
            lines.append(
                f"{c}{o},P{o},{name},{qty},2024-0{1 + o % 3}-{day:02d} 10:00,{2.5 + c},{cid},UK"
            )
    path.write_text(HEAD + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def report_files(out: Path) -> list[Path]:
    """Every file of a run folder that belongs to the report (not the customer lists:
    segments.csv/.xlsx and lists/, which carry real IDs to send campaigns to)."""
    return [
        p
        for p in out.rglob("*")
        if p.is_file()
        and p.name not in ("segments.csv", "segments.xlsx")
        and p.parent.name != "lists"
    ]


def external_urls(html: str) -> list[str]:
    """src/href/url() values that would fetch from the network."""
    pat = r"""(?:src|href)\s*=\s*["']?(https?:)?//[^"'\s>]+|url\(\s*["']?(?:https?:)?//[^)]+\)"""
    return [m.group(0) for m in re.finditer(pat, html, flags=re.IGNORECASE)]


@pytest.fixture(scope="module")
def crafted_report(tmp_path_factory) -> Path:
    """One full report on the crafted CSV, pseudonymised."""
    tmp = tmp_path_factory.mktemp("crafted")
    data = crafted_csv(tmp / "orders.csv")
    out = tmp / "out"
    env = {**os.environ, "SEGWORK_PSEUDONYM_KEY": "test-key"}
    res = subprocess.run(
        [sys.executable, "-m", "segwork", "run", "--data", str(data), "--out", str(out),
         "--lang", "en", "--pseudonymise", "--quiet"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def test_every_page_exists_self_contained_and_without_traceback(crafted_report):
    out = crafted_report
    for name in PAGES:
        assert (out / f"{name}.ipynb").is_file()
        html = (out / f"{name}.html").read_text(encoding="utf-8")
        assert "Traceback" not in html
        assert external_urls(html) == [], name
        assert "data:image/png;base64," in html
        assert "sr.load_or_build" not in html  # code hidden
    index = (out / "index.html").read_text(encoding="utf-8")
    assert external_urls(index) == []
    for name in PAGES:
        assert f'href="{name}.html"' in index


def test_data_strings_are_escaped_everywhere(crafted_report):
    for page in crafted_report.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "<script>alert" not in text and "<img src=x" not in text, page.name
    eda = (crafted_report / "01_eda.html").read_text(encoding="utf-8")
    assert "&lt;img src=x onerror=alert(2)&gt;" in eda  # shown as text in the top-products table


def test_pseudonymise_hides_ids_in_report_but_not_in_segments_csv(crafted_report):
    for p in report_files(crafted_report):
        raw = p.read_bytes()
        assert b"alert(1)" not in raw, p
        assert re.search(rb"K10\d\dZ", raw) is None, p
    seg = (crafted_report / "segments.csv").read_text(encoding="utf-8")
    assert XSS_ID in seg and "\nK1003Z," in seg
    rfm = (crafted_report / "02_rfm_segments.ipynb").read_text(encoding="utf-8")
    assert re.search(r"\b[0-9a-f]{16}\b", rfm)  # keyed hashes in the top-customers table


def test_pseudonymise_without_key_exits_2(tmp_path):
    data = crafted_csv(tmp_path / "orders.csv", 10)
    env = {k: v for k, v in os.environ.items() if k != "SEGWORK_PSEUDONYM_KEY"}
    res = subprocess.run(
        [sys.executable, "-m", "segwork", "run", "--data", str(data), "--out", str(tmp_path / "o"),
         "--pseudonymise", "--quiet"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "SEGWORK_PSEUDONYM_KEY" in res.stderr


def test_failing_notebook_exits_1_keeps_it_and_leaves_old_report(tmp_path, capsys):
    data = crafted_csv(tmp_path / "orders.csv", 30)
    out = tmp_path / "reports" / "2024-04"
    args = ["run", "--data", str(data), "--out", str(out), "--no-report", "--quiet"]
    assert main(args) == 0
    before = (out / "summary.json").read_bytes()
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    shutil.copy(ROOT / "notebooks" / "02_rfm_segments.ipynb", nbs)
    broken = nbformat.read(ROOT / "notebooks" / "01_eda.ipynb", as_version=4)
    broken.cells.insert(4, nbformat.v4.new_code_cell("raise ValueError('planted failure')"))
    nbformat.write(broken, nbs / "01_eda.ipynb")
    from segwork.config import RunParams
    from segwork.errors import ReportError
    from segwork.run import run

    params = RunParams(data_path=str(data), out_dir=str(out), notebooks_dir=str(nbs), lang="en")
    with pytest.raises(ReportError, match=r"01_eda failed at cell .*ValueError: planted failure"):
        run(params)
    failed = tmp_path / "reports" / ".failed-2024-04"
    kept = nbformat.read(failed / "01_eda.ipynb", as_version=4)
    assert any(o.get("ename") == "ValueError" for c in kept.cells for o in c.get("outputs", []))
    assert "planted failure" in (failed / "01_eda.html").read_text(encoding="utf-8")
    assert (out / "summary.json").read_bytes() == before
    assert not (out / "index.html").exists()


def test_two_months_are_listed_on_the_reports_index(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = crafted_csv(tmp_path / "orders.csv", 30)
    for as_of in ("2024-03-01", "2024-04-01"):
        assert main(["run", "--data", str(data), "--as-of", as_of, "--lang", "ko", "--quiet"]) == 0
    months = month_entries(tmp_path / "reports", "ko")
    assert [m["folder"] for m in months] == ["2024-04", "2024-03"]
    index = (tmp_path / "reports" / "index.html").read_text(encoding="utf-8")
    assert 'href="2024-03/index.html"' in index and 'href="2024-04/index.html"' in index
    assert '<html lang="ko">' in index and "세그먼트 구성" in index  # follows --lang
    for m in months:  # each month's segment mix: shares of its customers, named in Korean
        assert m["mix"] and abs(sum(s["share"] for s in m["mix"]) - 1) < 1e-9
        assert all(s["name"] in index for s in m["mix"])
    page = (tmp_path / "reports" / "2024-04" / "index.html").read_text(encoding="utf-8")
    assert 'href="../index.html"' in page  # the month links back to all months


def test_ledger_table_reconciles():
    from segwork.currency import currency
    from segwork.summary import Ledger

    ledger = Ledger(rows_in=10, rows_kept=7, revenue_in=100.0, revenue_kept=80.0, customers_kept=2,
                    dropped={"cancellation": {"rows": 3, "revenue": 20.0}})  # fmt: skip
    table = ledger_table(ledger, "en", currency("GBP"))
    t = table.data
    assert list(t["Rows"]) == [10, -3, 7] and list(t["Share of rows"]) == [1.0, 0.3, 0.7]
    assert t["Rows"].iloc[0] + t["Rows"].iloc[1] == t["Rows"].iloc[2]
    # one sign convention: read, then each reason's change (signed), then kept
    assert [row[1:] for row in table.cells()] == [
        ["10", "100.0%", "£100.00"],
        ["−3", "30.0%", "−£20.00"],
        ["7", "70.0%", "£80.00"],
    ]


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def uci_report(uci_parquet, tmp_path_factory) -> Path:
    """The full report on the shared UCI data, in Korean."""
    out = tmp_path_factory.mktemp("uci") / "out"
    res = subprocess.run(
        [sys.executable, "-m", "segwork", "run", "--data", str(uci_parquet), "--out", str(out),
         "--lang", "ko", "--quiet"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    return out


@pytest.mark.uci
@pytest.mark.slow
def test_uci_report_pages_and_ledger(uci_report):
    summary = json.loads((uci_report / "summary.json").read_text(encoding="utf-8"))
    index = (uci_report / "index.html").read_text(encoding="utf-8")
    led = summary["ledger"]
    assert (
        f'data-step="read"><td class="txt">읽은 행</td><td class="num" data-rows="{led["rows_in"]}"'
        in index
    )
    assert (
        f'data-step="kept"><td class="txt">사용</td><td class="num" data-rows="{led["rows_kept"]}"'
        in index
    )
    for reason, d in led["dropped"].items():  # each reason's change: minus its rows
        assert f'data-step="{reason}">' in index and f'data-rows="{-d["rows"]}"' in index
    assert f"{summary['customers']:,}" in index
    for name in PAGES:
        html = (uci_report / f"{name}.html").read_text(encoding="utf-8")
        assert "Traceback" not in html, name
        assert external_urls(html) == [], name
    assert "report" in summary["timings"]


@pytest.mark.uci
@pytest.mark.slow
@pytest.mark.skipif(
    not BROWSER.exists() and not os.environ.get("CI"), reason="no /usr/bin/chromium"
)
def test_uci_index_renders_in_headless_chromium(uci_report, tmp_path):
    errors: list[str] = []
    with chromium() as browser:
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
        for name in ("index", "02_rfm_segments"):
            page.goto((uci_report / f"{name}.html").as_uri(), wait_until="load")
            broken = page.evaluate(
                "[...document.images].filter(i => !i.complete || i.naturalWidth === 0).length"
            )
            assert broken == 0, name
            assert page.evaluate("document.fonts.check('16px SegworkNanumGothic', '고객')")
            if name != "index":  # the back link is Korean text too: drawn with the embedded font
                nav = "getComputedStyle(document.querySelector('.segwork-nav a')).fontFamily"
                assert "SegworkNanumGothic" in page.evaluate(nav)
            page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
        images = page.evaluate("document.images.length")
    assert errors == []
    assert images >= 2  # the notebook page embeds its charts


def test_truth_sentence_names_the_best_method_and_the_bar():
    from segwork.report import headline_comparison, truth_sentence
    from segwork.summary import Agreement, Clustering, Summary, Truth

    truth = Truth(
        ari_vs_truth={"kmeans": 0.93, "ward": 0.71, "hdbscan": 0.5, "rfm": 0.49},
        best_method="kmeans",
        best_ari=0.93,
        any_reaches_0_8=True,
        n_matched=10,
    )
    clus = Clustering.model_construct(agreement=Agreement(ari={}, ami={}), methods={}, truth=truth)
    summary = Summary.model_construct(clustering=clus)
    en = truth_sentence(summary, "en")
    assert en == (
        "ARI against the planted personas: K-Means 0.93, Ward 0.71, HDBSCAN 0.50; "
        "best is K-Means (0.93, reaches 0.8)"
    )
    assert "0.8 이상 달성" in truth_sentence(summary, "ko")
    assert headline_comparison(summary, "en")[-1] == en
    assert truth_sentence(Summary.model_construct(clustering=None), "en") is None
    no_truth = clus.model_copy(update={"truth": None})
    assert truth_sentence(Summary.model_construct(clustering=no_truth), "en") is None


def test_cluster_count_table_puts_noise_first_and_fills_gaps():
    from types import SimpleNamespace

    from segwork.report import cluster_count_table
    from segwork.summary import Segments, Summary

    segments = Segments(
        rfm={"vip": 8}, kmeans={"0": 5, "1": 3}, hdbscan={"noise": 2, "0": 4, "10": 1, "2": 1}
    )
    art = SimpleNamespace(summary=Summary.model_construct(segments=segments))
    t = cluster_count_table(art, "en").data.set_index("Cluster")
    assert list(t.index) == ["Unclustered (outliers)", "0", "1", "2", "10"]
    assert t.loc["Unclustered (outliers)", "K-Means"] == 0
    assert t.loc["Unclustered (outliers)", "HDBSCAN"] == 2
    assert t["K-Means"].sum() == 8 and t["HDBSCAN"].sum() == 8


def test_index_lists_data_quality_warnings_escaped(tmp_path):
    from segwork.report.pages import write_index
    from segwork.summary import RFM, DataWarning, Ledger, Period, RFMGroup, Source, Summary

    group = RFMGroup(stage="retention", customers=2, revenue=10.0)
    ledger = Ledger(
        rows_in=3, rows_kept=3, revenue_in=10.0, revenue_kept=10.0, customers_kept=2, dropped={}
    )
    summary = Summary.model_construct(
        segwork_version="0.1.0",
        as_of=date(2024, 9, 1),
        period=Period(first=date(2024, 1, 1), last=date(2024, 3, 1)),
        source=Source.model_construct(path="orders.csv"),
        customers=2,
        ledger=ledger,
        rfm=RFM.model_construct(groups={"vip": group}),
        warnings=[DataWarning(code="stale_data", message="as-of <b>184</b> days late")],
        clustering=None,
    )
    smap = {"segments": [{"id": "vip", "ko": "<i>VIP</i>", "en": "<i>VIP</i>", "stage": "retention",
                          "kpi": {"en": "<b>k</b>"}, "actions": {"en": ["<script>x</script>"]}}]}  # fmt: skip
    html = write_index(tmp_path, summary, [], "en", smap).read_text(encoding="utf-8")
    assert "<li>as-of &lt;b&gt;184&lt;/b&gt; days late</li></ul>" in html
    assert "&lt;i&gt;VIP&lt;/i&gt;" in html  # the segment's name comes from the map, escaped
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>" not in html
    quiet = summary.model_copy(update={"warnings": []})
    assert 'id="warnings"' not in write_index(tmp_path, quiet, [], "ko", smap).read_text("utf-8")
