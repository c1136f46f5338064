"""The campaign page index.html and the monthly reports index (Jinja, autoescaped).

index.html answers "what do I do, and to whom": the journey stages, then one block per
segment (by revenue share) with its stage, KPI and current value, actions and customer list;
the ledger and the analysts' diagnostics come last.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from segwork.report.session import NotebookResult
    from segwork.summary import Summary


import segwork.report.loop as loop
from segwork.config import METHODS, TEMPLATES_DIR
from segwork.currency import Currency, currency
from segwork.kpi import KPI_KINDS
from segwork.maps import STAGES
from segwork.outputs import LISTS
from segwork.report.clusterwords import best_sentence, structure_sentence
from segwork.report.fonts import embed_font
from segwork.report.future import backtest_sentence, future_sentence
from segwork.report.tables import TABLE_CSS, fmt_int, fmt_money, fmt_num, fmt_share
from segwork.report.views import (
    METHOD_NAMES,
    chosen_dbcv,
    ledger_rows,
    page_title,
    truth_sentence,
    warning_text,
)
from segwork.summary import read_headline
from segwork.text import catalogue

Progress = Callable[[str], None]
#: One colour per segment, in segment-map order (the same on every chart of the page).
PALETTE = (
    "#3b6ea5", "#e07b39", "#5a9e5a", "#c44e52", "#8172b2", "#937860", "#da8bc3", "#8c8c8c",
    "#ccb974", "#64b5cd", "#2f4b7c", "#a05195",
)  # fmt: skip


def _jinja() -> Any:
    """Jinja environment over the package templates, with HTML autoescaping on."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def kpi_value(kpi: str, value: float | None, cur: Currency | None, lang: str) -> str:
    """A KPI's current value written for a reader: 34.5%, £18.20, 23 days."""
    kind = KPI_KINDS.get(kpi, "number")
    if value is None:
        return "–"
    if kind == "share":
        return fmt_share(value)
    if kind == "money":
        return fmt_money(value, cur)
    if kind == "days":
        return catalogue(lang)("index.days", n=fmt_num(value, 0))
    return fmt_num(value, 1)


def kpi_name(kpi: str, lang: str, window_days: int = 90) -> str:
    """A KPI's name in ``lang`` (the repeat window filled in where the name has one)."""
    text = catalogue(lang).get(f"kpis.{kpi}", kpi)
    return text.format(days=window_days) if "{days}" in text else text


def segment_blocks(
    summary: Summary,
    segment_map: Mapping[str, Any],
    lang: str,
    lists: Mapping[str, int],
) -> list[dict[str, Any]]:
    """One block per non-empty segment, by revenue share (then customers): what to do, to whom."""
    t = catalogue(lang)
    cur = currency(summary.currency)
    groups = summary.rfm.groups
    total_n = sum(g.customers for g in groups.values()) or 1
    total_rev = sum(g.revenue for g in groups.values()) or 1.0
    colours = {s["id"]: PALETTE[i % len(PALETTE)] for i, s in enumerate(segment_map["segments"])}
    blocks = []
    for s in segment_map["segments"]:
        g = groups.get(s["id"])
        if g is None or g.customers == 0:
            continue
        blocks.append(
            {
                "id": s["id"],
                "name": s[lang],
                "colour": colours[s["id"]],
                "stage": t["stages"].get(g.stage, g.stage),
                "stage_id": g.stage,
                "customers": g.customers,
                "customers_text": fmt_int(g.customers),
                "customer_share": g.customers / total_n,
                "customer_share_text": fmt_share(g.customers / total_n),
                "revenue_text": fmt_money(g.revenue, cur, whole=True),
                "revenue_share": g.revenue / total_rev,
                "revenue_share_text": fmt_share(g.revenue / total_rev),
                "medians": t(
                    "index.medians",
                    recency=fmt_num(g.median_recency_days, 0),
                    frequency=fmt_num(g.median_frequency, 0),
                    monetary=fmt_money(g.median_monetary, cur, whole=True),
                ),
                "kpi": str(s.get("kpi", {}).get(lang, "")),
                "kpi_values": [
                    (kpi_name(k, lang), kpi_value(k, v, cur, lang)) for k, v in g.kpis.items()
                ],
                "actions": list(s.get("actions", {}).get(lang, [])),
                "campaign": loop.campaign_card_line(summary.feedback, s["id"], lang),
                "future": future_sentence(
                    s[lang],
                    summary.prediction.segments[s["id"]],
                    summary.prediction.horizon_days,
                    lang,
                    cur,
                )
                if summary.prediction is not None and s["id"] in summary.prediction.segments
                else None,
                "list_href": f"{LISTS}/{s['id']}.csv" if s["id"] in lists else None,
                "list_rows": lists.get(s["id"], 0),
            }
        )
    blocks.sort(key=lambda b: (-b["revenue_share"], -b["customers"]))
    return blocks


def stage_rows(summary: Summary, lang: str) -> list[dict[str, Any]]:
    """Customers and revenue per journey stage, in journey order."""
    t = catalogue(lang)
    cur = currency(summary.currency)
    groups = summary.rfm.groups
    total_n = sum(g.customers for g in groups.values()) or 1
    total_rev = sum(g.revenue for g in groups.values()) or 1.0
    rows = []
    for stage in STAGES:
        members = [g for g in groups.values() if g.stage == stage]
        n = sum(g.customers for g in members)
        rev = sum(g.revenue for g in members)
        rows.append(
            {
                "stage": t["stages"].get(stage, stage),
                "stage_id": stage,
                "segments": sum(1 for g in members if g.customers),
                "customers": fmt_int(n),
                "customer_share": n / total_n,
                "customer_share_text": fmt_share(n / total_n),
                "revenue": fmt_money(rev, cur, whole=True),
                "revenue_share": max(rev, 0.0) / total_rev,
                "revenue_share_text": fmt_share(rev / total_rev),
            }
        )
    return rows


def analyst_rows(summary: Summary) -> list[dict[str, str]]:
    """Per clustering method: clusters, agreement with the RFM groups, stability, DBCV, outliers."""
    clus = summary.clustering
    if clus is None:
        return []
    rows = []
    for m in METHODS:
        s = clus.methods.get(m)
        if s is None:
            continue
        ari = clus.agreement.ari.get(m, {}).get("rfm")
        dbcv = chosen_dbcv(s) if m == "hdbscan" else None
        rows.append(
            {
                "method": METHOD_NAMES.get(m, m),
                "clusters": fmt_int(s.n_clusters),
                "ari": fmt_num(ari, 2) if ari is not None else "–",
                "stability": fmt_num(s.stability.mean_ari, 2)
                if s.stability and s.stability.mean_ari is not None
                else "–",
                "dbcv": fmt_num(dbcv, 2) if dbcv is not None else "–",
                "outliers": fmt_share(s.noise.share) if s.noise else "–",
            }
        )
    return rows


def ledger_lines(summary: Summary, lang: str) -> list[dict[str, Any]]:
    """The ledger as on page 01: read, each reason's change (read + changes = kept), kept."""
    t = catalogue(lang)
    names = {**t["reasons"], **t["ledger"]}
    cur = currency(summary.currency)
    rows = ledger_rows(summary.ledger)
    out = []
    for i, (step, n, revenue) in enumerate(rows):
        end = i in (0, len(rows) - 1)
        out.append(
            {
                "step": names.get(step, step),
                "code": step,
                "rows": fmt_int(n, signed=not end),
                "rows_value": n,
                "revenue": fmt_money(revenue, cur, signed=not end),
                "total": end,
            }
        )
    return out


def list_counts(build: Path) -> dict[str, int]:
    """Segment id -> customers in its list file (lists/<id>.csv, header excluded)."""
    folder = build / LISTS
    if not folder.is_dir():
        return {}
    out = {}
    for p in sorted(folder.glob("*.csv")):
        with p.open(encoding="utf-8-sig") as fh:
            out[p.stem] = max(sum(1 for _ in fh) - 1, 0)
    return out


def index_context(
    summary: Summary,
    pages: list[tuple[str, str]],
    lang: str,
    segment_map: Mapping[str, Any],
    lists: Mapping[str, int] | None = None,
    monthly_index: bool = False,
    files: tuple[str, ...] = ("segments.csv", "segments.xlsx", "summary.json"),
) -> dict[str, Any]:
    """Everything the campaign page shows, as plain values (escaped by the template)."""
    led = summary.ledger
    cur = currency(summary.currency)
    lists = lists or {}
    blocks = segment_blocks(summary, segment_map, lang, lists)
    empty = [
        s[lang]
        for s in segment_map["segments"]
        if (g := summary.rfm.groups.get(s["id"])) is not None and g.customers == 0
    ]
    truth = truth_sentence(summary, lang)
    return {
        "lang": lang,
        "t": catalogue(lang)["index"],
        "css": TABLE_CSS,
        "as_of": summary.as_of.isoformat(),
        "period": summary.period,
        "source": Path(summary.source.path).name,
        "customers": fmt_int(summary.customers),
        "revenue_kept": fmt_money(led.revenue_kept, cur, whole=True),
        "rows_kept": fmt_int(led.rows_kept),
        "rows_in": fmt_int(led.rows_in),
        "ledger": ledger_lines(summary, lang),
        "ledger_raw": led,
        "stages": stage_rows(summary, lang),
        "segments": blocks,
        "empty_segments": empty,
        "warnings": [warning_text(w, lang) for w in summary.warnings],
        "analysts": analyst_rows(summary),
        "future": backtest_sentence(summary.prediction, summary.as_of, lang)
        if summary.prediction is not None
        else None,
        "cluster_notes": [
            w for w in (structure_sentence(summary, lang), best_sentence(summary, lang)) if w
        ],
        "flows": loop.biggest_flows(summary, lang, 3) if summary.migration else [],
        "flows_since": summary.migration.earlier.isoformat() if summary.migration else "",
        "truth": truth,
        "pages": pages,
        "files": [f for f in files],
        "monthly_index": monthly_index,
        "version": summary.segwork_version,
    }


def write_index(
    build: Path,
    summary: Summary,
    results: list[NotebookResult],
    lang: str,
    segment_map: Mapping[str, Any] | None = None,
    monthly_index: bool = False,
) -> Path:
    """The campaign page ``index.html`` linking every notebook page and customer list."""
    if segment_map is None:
        segment_map = json.loads((build / "artifacts" / "segment_map.json").read_text("utf-8"))
    pages = [(r.html.name, page_title(r.name, lang)) for r in results]
    files = tuple(n for n in ("segments.csv", "segments.xlsx") if (build / n).is_file())
    context = index_context(
        summary,
        pages,
        lang,
        segment_map,
        list_counts(build),
        monthly_index,
        (*files, "summary.json"),
    )
    text = _jinja().get_template("index.html.j2").render(**context)
    dest = build / "index.html"
    dest.write_text(embed_font(text), encoding="utf-8")
    return dest


def _month_map(folder: Path) -> dict[str, Any] | None:
    """A month's segment map (artifacts/segment_map.json), if readable."""
    try:
        return json.loads((folder / "artifacts" / "segment_map.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None


def month_entries(root: Path, lang: str = "en") -> list[dict[str, Any]]:
    """Every report folder under ``root`` (newest first): as-of date, figures and segment mix."""
    out = []
    for d in sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), reverse=True
    ):
        if not (d / "index.html").is_file():
            continue
        s = read_headline(d / "summary.json")
        if s is None:
            continue
        smap = _month_map(d)
        names = {g["id"]: g.get(lang, g["id"]) for g in smap["segments"]} if smap else {}
        order = [g["id"] for g in smap["segments"]] if smap else []
        groups = s.rfm.groups if s.rfm else {}
        total = sum(g.customers for g in groups.values()) or 1
        mix = [
            {
                "id": gid,
                "name": names.get(gid, gid),
                "share": groups[gid].customers / total,
                "share_text": fmt_share(groups[gid].customers / total),
                "colour": PALETTE[i % len(PALETTE)],
            }
            for i, gid in enumerate(order or list(groups))
            if gid in groups and groups[gid].customers
        ]
        out.append(
            {
                "folder": d.name,
                "as_of": s.as_of.isoformat(),
                "customers": s.customers,
                "customers_text": fmt_int(s.customers),
                "rows_kept": s.ledger.rows_kept,
                "revenue_kept": s.ledger.revenue_kept,
                "revenue_text": fmt_money(s.ledger.revenue_kept, currency(s.currency), whole=True),
                "mix": mix,
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
        template.render(
            months=month_entries(reports_root, lang),
            lang=lang,
            t=catalogue(lang)["months"],
            css=TABLE_CSS,
        )
    )
    dest = reports_root / "index.html"
    tmp = reports_root / f".index.html.{os.getpid()}"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, dest)
    say(f"updated {dest}")
    return dest
