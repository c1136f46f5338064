"""Executed notebook -> one self-contained HTML page: code hidden, images and a font subset embedded."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from segwork.config import DEFAULT_LANG, NOTEBOOKS, TEMPLATES_DIR
from segwork.report.fonts import embed_font
from segwork.text import catalogue, languages


def html_exporter(lang: str = DEFAULT_LANG) -> Any:
    """nbconvert HTMLExporter: code hidden, images embedded, no script or font from the network."""
    from nbconvert import HTMLExporter

    return HTMLExporter(
        template_name="segwork",
        extra_template_basedirs=[str(TEMPLATES_DIR / "nbconvert")],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
        language_code=lang,  # <html lang> of the page
    )


def export_html(ipynb: Path, dest: Path, title: str) -> Path:
    """Render an executed notebook (a failed one too) to one self-contained HTML file."""
    import nbformat

    nb = nbformat.read(ipynb, as_version=4)
    nb.metadata["title"] = title
    lang = nb.metadata.get("papermill", {}).get("parameters", {}).get("lang", DEFAULT_LANG)
    lang = lang if lang in languages() else DEFAULT_LANG
    keep_language(nb, lang)  # a notebook run outside segwork may still hold every language
    t = catalogue(lang)
    resources = {
        "metadata": {"name": title},
        "segwork": {
            "back": t("nav.index"),
            "prev_label": t("nav.prev"),
            "next_label": t("nav.next"),
            **neighbours(dest.stem, lang),
        },
    }
    body, _ = html_exporter(lang).from_notebook_node(nb, resources=resources)
    dest.write_text(embed_font(with_toc(body, t("nav.contents"))), encoding="utf-8")
    return dest


def neighbours(name: str, lang: str) -> dict[str, tuple[str, str] | None]:
    """The previous and next report page of ``name`` as (href, title), in report order."""
    if name not in NOTEBOOKS:
        return {"prev": None, "next": None}
    i = NOTEBOOKS.index(name)
    titles = catalogue(lang)["pages"]

    def page(j: int) -> tuple[str, str] | None:
        return (
            (f"{NOTEBOOKS[j]}.html", titles.get(NOTEBOOKS[j], NOTEBOOKS[j]))
            if 0 <= j < len(NOTEBOOKS)
            else None
        )

    return {"prev": page(i - 1), "next": page(i + 1)}


_H2 = re.compile(r'<h2 id="([^"]+)">(.*?)<a class="anchor-link"', re.S)


def with_toc(body: str, label: str) -> str:
    """The page with a table of contents of its sections (its h2 headings) under the top nav."""
    items = [
        f'<li><a href="#{anchor}">{html.escape(html.unescape(re.sub(r"<[^>]+>", "", text)).strip())}</a></li>'
        for anchor, text in _H2.findall(body)
    ]
    toc = (
        f'<nav class="segwork-toc" aria-label="{html.escape(label)}"><b>{html.escape(label)}</b>'
        f"<ol>{''.join(items)}</ol></nav>"
        if items
        else ""
    )
    return body.replace("<!--segwork-toc-->", toc, 1)


def keep_language(nb: Any, lang: str) -> Any:
    """``nb`` without the cells tagged for another language (``lang-en`` when ``lang`` is ko).

    The report notebooks carry their prose once per language, each cell tagged ``lang-<code>``;
    untagged cells are for every language.
    """
    mine = f"lang-{lang}"
    nb.cells = [
        c
        for c in nb.cells
        if not any(
            t.startswith("lang-") and t != mine for t in c.get("metadata", {}).get("tags", [])
        )
    ]
    return nb
