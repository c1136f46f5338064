"""The migration and campaign page as reader tables: who moved, the expected mix, campaign results.

Built on :mod:`segwork.report.loop` (frames and sentences from the summary); this module turns
them into :class:`segwork.report.tables.Table` and lists with the report's number formats, and
says in words when there is nothing to show yet.
"""

from __future__ import annotations

import pandas as pd

import segwork.report.loop as loop
from segwork.artifacts import Artifacts
from segwork.report.tables import Lines, Table
from segwork.report.views import money
from segwork.text import catalogue


def has_migration(art: Artifacts) -> bool:
    """True when the run compared two dates."""
    return art.summary.migration is not None


def flows(art: Artifacts, lang: str, n: int = 5) -> Lines:
    """The biggest moves between segments in words, or why there are none to show."""
    if not has_migration(art):
        return Lines([catalogue(lang)("movement.no_migration")])
    return Lines(loop.biggest_flows(art.summary, lang, n))


def matrix_table(art: Artifacts, lang: str) -> Table:
    """Customers from each segment (rows) to each segment (columns), with totals."""
    if not has_migration(art):
        return Table(pd.DataFrame(), lang)
    m = loop.migration_matrix(art.summary, lang)
    frame = m.rename_axis(m.index.name).reset_index()
    return Table(frame, lang, headers={c: str(c) for c in frame.columns})


def mix_table(art: Artifacts, lang: str) -> Table:
    """Customers and shares per segment today and expected one period ahead."""
    if not has_migration(art):
        return Table(pd.DataFrame(), lang)
    mix = loop.expected_mix(art.summary, lang)
    frame = mix.rename_axis(mix.index.name).reset_index()
    cols = list(frame.columns)
    for c in (cols[2], cols[4]):  # shares come as percentages: show them as shares
        frame[c] = frame[c] / 100
    kinds = {cols[2]: "share", cols[4]: "share", cols[5]: "signed_int"}
    return Table(frame, lang, kinds, headers={c: str(c) for c in cols})


def mix_notes(art: Artifacts, lang: str) -> Lines:
    """How the expected mix was made, which edges scored both dates, and its back-tested error."""
    if not has_migration(art):
        return Lines([])
    return Lines(loop.projection_notes(art.summary, lang))


def campaign(art: Artifacts, lang: str) -> Table | Lines:
    """The latest campaign's results per segment, or how to add them."""
    fb = art.summary.feedback
    if fb is None:
        return Lines([catalogue(lang)("movement.no_campaign")])
    df = loop.campaign_table(fb, lang, art.summary.rfm.segment_map)
    frame = df.rename_axis(df.index.name).reset_index()
    cols = list(frame.columns)
    for c in (cols[3], cols[4], cols[5]):  # rates and uplift in percent points -> shares
        frame[c] = frame[c] / 100
    kinds = {cols[3]: "share", cols[4]: "share", cols[5]: "share", cols[7]: "money"}
    return Table(frame, lang, kinds, money(art), headers={c: str(c) for c in cols})
