"""Executed notebook -> one self-contained HTML page: code hidden, images and a font subset embedded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from segwork.config import DEFAULT_LANG, TEMPLATES_DIR
from segwork.report.fonts import embed_font
from segwork.text import catalogue, languages


def html_exporter() -> Any:
    """nbconvert HTMLExporter: code hidden, images embedded, no script or font from the network."""
    from nbconvert import HTMLExporter

    return HTMLExporter(
        template_name="segwork",
        extra_template_basedirs=[str(TEMPLATES_DIR / "nbconvert")],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )


def export_html(ipynb: Path, dest: Path, title: str) -> Path:
    """Render an executed notebook (a failed one too) to one self-contained HTML file."""
    import nbformat

    nb = nbformat.read(ipynb, as_version=4)
    nb.metadata["title"] = title
    lang = nb.metadata.get("papermill", {}).get("parameters", {}).get("lang", DEFAULT_LANG)
    lang = lang if lang in languages() else DEFAULT_LANG
    keep_language(nb, lang)  # a notebook run outside segwork may still hold every language
    resources = {"metadata": {"name": title}, "segwork": {"back": catalogue(lang)("index.back")}}
    body, _ = html_exporter().from_notebook_node(nb, resources=resources)
    dest.write_text(embed_font(body), encoding="utf-8")
    return dest


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
