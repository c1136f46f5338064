"""--lang: every page of the synthetic default report speaks one language (customer data aside).

English pages hold no Hangul; Korean pages hold no English prose (metric and method names such as
ARI or K-Means aside). Pages are checked as a reader sees them (visible text of the HTML, title
included); figures by replaying the notebooks' own figure cells and reading every text artist.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.browser import chromium

PAGES = ("01_eda", "02_rfm_segments", "03_clusters", "04_compare_and_profile", "05_movement")
pytestmark = pytest.mark.xdist_group("report_lang")  # both reports built once, on one worker
HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")
WORD = re.compile(r"[A-Za-z][A-Za-z_'.\-]*[A-Za-z]|[A-Za-z]")
# Names a Korean reader sees as they are: metrics, methods, scores, parameters, units.
ALLOWED = {
    "ARI", "AMI", "DBCV", "K-Means", "KMeans", "kmeans", "Ward", "ward", "HDBSCAN", "hdbscan",
    "RFM", "rfm", "R", "F", "M", "KPI", "VIP", "k", "p", "min_samples", "min_cluster_size",
    "log", "segwork", "as-of", "read.date_format", "read.sheet", "hdbscan.approximate_predict",
    "e.g", "noise", "x", "ID", "IDs", "CSV", "XLSX", "NaN", "None", "True", "False",
    "selection", "clusters", "status", "ok", "degenerate",
    "John", "Shobayo", "Ogunleye",  # authors of the published GMM figure
    "BG", "NBD", "Gamma-Gamma",  # the BTYD model's name
    "feedback", "campaign", "FILE", "run", "OUT",  # a command line quoted as it is typed
}  # fmt: skip


class _Visible(HTMLParser):
    """Text a reader sees: everything but script and style (the title bar counts)."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.hidden += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self.hidden -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self.hidden and data.strip():
            self.parts.append(" ".join(data.split()))


def visible_text(html: str) -> list[str]:
    """The visible text nodes of a page, whitespace collapsed."""
    parser = _Visible()
    parser.feed(html)
    return parser.parts


def english_runs(text: str, allowed: set[str] = ALLOWED) -> list[str]:
    """Runs of 3+ English words not in ``allowed`` (Hangul and digits break a run)."""
    runs = []
    for chunk in re.split(r"[\uac00-\ud7a3\d]+", text):
        words = [w for w in WORD.findall(chunk)]
        run: list[str] = []
        for w in [*words, None]:
            if w is not None and w not in allowed:
                run.append(w)
                continue
            if len(run) >= 3:
                runs.append(" ".join(run))
            run = []
    return runs


def without(text: str, data: set[str]) -> str:
    """``text`` with every customer-data string (longest first) cut out."""
    for s in sorted(data, key=len, reverse=True):
        text = text.replace(s, " ")
    return text


def offences(texts: list[str], lang: str, data: set[str]) -> list[str]:
    """Texts that break ``lang``: Hangul in English, English prose in Korean."""
    bad = []
    for t in texts:
        rest = without(t, data)
        if (lang == "en" and HANGUL.search(rest)) or (lang == "ko" and english_runs(rest)):
            bad.append(t)
    return bad


def customer_data(out: Path) -> set[str]:
    """Strings that come from the shop's data (product and country names, customer IDs)."""
    from segwork.report import load_or_build

    art = load_or_build(None, **replay_params(out))
    names = {str(n) for n in art.top["name"]} | {str(n) for n in art.lift.get("name", [])}
    return names | {n[:40] for n in names} | {str(c) for c in art.customers.index}


def replay_params(out: Path) -> dict[str, Any]:
    """The run parameters papermill injected into the pages of ``out`` (out_dir left out)."""
    nb = nbformat.read(out / f"{PAGES[0]}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    ns: dict[str, Any] = {}
    exec(cell.source, ns)  # noqa: S102 - the notebook's own parameter assignments
    keys = ("data_path", "config_path", "as_of", "seed", "synth_customers", "max_fit_size")
    return {k: ns[k] for k in (*keys, "silhouette_sample") if k in ns}


@pytest.fixture(scope="module", params=["en", "ko"])
def report(request, tmp_path_factory) -> tuple[str, Path]:
    """The synthetic default report in one language."""
    lang = request.param
    out = tmp_path_factory.mktemp(f"lang-{lang}") / "out"
    res = subprocess.run(
        [sys.executable, "-m", "segwork", "run", "--out", str(out), "--lang", lang, "--quiet"],
        capture_output=True,
        text=True,
    )  # the synthetic default shop, as `make report` runs it
    assert res.returncode == 0, res.stderr[-3000:]
    return lang, out


def test_english_runs_finds_prose_and_spares_names():
    assert english_runs("3 customers cancelled more than 50% of the value") == [
        "customers cancelled more than",
        "of the value",
    ]
    assert english_runs("K-Means, Ward, HDBSCAN의 ARI와 DBCV") == []
    assert english_runs("kmeans: 군집 3개, RFM 그룹과의 일치도(ARI) 0.41") == []


def test_pages_speak_one_language(report):
    lang, out = report
    data = customer_data(out)
    for name in (*PAGES, "index"):
        texts = visible_text((out / f"{name}.html").read_text(encoding="utf-8"))
        assert texts, name
        assert offences(texts, lang, data) == [], name


def test_executed_notebooks_keep_only_their_language(report):
    lang, out = report
    for name in PAGES:
        nb = nbformat.read(out / f"{name}.ipynb", as_version=4)
        tags = {t for c in nb.cells for t in c.metadata.get("tags", []) if t.startswith("lang-")}
        assert tags == {f"lang-{lang}"}, name


def run_cell(source: str, ns: dict[str, Any], where: str) -> Any:
    """Execute one code cell in ``ns`` like Jupyter does; the value of its last expression."""
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(tree, where, "exec"), ns)  # noqa: S102 - the notebook's own code
        if last is None:
            return None
        return eval(compile(ast.Expression(last.value), where, "eval"), ns)  # noqa: S307


def notebook_figures(out: Path, lang: str) -> list[tuple[str, Any]]:
    """Every figure the notebooks draw, replayed in this process from their own code cells."""
    from matplotlib.figure import Figure

    figures = []
    for name in PAGES:
        nb = nbformat.read(out / f"{name}.ipynb", as_version=4)
        ns: dict[str, Any] = {}
        for cell in (c for c in nb.cells if c.cell_type == "code"):
            value = run_cell(cell.source, ns, name)
            if "injected-parameters" in cell.metadata.get("tags", []):
                ns["out_dir"] = None  # the run folder keeps no figure inputs: use the cache
            if isinstance(value, Figure):
                figures.append((f"{name}: {cell.source[:60]}", value))
    return figures


def figure_texts(fig: Any) -> list[str]:
    """Every string drawn on a figure: titles, axis labels, tick labels, legends, annotations."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    FigureCanvasAgg(fig).draw()
    return [t.get_text() for t in fig.findobj(Text) if t.get_text().strip()]


def test_figures_speak_one_language(report):
    lang, out = report
    data = customer_data(out)
    figs = notebook_figures(out, lang)
    assert len(figs) >= 12
    bad = {where: offences(figure_texts(fig), lang, data) for where, fig in figs}
    assert {k: v for k, v in bad.items() if v} == {}


def test_table_headers_are_in_the_language(report):
    lang, out = report
    html = (out / "01_eda.html").read_text(encoding="utf-8")
    headers = {" ".join(h.split()) for h in re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", html, re.S)}
    if lang == "en":
        assert {"Rows", "Revenue", "Month", "Orders"} <= headers
    else:
        assert {"행 수", "매출", "월", "주문 수"} <= headers


# --------------------------------------------------------------------------- in a browser

SCIENTIFIC = re.compile(r"\d[eE][+-]?\d")


def test_campaign_page_has_a_block_per_segment_with_stage_kpi_actions_and_its_list(report):
    import pandas as pd

    from segwork.summary import read_summary
    from segwork.text import catalogue

    lang, out = report
    summary = read_summary(out / "summary.json")
    stages = catalogue(lang)["stages"]
    groups = {g: v for g, v in summary.rfm.groups.items() if v.customers}
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto((out / "index.html").as_uri(), wait_until="load")
        assert page.evaluate("document.documentElement.lang") == lang
        blocks = page.evaluate(
            """[...document.querySelectorAll('section.seg')].map(s => ({
                id: s.dataset.segment, customers: +s.dataset.customers,
                stage: s.querySelector('[data-stage]').textContent.trim(),
                kpi: [...s.querySelectorAll('[data-kpi-value]')].map(e => e.textContent.trim()),
                actions: s.querySelectorAll('[data-actions] li').length,
                href: s.querySelector('a.download') && s.querySelector('a.download').href}))"""
        )
    assert [b["id"] for b in blocks] == sorted(groups, key=lambda g: -groups[g].revenue)
    for b in blocks:
        g = groups[b["id"]]
        assert b["stage"] == stages[g.stage], b
        assert b["kpi"] and all(re.search(r"\d", v) for v in b["kpi"]), b  # a current value
        assert b["actions"] >= 1, b
        assert b["href"] and b["href"].startswith("file://"), b
        listed = pd.read_csv(
            Path(b["href"].removeprefix("file://")), dtype=str, encoding="utf-8-sig"
        )
        assert len(listed) == b["customers"] == g.customers, b
        assert set(listed["rfm_segment_id"]) == {b["id"]}
    everyone = pd.read_csv(out / "segments.csv", dtype=str, encoding="utf-8-sig")
    assert sum(b["customers"] for b in blocks) == len(everyone)


def test_no_page_scrolls_sideways_on_a_phone_and_no_cell_is_scientific(report):
    lang, out = report
    problems: list[str] = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 390, "height": 844})
        for name in ("index", *PAGES):
            page.goto((out / f"{name}.html").as_uri(), wait_until="load")
            wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            if wide > 0:
                problems.append(f"{name}: {wide}px wider than the phone")
            cells = page.evaluate("[...document.querySelectorAll('td, th')].map(c => c.innerText)")
            problems += [f"{name}: cell {c!r}" for c in cells if SCIENTIFIC.search(c)]
            problems += [
                f"{name}: cell {c!r}" for c in cells if c.strip() in ("NaN", "nan", "None")
            ]
            no_alt = page.evaluate("[...document.images].filter(i => !i.alt.trim()).length")
            if no_alt:
                problems.append(f"{name}: {no_alt} images without alt text")
            if page.evaluate("document.documentElement.lang") != lang:
                problems.append(f"{name}: html lang is not {lang}")
            if name != "index":
                toc = page.evaluate("document.querySelectorAll('.segwork-toc a').length")
                rels = page.evaluate("[...document.querySelectorAll('a[rel]')].map(a => a.rel)")
                want = (
                    {"prev"}
                    if name == PAGES[-1]
                    else {"next"}
                    if name == PAGES[0]
                    else {"prev", "next"}
                )
                if toc < 2 or set(rels) != want:
                    problems.append(f"{name}: contents {toc}, links {rels}")
    assert problems == []
