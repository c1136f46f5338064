"""The report: what the notebooks import (artefacts and display tables) and how a run renders them.

Notebooks use ``import segwork.report as sr`` for :func:`load_or_build` and the reader tables of
:mod:`segwork.report.views`; figures are in :mod:`segwork.report.figures`, profile cards in
:mod:`segwork.report.cards`. ``segwork run`` executes the notebooks through
:mod:`segwork.report.session` (each in its own process, :mod:`segwork.report.execute`), renders them
with :mod:`segwork.report.export` and writes the index pages with :mod:`segwork.report.pages`.
This module imports only the light parts, so a notebook kernel starts fast.
"""

from __future__ import annotations

from segwork.artifacts import Artifacts, load_artifacts, load_or_build
from segwork.report.views import *  # noqa: F403  (the notebooks' display tables)
from segwork.report.views import __all__ as _views

__all__ = ["Artifacts", "load_artifacts", "load_or_build", *_views]
