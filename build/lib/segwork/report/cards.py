"""Profile cards for readers: HTML blocks (every data-derived string escaped) and a notebook view."""

from __future__ import annotations

import html
from collections.abc import Sequence

from segwork.profile import ProfileCard, _t


def _fmt_money(v: float) -> str:
    """Thousands-separated whole amount."""
    return f"{v:,.0f}"


def card_html(card: ProfileCard, lang: str) -> str:
    """One card as an HTML block; every data-derived string is escaped."""
    e = html.escape
    ko = lang == "ko"
    lines = [
        "<div class='segwork-card' style='border:1px solid #ccd;border-radius:6px;padding:8px 12px;margin:6px 0'>",
        f"<h4 style='margin:2px 0'>{e(card.name)}"
        + (f" <small style='color:#667'>· {e(card.stage)}</small>" if card.stage else "")
        + "</h4>",
        "<p style='margin:2px 0'>"
        + (
            f"고객 {card.customers:,}명 ({card.customer_share:.1%}) · 매출 {_fmt_money(card.revenue)} ({card.revenue_share:.1%})"
            if ko
            else f"{card.customers:,} customers ({card.customer_share:.1%}) · revenue {_fmt_money(card.revenue)} ({card.revenue_share:.1%})"
        )
        + "</p>",
        "<p style='margin:2px 0'>"
        + (
            f"중앙값: 최근성 {card.median_recency_days:,.0f}일 · 구매 {card.median_frequency:,.0f}회 · 금액 {_fmt_money(card.median_monetary)}"
            if ko
            else f"Medians: recency {card.median_recency_days:,.0f} days · {card.median_frequency:,.0f} orders · spend {_fmt_money(card.median_monetary)}"
        )
        + "</p>",
    ]
    for key, values in (
        ("top_countries", card.top_countries),
        ("top_products", card.top_products),
        ("rules", card.rules),
    ):
        if values:
            lines.append(
                f"<p style='margin:2px 0'><b>{e(_t(key, lang))}</b>: {e(', '.join(values))}</p>"
            )
    if card.kpi:
        lines.append(f"<p style='margin:2px 0'><b>{e(_t('kpi', lang))}</b>: {e(card.kpi)}</p>")
    if card.actions:
        items = "".join(f"<li>{e(a)}</li>" for a in card.actions)
        lines.append(f"<b>{e(_t('actions', lang))}</b><ul style='margin:2px 0'>{items}</ul>")
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
