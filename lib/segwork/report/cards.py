"""Profile cards for readers: HTML blocks (every data-derived string escaped) and a notebook view."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from segwork.currency import Currency
from segwork.profile import ProfileCard
from segwork.report.tables import fmt_int, fmt_money, fmt_num
from segwork.report.views import METHOD_NAMES, rule_text
from segwork.text import catalogue

CARD_CSS = (
    "border:1px solid #ccd;border-radius:6px;padding:8px 12px;margin:6px 0;"
    "word-break:keep-all;overflow-wrap:anywhere"
)


def card_html(
    card: ProfileCard, lang: str, cur: Currency | None = None, extra: Sequence[str] = ()
) -> str:
    """One card as an HTML block (``extra``: lines such as its future state); all escaped."""
    e = html.escape
    t = catalogue(lang)
    names = t["columns"]
    lines = [
        f"<div class='segwork-card' data-group='{e(card.group)}' style='{CARD_CSS}'>",
        f"<h4 style='margin:2px 0'>{e(card.name)}"
        + (f" <small style='color:#556'>· {e(card.stage)}</small>" if card.stage else "")
        + "</h4>",
        "<p style='margin:2px 0'>"
        + e(
            t(
                "cards.size",
                customers=fmt_int(card.customers),
                customer_share=card.customer_share,
                revenue=fmt_money(card.revenue, cur, whole=True),
                revenue_share=card.revenue_share,
            )
        )
        + "</p>",
        "<p style='margin:2px 0'>"
        + e(
            t(
                "cards.medians",
                recency=fmt_num(card.median_recency_days, 0),
                frequency=fmt_num(card.median_frequency, 0),
                monetary=fmt_money(card.median_monetary, cur, whole=True),
            )
        )
        + "</p>",
    ]
    if card.note:
        lines.append(f"<p style='margin:2px 0;color:#8a4b00'>{e(card.note)}</p>")
    for line in extra:
        lines.append(f"<p class='segwork-future' style='margin:2px 0'><b>{e(line)}</b></p>")
    for key, values in (
        ("top_countries", card.top_countries),
        ("top_products", card.top_products),
        ("rules", card.rules),
    ):
        if values:
            shown = [rule_text(v, lang, cur) for v in values] if key == "rules" else values
            sep = t("cards.or") if key == "rules" else ", "
            lines.append(
                f"<p style='margin:2px 0'><b>{e(names[key])}</b>: {e(sep.join(shown))}</p>"
            )
    if card.kpi:
        lines.append(f"<p style='margin:2px 0'><b>{e(names['kpi'])}</b>: {e(card.kpi)}</p>")
    if card.actions:
        items = "".join(f"<li>{e(a)}</li>" for a in card.actions)
        lines.append(f"<b>{e(names['actions'])}</b><ul style='margin:2px 0'>{items}</ul>")
    lines.append("</div>")
    return "\n".join(lines)


def cards_html(
    cards: Sequence[ProfileCard],
    lang: str,
    cur: Currency | None = None,
    extra: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """Several cards, one after the other; cluster cards under their method's name.

    ``extra`` maps a card's group id to lines shown on it (future state, last campaign)."""
    head = ""
    if cards and cards[0].scope != "rfm":
        head = f"<h3>{html.escape(METHOD_NAMES.get(cards[0].scope, cards[0].scope))}</h3>\n"
    extra = extra or {}
    return head + "\n".join(card_html(c, lang, cur, extra.get(c.group, ())) for c in cards)


def card_lines(
    summary: Any, scope: str, names: Mapping[str, str], lang: str
) -> dict[str, list[str]]:
    """Per group of ``scope`` (``rfm`` or a method): its future state and, for RFM segments,
    the latest campaign's result, as sentences for its card."""
    from segwork.currency import currency
    from segwork.report.future import future_sentence
    from segwork.report.loop import campaign_card_line

    out: dict[str, list[str]] = {}
    pred = getattr(summary, "prediction", None)
    cur = currency(getattr(summary, "currency", None))
    if pred is not None:
        states = pred.segments if scope == "rfm" else pred.clusters.get(scope, {})
        for gid, state in states.items():
            group = "-1" if gid == "noise" else gid
            name = names.get(gid, names.get(group, gid))
            out.setdefault(group, []).append(
                future_sentence(name, state, pred.horizon_days, lang, cur)
            )
    if scope == "rfm":
        for gid in summary.rfm.groups:
            line = campaign_card_line(getattr(summary, "feedback", None), gid, lang)
            if line:
                out.setdefault(gid, []).append(line)
    return out


class CardsView:
    """Displays cards as HTML in a notebook (and as plain text elsewhere)."""

    def __init__(
        self,
        cards: Sequence[ProfileCard],
        lang: str,
        cur: Currency | None = None,
        extra: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.cards = list(cards)
        self.lang = lang
        self.cur = cur
        self.extra = extra or {}

    def _repr_html_(self) -> str:
        """Rich display in Jupyter."""
        return cards_html(self.cards, self.lang, self.cur, self.extra)

    def __repr__(self) -> str:
        """Plain text: one line per card (what nbval compares)."""
        return "\n".join(
            f"{c.name}: {c.customers:,} · {c.customer_share:.1%} · {c.revenue_share:.1%}"
            for c in self.cards
        )


class MethodCards:
    """Cluster cards of every method, grouped under its name; a method whose clusters are no
    segments (HDBSCAN without density structure) gets its verdict and outliers in words instead."""

    def __init__(self, art: Any, lang: str) -> None:
        from segwork.config import METHODS
        from segwork.profile import cluster_cards
        from segwork.report.clusterwords import (
            outliers_sentence,
            segment_methods,
            structure_sentence,
        )
        from segwork.report.views import method, money

        self.lang, self.cur = lang, money(art)
        self.extra: dict[str, dict[str, list[str]]] = {}
        usable = set(segment_methods(art.summary))
        self.parts: list[tuple[str, list[ProfileCard], list[str]]] = []
        for m in METHODS:
            ms = method(art, m)
            if ms is None:
                continue
            if m in usable:
                found = cluster_cards(art.customers, art.top, m, ms, art.segment_map, lang)
                names = {c.group: c.name for c in found}
                self.extra[m] = card_lines(art.summary, m, names, lang)
                self.parts.append((m, found, []))
            else:
                words = [
                    structure_sentence(art.summary, lang),
                    outliers_sentence(art.summary, lang),
                ]
                self.parts.append((m, [], [w for w in words if w and m == "hdbscan"]))

    def _repr_html_(self) -> str:
        """Each method's cards (or its verdict) under its name."""
        out = []
        for m, found, words in self.parts:
            if found:
                out.append(cards_html(found, self.lang, self.cur, self.extra.get(m)))
            elif words:
                out.append(f"<h3>{html.escape(METHOD_NAMES.get(m, m))}</h3>")
                out.append("".join(f"<p>{html.escape(w)}</p>" for w in words))
        return "\n".join(out)

    def __repr__(self) -> str:
        """Plain text: per method, one line per card or its verdict."""
        lines = []
        for m, found, words in self.parts:
            lines.append(METHOD_NAMES.get(m, m))
            lines += [repr(CardsView(found, self.lang))] if found else words
        return "\n".join(lines)
