"""The executive index.html and the monthly reports index (Jinja, autoescaped)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from segwork.report.session import NotebookResult
    from segwork.summary import Summary


from segwork.config import TEMPLATES_DIR
from segwork.report.fonts import embed_font
from segwork.report.views import headline_comparison, page_title, warning_text
from segwork.summary import read_headline
from segwork.text import catalogue

Progress = Callable[[str], None]


def _jinja() -> Any:
    """Jinja environment over the package templates, with HTML autoescaping on."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def index_context(
    summary: Summary,
    pages: list[tuple[str, str]],
    lang: str,
    segment_labels: Mapping[str, str],
) -> dict[str, Any]:
    """Everything the executive summary shows, as plain values (escaped by the template).

    ``segment_labels`` maps RFM segment ids to display names (the summary holds ids only)."""
    led = summary.ledger
    t = catalogue(lang)
    labels = t["reasons"]
    groups = summary.rfm.groups
    total_rev = sum(g.revenue for g in groups.values()) or 1.0
    total_n = sum(g.customers for g in groups.values()) or 1
    segments = [
        {
            "name": segment_labels.get(gid, gid),
            "customers": g.customers,
            "customer_share": 100 * g.customers / total_n,
            "revenue_share": 100 * g.revenue / total_rev,
        }
        for gid, g in groups.items()
    ]
    segments.sort(key=lambda s: -s["revenue_share"])
    return {
        "lang": lang,
        "t": t["index"],
        "as_of": summary.as_of.isoformat(),
        "period": summary.period,
        "source": Path(summary.source.path).name,
        "customers": summary.customers,
        "ledger": led,
        "dropped": [(labels.get(r, r), d.rows, d.revenue) for r, d in led.dropped.items()],
        "segments": segments,
        "warnings": [warning_text(w, lang) for w in summary.warnings],
        "comparison": headline_comparison(summary, lang),
        "pages": pages,
        "version": summary.segwork_version,
    }


def write_index(
    build: Path,
    summary: Summary,
    results: list[NotebookResult],
    lang: str,
    segment_labels: Mapping[str, str],
) -> Path:
    """The executive summary page ``index.html`` linking every notebook page."""
    pages = [(r.html.name, page_title(r.name, lang)) for r in results]
    context = index_context(summary, pages, lang, segment_labels)
    text = _jinja().get_template("index.html.j2").render(**context)
    dest = build / "index.html"
    dest.write_text(embed_font(text), encoding="utf-8")
    return dest


def month_entries(root: Path) -> list[dict[str, Any]]:
    """Every report folder under ``root`` (newest first) with its as-of date and headline figures."""
    out = []
    for d in sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), reverse=True
    ):
        if not (d / "index.html").is_file():
            continue
        s = read_headline(d / "summary.json")
        if s is None:
            continue
        out.append(
            {
                "folder": d.name,
                "as_of": s.as_of.isoformat(),
                "customers": s.customers,
                "rows_kept": s.ledger.rows_kept,
                "revenue_kept": s.ledger.revenue_kept,
            }
        )
    return out


def write_reports_index(
    parent: Path, reports_root: Path, say: Progress, lang: str = "en"
) -> Path | None:
    """Regenerate ``reports/index.html`` from the month folders present (only under reports_root)."""
    if not reports_root.is_dir() or parent.resolve() != reports_root.resolve():
        return None
    template = _jinja().get_template("reports_index.html.j2")
    text = embed_font(
        template.render(months=month_entries(reports_root), lang=lang, t=catalogue(lang)["months"])
    )
    dest = reports_root / "index.html"
    tmp = reports_root / f".index.html.{os.getpid()}"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, dest)
    say(f"updated {dest}")
    return dest
