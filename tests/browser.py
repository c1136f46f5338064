"""Debian's headless Chromium driven by Playwright, for the report tests (one launcher for all)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BROWSER = Path("/usr/bin/chromium")
#: Without the background-networking flags Chromium's connections are refused here, many at a time.
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A launched browser (Playwright is a dev dependency: missing is a failure, not a skip)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(BROWSER), args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()
