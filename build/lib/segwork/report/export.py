"""Executed notebook -> one self-contained HTML page: code hidden, images and a font subset embedded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from segwork.config import TEMPLATES_DIR
from segwork.report.fonts import embed_font


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
    body, _ = html_exporter().from_notebook_node(nb, resources={"metadata": {"name": title}})
    dest.write_text(embed_font(body), encoding="utf-8")
    return dest
