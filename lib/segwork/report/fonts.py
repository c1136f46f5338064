"""A Korean font subset embedded in each page, so no font is fetched from the network."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    pass


FONT_FAMILY = "SegworkNanumGothic"


def font_file() -> Path:
    """NanumGothic as shipped by the koreanize-matplotlib package."""
    import koreanize_matplotlib

    return Path(koreanize_matplotlib.__file__).resolve().parent / "fonts" / "NanumGothic.ttf"


def font_subset_base64(text: str) -> str:
    """NanumGothic reduced to the characters of ``text`` (plus ASCII), as base64 TrueType."""
    import base64
    import io
    import logging

    from fontTools import subset

    chars = {ch for ch in text if ord(ch) > 126} | {chr(c) for c in range(32, 127)}
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    options = subset.Options()
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.hinting = False  # hinting bytecode of a subset can garble glyphs in browsers
    options.drop_tables += ["TSI0", "TSI1", "TSI2", "TSI3", "TSI5"]
    font = subset.load_font(str(font_file()), options)
    sub = subset.Subsetter(options)
    sub.populate(text="".join(sorted(chars)))
    sub.subset(font)
    buf = io.BytesIO()
    subset.save_font(font, buf, options)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def embed_font(page: str) -> str:
    """Add a Korean web font (subset, inline as data:) so Hangul renders without system fonts."""
    import re

    visible = re.sub(r"data:[^\"')]+", "", page)
    if not any(ord(ch) > 0x2FF for ch in visible):
        return page
    face = f"'{FONT_FAMILY}'"
    css = (
        f'<style type="text/css">@font-face {{ font-family: {face}; font-display: block; '
        f"src: url(data:font/ttf;base64,{font_subset_base64(visible)}) format('truetype'); }}\n"
        f":root {{ --jp-content-font-family: {face}, sans-serif; --jp-ui-font-family: {face}, sans-serif; "
        f"--jp-code-font-family: monospace, {face}; }}\n"
        f"body, h1, h2, h3, h4, p, li, table, td, th, nav, a {{ font-family: {face}, sans-serif; }}\n"
        f"pre, code {{ font-family: monospace, {face}; }}</style>\n"
    )
    return page.replace("</head>", css + "</head>", 1)
