"""Profile cards for readers: HTML blocks (every data-derived string escaped) and a notebook view."""

from __future__ import annotations

import html
from collections.abc import Sequence

from segwork.profile import ProfileCard
from segwork.report.views import rule_text
from segwork.text import catalogue


def _fmt_money(v: float) -> str:
    """Thousands-separated whole amount."""
    return f"{v:,.0f}"


def card_html(card: ProfileCard, lang: str) -> str:
    """One card as an HTML block; every data-derived string is escaped."""
    e = html.escape
    t = catalogue(lang)
    names = t["columns"]
    lines = [
        "<div class='segwork-card' style='border:1px solid #ccd;border-radius:6px;padding:8px 12px;margin:6px 0'>",
        f"<h4 style='margin:2px 0'>{e(card.name)}"
        + (f" <small style='color:#667'>· {e(card.stage)}</small>" if card.stage else "")
        + "</h4>",
        "<p style='margin:2px 0'>"
        + e(
            t(
                "cards.size",
                customers=card.customers,
                customer_share=card.customer_share,
                revenue=_fmt_money(card.revenue),
                revenue_share=card.revenue_share,
            )
        )
        + "</p>",
        "<p style='margin:2px 0'>"
        + e(
            t(
                "cards.medians",
                recency=card.median_recency_days,
                frequency=card.median_frequency,
                monetary=_fmt_money(card.median_monetary),
            )
        )
        + "</p>",
    ]
    for key, values in (
        ("top_countries", card.top_countries),
        ("top_products", card.top_products),
        ("rules", card.rules),
    ):
        if values:
            shown = [rule_text(v, lang) for v in values] if key == "rules" else values
            lines.append(
                f"<p style='margin:2px 0'><b>{e(names[key])}</b>: {e(', '.join(shown))}</p>"
            )
    if card.kpi:
        lines.append(f"<p style='margin:2px 0'><b>{e(names['kpi'])}</b>: {e(card.kpi)}</p>")
    if card.actions:
        items = "".join(f"<li>{e(a)}</li>" for a in card.actions)
        lines.append(f"<b>{e(names['actions'])}</b><ul style='margin:2px 0'>{items}</ul>")
    lines.append("</div>")
    return "\n".join(lines)


def cards_html(cards: Sequence[ProfileCard], lang: str) -> str:
    """Several cards, one after the other."""
    return "\n".join(card_html(c, lang) for c in cards)


class CardsView:
    """Displays cards as HTML in a notebook (and as plain text elsewhere)."""

    def __init__(self, cards: Sequence[ProfileCard], lang: str) -> None:
        self.cards = list(cards)
        self.lang = lang

    def _repr_html_(self) -> str:
        """Rich display in Jupyter."""
        return cards_html(self.cards, self.lang)

    def __repr__(self) -> str:
        """Plain text: one line per card (what nbval compares)."""
        return "\n".join(
            f"{c.name}: {c.customers} customers, {c.customer_share:.1%} of customers, "
            f"{c.revenue_share:.1%} of revenue"
            for c in self.cards
        )
