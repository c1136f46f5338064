"""A seeded synthetic online shop with planted behavioural personas (segwork's default data).

Customers are generated in fixed blocks of ``SynthSpec.block_customers``; each block draws from
its own ``numpy.random.SeedSequence(seed, spawn_key=(1, block))``, so the rows depend only on the
spec and never on how many customers are written per chunk. Everything inside a block is
vectorised numpy plus pyarrow ``take``; no Python loop runs per customer or per line.

The shop also has a true future: each customer's orders in the ``future_days`` after the end
date, drawn from its own stream ``spawn_key=(2, block)`` (so the past never depends on it) and
written to ``future.parquet`` beside the transactions, never into them. A share of VIPs are
planted as *slipping* (stream ``(3, block)``): VIP order counts and value, but their orders
thin out towards the end (decaying rate, last order 100-200 days ago) and few buy again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

PERSONAS: tuple[str, ...] = ("vip", "loyal", "new", "at_risk", "lost", "occasional")

TRANSACTION_SCHEMA = pa.schema(
    [
        ("invoice_id", pa.string()),
        ("customer_id", pa.string()),
        ("invoice_date", pa.timestamp("us")),
        ("quantity", pa.int64()),
        ("unit_price", pa.float64()),
        ("product_id", pa.string()),
        ("product_name", pa.string()),
        ("country", pa.string()),
    ]
)
#: Ground truth per customer; ``n_orders`` counts planned purchase orders, including the few
#: whose customer ID is later lost (the missing-ID fault), so it can exceed the visible count.
PERSONA_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("persona", pa.string()),
        ("country", pa.string()),
        ("first_purchase", pa.timestamp("us")),
        ("last_purchase", pa.timestamp("us")),
        ("n_orders", pa.int64()),
        ("slipping_vip", pa.bool_()),  # a VIP whose buying decays and mostly stops
        ("alive", pa.bool_()),  # still buying after the end date (the true future)
    ]
)
#: The true future: one row per purchase order after the end date (order level, no lines).
FUTURE_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("invoice_date", pa.timestamp("us")),
        ("amount", pa.float64()),
    ]
)
FUTURE_FILE = "future.parquet"
#: Per persona (PERSONAS order): probability of still buying after the end date, and the
#: future purchase rate as a multiple of the customer's own past rate.
_FUTURE_ALIVE = (0.95, 0.9, 0.6, 0.1, 0.02, 0.2)
_SLIPPING_ALIVE = 0.1
_MIN_RATE = 1.0 / 120.0  # orders per day of a buyer with no past rate to speak of (one order)

#: Non-product codes (id, name); the shop adds them to orders like real postage/manual lines.
NON_PRODUCT_CODES: tuple[tuple[str, str], ...] = (
    ("POST", "POSTAGE"),
    ("M", "Manual"),
    ("BANK CHARGES", "Bank Charges"),
)
_NON_PRODUCT_SHARE = (0.7, 0.2, 0.1)
#: Descriptions written on stock-adjustment lines (negative quantity, no customer, price 0).
ADJUSTMENT_NAMES: tuple[str, ...] = ("damaged", "lost in stock check", "wet/mouldy", "?")
_OTHER_COUNTRIES: tuple[tuple[str, float], ...] = (
    ("Germany", 0.22),
    ("France", 0.20),
    ("EIRE", 0.16),
    ("Netherlands", 0.10),
    ("Spain", 0.08),
    ("Belgium", 0.07),
    ("Switzerland", 0.06),
    ("Portugal", 0.05),
    ("Australia", 0.04),
    ("Norway", 0.02),
)
_ADJECTIVES = (
    "VINTAGE", "RETRO", "SWEET", "LARGE", "SMALL", "MINI", "JUMBO", "FRENCH", "REGENCY",
    "HANGING", "PAINTED", "FELT", "GLASS", "WOODEN", "ENAMEL", "PAPER", "CERAMIC", "METAL",
    "SCANDINAVIAN", "CHRISTMAS",
)  # fmt: skip
_COLOURS = (
    "WHITE", "RED", "PINK", "BLUE", "GREEN", "IVORY", "CREAM", "BLACK", "SILVER", "GOLD",
    "SPOTTY", "STRIPED", "FLORAL", "HEART", "STAR",
)  # fmt: skip
_NOUNS = (
    "T-LIGHT HOLDER", "LANTERN", "CAKE STAND", "TEA CUP", "LUNCH BAG", "JAM JAR", "BUNTING",
    "DOORSTOP", "PHOTO FRAME", "NOTEBOOK", "MUG", "BOWL", "CANDLE", "CUSHION COVER",
    "SHOPPING BAG", "CLOCK", "TRINKET BOX", "COAT HANGER", "GARLAND", "WATER BOTTLE",
)  # fmt: skip
_MONTH_WEIGHT = (0.75, 0.8, 0.9, 0.9, 0.95, 0.95, 0.95, 1.0, 1.15, 1.3, 1.7, 1.2)
_WEEKDAY_WEIGHT = (1.0, 1.1, 1.1, 1.2, 0.9, 0.25, 0.6)  # Monday first
_HOUR_WEIGHT = (1, 3, 6, 8, 9, 8, 7, 6, 4, 2, 1, 1, 0.5)  # 08:00 .. 20:00 opening
_FIRST_HOUR = 8
_US_PER_DAY = 86_400_000_000
_INVOICES_PER_CUSTOMER = 100  # invoice numbers reserved per customer of a block (max 40+40+adj)


@dataclass(frozen=True)
class _Persona:
    """Behaviour of one persona: order count, recency window, tenure and basket shape."""

    orders: tuple[int, int]  # inclusive range of purchase orders
    last: tuple[int, int]  # last purchase, days before the end date (inclusive)
    span: tuple[int, int]  # days from first to last purchase (when >= 2 orders)
    first_max: int | None  # first purchase at most this many days before the end
    lines: float  # mean lines per order
    qty: float  # median quantity per line


#: Aligned with PERSONAS; tuned so K-Means(k=6) on log1p RFM recovers them (ARI >= 0.85).
_BEHAVIOUR: tuple[_Persona, ...] = (
    _Persona(orders=(15, 40), last=(0, 20), span=(300, 700), first_max=None, lines=14, qty=10),
    _Persona(orders=(5, 12), last=(3, 60), span=(120, 500), first_max=None, lines=10, qty=6),
    _Persona(orders=(1, 2), last=(0, 44), span=(0, 44), first_max=44, lines=5, qty=4),
    _Persona(orders=(4, 10), last=(150, 300), span=(150, 400), first_max=None, lines=9, qty=6),
    _Persona(orders=(1, 2), last=(420, 10_000), span=(0, 90), first_max=None, lines=7, qty=6),
    _Persona(orders=(1, 3), last=(50, 250), span=(0, 120), first_max=None, lines=3, qty=2),
)


@dataclass(frozen=True)
class SynthSpec:
    """Everything that determines a synthetic shop; equal specs give identical data."""

    n_customers: int = 5_000
    seed: int = 0
    start: str = "2024-01-01"  # first possible transaction date
    end: str = "2025-12-31"  # last possible transaction date (as-of is the day after)
    n_products: int = 1_200
    zipf_exponent: float = 1.1  # product popularity ~ 1 / rank**exponent
    home_country: str = "United Kingdom"
    home_share: float = 0.9  # share of customers in the home country
    persona_shares: tuple[float, ...] = (0.05, 0.15, 0.12, 0.18, 0.30, 0.20)  # PERSONAS order
    cancel_order_rate: float = 0.03  # share of purchase orders with a later partial return
    missing_customer_rate: float = 0.015  # share of lines with no customer ID
    duplicate_rate: float = 0.003  # share of lines that are exact copies of the line before
    non_product_rate: float = 0.004  # share of lines with POST / M / BANK CHARGES codes
    zero_price_rate: float = 0.001  # share of lines with unit_price 0
    adjustment_rate: float = 0.0002  # share of lines that are negative stock adjustments
    block_customers: int = 1_000  # customers per random block (part of the data's identity)
    slipping_vip_share: float = 0.25  # share of VIPs planted as slipping
    future_days: int = 180  # days of true future simulated after the end date

    def __post_init__(self) -> None:
        """Reject specs the generator cannot honour, with a one-line reason."""
        if self.n_customers < 1 or self.block_customers < 1 or self.n_products < 10:
            raise ValueError("n_customers and block_customers must be >= 1, n_products >= 10")
        if len(self.persona_shares) != len(PERSONAS) or any(s < 0 for s in self.persona_shares):
            raise ValueError(f"persona_shares needs {len(PERSONAS)} non-negative shares")
        if abs(sum(self.persona_shares) - 1.0) > 1e-9:
            raise ValueError("persona_shares must sum to 1")
        if self.n_days < 450:
            raise ValueError("start..end must span at least 450 days for the lost persona")
        rates = (
            self.cancel_order_rate,
            self.missing_customer_rate,
            self.duplicate_rate,
            self.non_product_rate,
            self.zero_price_rate,
            self.adjustment_rate,
        )
        if not all(0.0 <= r <= 0.2 for r in rates) or not 0.0 <= self.home_share <= 1.0:
            raise ValueError("fault rates must lie in [0, 0.2] and home_share in [0, 1]")
        if not 0.0 <= self.slipping_vip_share <= 1.0 or self.future_days < 0:
            raise ValueError("slipping_vip_share must lie in [0, 1] and future_days be >= 0")

    @property
    def n_days(self) -> int:
        """Number of calendar days from start to end inclusive."""
        return int((np.datetime64(self.end, "D") - np.datetime64(self.start, "D")).astype(int)) + 1

    @property
    def n_blocks(self) -> int:
        """Number of random blocks the customers are split into."""
        return -(-self.n_customers // self.block_customers)


@dataclass(frozen=True)
class _Shop:
    """Block-independent tables: calendar weights, catalogue and country list."""

    start_us: int
    day_cum: np.ndarray  # cumulative day weights, for inverse-CDF date sampling
    pop_cum: np.ndarray  # cumulative product popularity
    base_price: np.ndarray  # per catalogue product
    product_ids: pa.Array  # catalogue ids, then the non-product codes
    product_names: pa.Array  # catalogue names, non-product names, adjustment names
    countries: pa.Array  # home country first
    country_p: np.ndarray


def _day_weights(spec: SynthSpec) -> np.ndarray:
    """Relative shop traffic per calendar day: month season x weekday, closed on holidays."""
    days = np.arange(np.datetime64(spec.start, "D"), np.datetime64(spec.end, "D") + 1)
    month = days.astype("datetime64[M]").astype(np.int64) % 12
    weekday = (days.astype(np.int64) + 3) % 7
    day_of_month = (days - days.astype("datetime64[M]")).astype(np.int64) + 1
    closed = ((month == 11) & np.isin(day_of_month, (25, 26))) | (
        (month == 0) & (day_of_month == 1)
    )
    return np.where(
        closed, 0.0, np.asarray(_MONTH_WEIGHT)[month] * np.asarray(_WEEKDAY_WEIGHT)[weekday]
    )


def _catalogue(spec: SynthSpec, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """Product stock codes and distinct names, e.g. ('21734', 'VINTAGE RED LANTERN')."""
    combos = len(_ADJECTIVES) * len(_COLOURS) * len(_NOUNS)
    if spec.n_products > combos:
        raise ValueError(f"n_products must be <= {combos}")
    picks = rng.choice(combos, size=spec.n_products, replace=False)
    a, rest = np.divmod(picks, len(_COLOURS) * len(_NOUNS))
    c, n = np.divmod(rest, len(_NOUNS))
    names = [f"{_ADJECTIVES[i]} {_COLOURS[j]} {_NOUNS[k]}" for i, j, k in zip(a, c, n, strict=True)]
    codes = rng.choice(np.arange(10_000, 90_000), size=spec.n_products, replace=False)
    suffix = rng.choice(np.array(["", "", "", "A", "B", "C"]), size=spec.n_products)
    ids = [f"{code}{s}" for code, s in zip(codes, suffix, strict=True)]
    return ids, names


def _shop(spec: SynthSpec) -> _Shop:
    """Build the calendar, catalogue and countries from the spec's own seed stream."""
    rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(0,)))
    ids, names = _catalogue(spec, rng)
    pop = 1.0 / np.arange(1, spec.n_products + 1) ** spec.zipf_exponent
    base_price = np.round(np.exp(rng.normal(np.log(2.1), 0.9, spec.n_products)), 2).clip(0.1)
    other_p = np.array([p for _, p in _OTHER_COUNTRIES])
    country_p = np.concatenate([[spec.home_share], (1 - spec.home_share) * other_p / other_p.sum()])
    return _Shop(
        start_us=int(np.datetime64(spec.start, "us").astype(np.int64)),
        day_cum=np.cumsum(_day_weights(spec)),
        pop_cum=np.cumsum(pop) / pop.sum(),
        base_price=base_price,
        product_ids=pa.array(ids + [c for c, _ in NON_PRODUCT_CODES], pa.string()),
        product_names=pa.array(
            names + [n for _, n in NON_PRODUCT_CODES] + list(ADJUSTMENT_NAMES), pa.string()
        ),
        countries=pa.array([spec.home_country] + [c for c, _ in _OTHER_COUNTRIES], pa.string()),
        country_p=country_p,
    )


def _sample_days(
    rng: np.random.Generator, cum: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Day indices in [lo, hi] drawn proportional to the day weights (inverse CDF)."""
    base = np.where(lo > 0, cum[np.maximum(lo - 1, 0)], 0.0)
    top = cum[hi]
    u = base + (1.0 - rng.random(lo.shape)) * (top - base)
    day = np.searchsorted(cum, u, side="left")
    return np.where(top > base, np.clip(day, lo, hi), lo)


def _persona_counts(n: int, shares: tuple[float, ...]) -> np.ndarray:
    """Whole customers per persona by largest remainder, so blocks hit the shares exactly."""
    raw = np.asarray(shares) * n
    counts = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def _param(values: np.ndarray, attr: str, index: int | None = None) -> np.ndarray:
    """Per-customer array of one persona attribute (optionally one end of a range)."""
    table = [getattr(b, attr) for b in _BEHAVIOUR]
    if index is not None:
        table = [t[index] for t in table]
    return np.asarray(table, dtype=np.float64)[values]


def _customers(
    spec: SynthSpec, shop: _Shop, rng: np.random.Generator, n: int, slip_rng: np.random.Generator
) -> dict:
    """Per-customer persona, country, order count, first/last purchase day and basket scale.

    Slipping VIPs take their own last-purchase day from ``slip_rng``; every draw of ``rng`` is
    the same as without them, so the other customers' rows do not change.
    """
    last_day = spec.n_days - 1
    persona = rng.permutation(
        np.repeat(np.arange(len(PERSONAS)), _persona_counts(n, spec.persona_shares))
    )
    country = np.searchsorted(np.cumsum(shop.country_p), rng.random(n) * shop.country_p.sum())
    lo_o, hi_o = _param(persona, "orders", 0), _param(persona, "orders", 1)
    orders = rng.integers(lo_o.astype(np.int64), hi_o.astype(np.int64) + 1)
    lo_l = np.clip(last_day - _param(persona, "last", 1), 0, last_day).astype(np.int64)
    hi_l = np.clip(last_day - _param(persona, "last", 0), 0, last_day).astype(np.int64)
    last = _sample_days(rng, shop.day_cum, lo_l, hi_l)
    slipping = (persona == 0) & (slip_rng.random(n) < spec.slipping_vip_share)
    last = np.where(slipping, last_day - slip_rng.integers(100, 201, n), last)
    first_max = np.asarray([b.first_max if b.first_max is not None else 10**6 for b in _BEHAVIOUR])
    floor = np.maximum(last_day - first_max[persona], 0)
    lo_f = np.clip(last - _param(persona, "span", 1).astype(np.int64), floor, last)
    hi_f = np.clip(last - _param(persona, "span", 0).astype(np.int64), lo_f, last)
    first = np.where(orders > 1, _sample_days(rng, shop.day_cum, lo_f, hi_f), last)
    return {
        "persona": persona,
        "slipping": slipping,
        "country": country,
        "orders": orders,
        "first": first,
        "last": last,
        "lines": (_param(persona, "lines") - 1) * np.exp(rng.normal(0, 0.3, n)),
        "qty": np.log(_param(persona, "qty")) + rng.normal(0, 0.3, n),
    }


def _shop_seconds(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds after midnight within opening hours, busiest around midday."""
    hour_p = np.asarray(_HOUR_WEIGHT) / sum(_HOUR_WEIGHT)
    hour = _FIRST_HOUR + rng.choice(hour_p.size, size=n, p=hour_p)
    return hour * 3600 + rng.integers(0, 3600, n)


def _orders(shop: _Shop, rng: np.random.Generator, cust: dict) -> dict:
    """One row per purchase order: owner, day, timestamp, line count, first/last flag."""
    k = cust["orders"]
    owner = np.repeat(np.arange(k.size), k)
    pos = np.arange(owner.size) - np.repeat(np.cumsum(k) - k, k)
    first, last = cust["first"][owner], cust["last"][owner]
    mid = _sample_days(rng, shop.day_cum, first, last)
    # slipping VIPs: orders crowd towards the first purchase, thinning out (a decaying rate)
    slip = cust["slipping"][owner]
    early = first + ((mid - first) / np.maximum(last - first, 1)) ** 2 * (last - first)
    mid = np.where(slip, np.round(early).astype(np.int64), mid)
    day = np.where(pos == k[owner] - 1, last, np.where(pos == 0, first, mid))
    ts = shop.start_us + day * _US_PER_DAY + _shop_seconds(rng, owner.size) * 1_000_000
    n_lines = 1 + rng.poisson(cust["lines"][owner])
    middle = (pos > 0) & (pos < k[owner] - 1)
    return {"owner": owner, "day": day, "ts": ts, "lines": n_lines, "middle": middle}


def _popular(shop: _Shop, rng: np.random.Generator, n: int) -> np.ndarray:
    """Catalogue indices drawn from the Zipf popularity."""
    return np.minimum(np.searchsorted(shop.pop_cum, rng.random(n)), shop.pop_cum.size - 1)


def _distinct_products(shop: _Shop, rng: np.random.Generator, order: np.ndarray) -> np.ndarray:
    """Products per line, redrawn until (almost always) distinct within each order."""
    product = _popular(shop, rng, order.size)
    for _ in range(10):
        key = order * shop.pop_cum.size + product
        srt = np.argsort(key, kind="stable")
        again = srt[1:][key[srt][1:] == key[srt][:-1]]
        if again.size == 0:
            break
        product[again] = _popular(shop, rng, again.size)
    return product


def _purchase_lines(shop: _Shop, rng: np.random.Generator, cust: dict, orders: dict) -> dict:
    """Purchase lines: Zipf-popular products, lognormal quantities, bulk discount on price."""
    order = np.repeat(np.arange(orders["lines"].size), orders["lines"])
    starts = np.cumsum(orders["lines"]) - orders["lines"]
    seq = np.arange(order.size) - np.repeat(starts, orders["lines"])
    product = _distinct_products(shop, rng, order)
    log_q = cust["qty"][orders["owner"][order]] + rng.normal(0, 0.8, order.size)
    qty = np.maximum(1, np.round(np.exp(log_q))).astype(np.int64)
    price = np.round(shop.base_price[product] * np.where(qty >= 24, 0.85, 1.0), 2)
    return {"inv": order, "seq": seq, "pid": product, "name": product, "qty": qty, "price": price}


def _returns(
    spec: SynthSpec, shop: _Shop, rng: np.random.Generator, orders: dict, lines: dict
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Return invoices ('C' + number) 1-14 days after a share of orders, for part of its lines.

    Gives (per-return order index, timestamps, lines); line ``inv`` is the return's own index.
    """
    returned = rng.random(orders["ts"].size) < spec.cancel_order_rate
    c_order = np.flatnonzero(returned)
    first_line = lines["seq"] == 0
    pick = np.flatnonzero(
        returned[lines["inv"]] & (first_line | (rng.random(first_line.size) < 0.35))
    )
    c_day = np.minimum(orders["day"][c_order] + rng.integers(1, 15, c_order.size), spec.n_days - 1)
    c_ts = shop.start_us + c_day * _US_PER_DAY + _shop_seconds(rng, c_order.size) * 1_000_000
    c_ts = np.maximum(c_ts, orders["ts"][c_order] + 60_000_000)  # same-day returns on the last day
    index_of = np.full(orders["ts"].size, -1)
    index_of[c_order] = np.arange(c_order.size)
    c_lines = {k: v[pick] for k, v in lines.items()}
    c_lines["inv"] = index_of[lines["inv"][pick]]
    c_lines["qty"] = -rng.integers(1, lines["qty"][pick] + 1)
    return c_order, c_ts, c_lines


def _non_product_lines(
    spec: SynthSpec, rng: np.random.Generator, orders: dict, n_lines: int
) -> dict:
    """POST / M / BANK CHARGES lines appended to some orders, at ``non_product_rate`` of lines."""
    n_orders = orders["ts"].size
    p = min(1.0, spec.non_product_rate * n_lines / max(n_orders, 1))
    inv = np.flatnonzero(rng.random(n_orders) < p)
    kind = rng.choice(len(NON_PRODUCT_CODES), size=inv.size, p=_NON_PRODUCT_SHARE)
    manual = np.round(np.exp(rng.normal(np.log(6.0), 1.0, inv.size)), 2)
    price = np.choose(kind, [np.full(inv.size, 18.0), manual, np.full(inv.size, 15.0)])
    qty = np.where(kind == 0, rng.integers(1, 4, inv.size), 1)
    code = spec.n_products + kind
    seq = np.full(inv.size, 10_000)
    return {"inv": inv, "seq": seq, "pid": code, "name": code, "qty": qty, "price": price}


def _adjustments(
    spec: SynthSpec, shop: _Shop, rng: np.random.Generator, n_lines: int, n: int
) -> tuple[np.ndarray, dict]:
    """Stock adjustments: own invoices, no customer, negative quantity, price 0 (timestamps, lines)."""
    m = min(rng.binomial(n_lines, spec.adjustment_rate), 10 * n)
    day = _sample_days(rng, shop.day_cum, np.zeros(m, np.int64), np.full(m, spec.n_days - 1))
    ts = shop.start_us + day * _US_PER_DAY + _shop_seconds(rng, m) * 1_000_000
    name = spec.n_products + len(NON_PRODUCT_CODES) + rng.integers(0, len(ADJUSTMENT_NAMES), m)
    lines = {
        "inv": np.arange(m),
        "seq": np.zeros(m, np.int64),
        "pid": _popular(shop, rng, m),
        "name": name,
        "qty": -rng.integers(1, 60, m),
        "price": np.zeros(m),
    }
    return ts, lines


def _missing_id_orders(
    spec: SynthSpec, rng: np.random.Generator, orders: dict, n_lines: int
) -> np.ndarray:
    """Orders whose customer ID is lost: middle orders only, so first/last purchase stay true."""
    elig = orders["middle"]
    elig_lines = orders["lines"][elig].sum()
    p = min(1.0, spec.missing_customer_rate * n_lines / elig_lines) if elig_lines else 0.0
    return elig & (rng.random(elig.size) < p)


def _concat(parts: list[dict], offsets: list[int]) -> dict:
    """Stack line groups, shifting each group's invoice index by its offset."""
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if k != "inv"}
    out["inv"] = np.concatenate([p["inv"] + off for p, off in zip(parts, offsets, strict=True)])
    return out


def _block(spec: SynthSpec, shop: _Shop, block: int) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Generate one block of customers: (transaction lines, persona truth, future orders)."""
    rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(1, block)))
    slip_rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(3, block)))
    g0 = block * spec.block_customers
    n = min(spec.block_customers, spec.n_customers - g0)
    cust = _customers(spec, shop, rng, n, slip_rng)
    orders = _orders(shop, rng, cust)
    buys = _purchase_lines(shop, rng, cust, orders)
    n_orders, n_lines = orders["ts"].size, buys["inv"].size
    buys["price"] = np.where(rng.random(n_lines) < spec.zero_price_rate, 0.0, buys["price"])
    c_order, c_ts, c_lines = _returns(spec, shop, rng, orders, buys)
    extra = _non_product_lines(spec, rng, orders, n_lines)
    adj_ts, adj_lines = _adjustments(spec, shop, rng, n_lines, n)
    no_id = _missing_id_orders(spec, rng, orders, n_lines)

    inv = _invoices(cust, orders, no_id, c_order, c_ts, adj_ts)
    lines = _concat([buys, c_lines, extra, adj_lines], [0, n_orders, 0, n_orders + c_order.size])
    dup_p = spec.duplicate_rate / (1 + spec.duplicate_rate)
    n_all = lines["inv"].size
    take = np.concatenate([np.arange(n_all), np.flatnonzero(rng.random(n_all) < dup_p)])
    rows = take[np.lexsort((lines["seq"][take], inv["rank"][lines["inv"][take]]))]
    value = np.bincount(
        orders["owner"][buys["inv"]], weights=buys["qty"] * buys["price"], minlength=n
    ) / np.maximum(cust["orders"], 1)
    fut_rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(2, block)))
    future = _future(spec, shop, fut_rng, cust, value)
    trans, truth = _tables(shop, g0, cust, inv, {k: v[rows] for k, v in lines.items()})
    truth = truth.set_column(
        truth.schema.get_field_index("alive"), "alive", pa.array(future.pop("alive"))
    )
    return trans, truth, _future_table(shop, g0, future)


def _future(
    spec: SynthSpec, shop: _Shop, rng: np.random.Generator, cust: dict, value: np.ndarray
) -> dict:
    """Orders in the ``future_days`` after the end date: alive customers keep their past rate.

    The rate is the customer's own orders per day between first and last purchase (at least
    ``_MIN_RATE``); the order value is their past mean order value with lognormal noise.
    """
    n = cust["persona"].size
    alive_p = np.where(
        cust["slipping"], _SLIPPING_ALIVE, np.asarray(_FUTURE_ALIVE)[cust["persona"]]
    )
    alive = rng.random(n) < alive_p
    span = np.maximum(cust["last"] - cust["first"], 1)
    rate = np.where(cust["orders"] > 1, (cust["orders"] - 1) / span, _MIN_RATE)
    rate = np.maximum(rate, _MIN_RATE)
    k = np.where(alive, rng.poisson(rate * spec.future_days), 0)
    owner = np.repeat(np.arange(n), k)
    day = spec.n_days + rng.integers(0, max(spec.future_days, 1), owner.size)
    ts = shop.start_us + day * _US_PER_DAY + _shop_seconds(rng, owner.size) * 1_000_000
    amount = np.round(value[owner] * np.exp(rng.normal(-0.045, 0.3, owner.size)), 2)
    return {"owner": owner, "ts": ts, "amount": amount, "alive": alive}


def _future_table(shop: _Shop, g0: int, future: dict) -> pa.Table:
    """The future orders of a block as Arrow, in time order."""
    order = np.argsort(future["ts"], kind="stable")
    ids = pc.cast(pa.array(future["owner"][order] + g0 + 100_001), pa.string())
    return pa.table(
        {
            "customer_id": ids,
            "invoice_date": pa.array(future["ts"][order], pa.timestamp("us")),
            "amount": pa.array(future["amount"][order], pa.float64()),
        },
        schema=FUTURE_SCHEMA,
    )


def _invoices(
    cust: dict,
    orders: dict,
    no_id: np.ndarray,
    c_order: np.ndarray,
    c_ts: np.ndarray,
    adj_ts: np.ndarray,
) -> dict:
    """Invoice table: purchase orders, then returns, then adjustments; ranked by time."""
    n_orders, n_adj = orders["ts"].size, adj_ts.size
    ts = np.concatenate([orders["ts"], c_ts, adj_ts])
    owner = np.concatenate([orders["owner"], orders["owner"][c_order]])
    lost_id = np.concatenate([no_id, no_id[c_order]])
    cancel = np.zeros(ts.size, bool)
    cancel[n_orders : n_orders + c_order.size] = True
    rank = np.empty(ts.size, np.int64)
    rank[np.lexsort((np.arange(ts.size), ts))] = np.arange(ts.size)
    return {
        "ts": ts,
        "cust": np.concatenate([np.where(lost_id, -1, owner), np.full(n_adj, -1)]),
        "country": np.concatenate([cust["country"][owner], np.zeros(n_adj, np.int64)]),
        "cancel": cancel,
        "rank": rank,
    }


def _tables(shop: _Shop, g0: int, cust: dict, inv: dict, lines: dict) -> tuple[pa.Table, pa.Table]:
    """Arrow tables for a block: lines in invoice-number order, and the persona truth."""
    n = cust["persona"].size
    at = lines["inv"]
    number = pc.cast(pa.array(1_000_000 + g0 * _INVOICES_PER_CUSTOMER + inv["rank"]), pa.string())
    inv_id = pc.if_else(
        pa.array(inv["cancel"]), pc.binary_join_element_wise("C", number, ""), number
    )
    cust_ids = pc.cast(pa.array(np.arange(g0, g0 + n) + 100_001), pa.string())
    line_cust = inv["cust"][at]
    trans = pa.table(
        {
            "invoice_id": inv_id.take(pa.array(at)),
            "customer_id": cust_ids.take(pa.array(np.maximum(line_cust, 0), mask=line_cust < 0)),
            "invoice_date": pa.array(inv["ts"][at], pa.timestamp("us")),
            "quantity": pa.array(lines["qty"], pa.int64()),
            "unit_price": pa.array(lines["price"], pa.float64()),
            "product_id": shop.product_ids.take(pa.array(lines["pid"])),
            "product_name": shop.product_names.take(pa.array(lines["name"])),
            "country": shop.countries.take(pa.array(inv["country"][at])),
        },
        schema=TRANSACTION_SCHEMA,
    )
    truth = pa.table(
        {
            "customer_id": cust_ids,
            "persona": pa.array(np.asarray(PERSONAS, dtype=object)[cust["persona"]], pa.string()),
            "country": shop.countries.take(pa.array(cust["country"])),
            "first_purchase": pa.array(
                shop.start_us + cust["first"] * _US_PER_DAY, pa.timestamp("us")
            ),
            "last_purchase": pa.array(
                shop.start_us + cust["last"] * _US_PER_DAY, pa.timestamp("us")
            ),
            "n_orders": pa.array(cust["orders"], pa.int64()),
            "slipping_vip": pa.array(cust["slipping"], pa.bool_()),
            "alive": pa.array(np.zeros(n, bool), pa.bool_()),  # set from the future draw
        },
        schema=PERSONA_SCHEMA,
    )
    return trans, truth


def _chunks(
    spec: SynthSpec, chunk_customers: int
) -> Iterator[tuple[pa.Table, pa.Table, pa.Table, int]]:
    """Yield (transactions, personas, future orders, customers done) per chunk of whole blocks."""
    shop = _shop(spec)
    per_chunk = max(1, -(-chunk_customers // spec.block_customers))
    for b0 in range(0, spec.n_blocks, per_chunk):
        parts = [_block(spec, shop, b) for b in range(b0, min(b0 + per_chunk, spec.n_blocks))]
        done = min(spec.n_customers, (b0 + len(parts)) * spec.block_customers)
        yield (*(pa.concat_tables([p[i] for p in parts]) for i in range(3)), done)  # type: ignore[misc]


def generate_with_future(spec: SynthSpec) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(transactions, personas, future orders) in memory, for small n."""
    parts: list[list[pa.Table]] = [[], [], []]
    for *tables, _ in _chunks(spec, spec.n_customers):
        for i, t in enumerate(tables):
            parts[i].append(t)
    t, p, f = (pa.concat_tables(x).to_pandas() for x in parts)
    return t, p, f


def generate(spec: SynthSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(transactions, personas) in memory, for small n; equal to what write_synthetic writes."""
    t, p, _ = generate_with_future(spec)
    return t, p


def write_synthetic(
    out_dir: str | Path,
    spec: SynthSpec,
    chunk_customers: int = 50_000,
    progress: Callable[[int, int], None] | None = None,
    events: EventSpec | None = None,
) -> tuple[Path, Path]:
    """Write out_dir/transactions.parquet, personas.parquet and the true future
    (:data:`FUTURE_FILE`) chunk by chunk (low RAM); returns the first two paths.

    With ``events`` also events.parquet (visits, views, carts, purchases, sign-ups) and
    event_personas.parquet (the customers who never buy); the transactions are the same.
    ``chunk_customers`` is rounded up to whole blocks; the rows never depend on it.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_path, p_path = out / "transactions.parquet", out / "personas.parquet"
    with contextlib.ExitStack() as stack:
        tw = stack.enter_context(pq.ParquetWriter(t_path, TRANSACTION_SCHEMA, compression="zstd"))
        pw = stack.enter_context(pq.ParquetWriter(p_path, PERSONA_SCHEMA, compression="zstd"))
        fw = stack.enter_context(
            pq.ParquetWriter(out / FUTURE_FILE, FUTURE_SCHEMA, compression="zstd")
        )
        if events is None:
            chunks = ((t, p, f, None, None, d) for t, p, f, d in _chunks(spec, chunk_customers))
        else:
            chunks = _event_chunks(spec, events, chunk_customers)
            ew = stack.enter_context(
                pq.ParquetWriter(out / "events.parquet", EVENT_SCHEMA, compression="zstd")
            )
            qw = stack.enter_context(
                pq.ParquetWriter(
                    out / "event_personas.parquet", EVENT_PERSONA_SCHEMA, compression="zstd"
                )
            )
        for trans, truth, future, evs, planted, done in chunks:
            tw.write_table(trans, row_group_size=1_000_000)
            pw.write_table(truth, row_group_size=1_000_000)
            fw.write_table(future, row_group_size=1_000_000)
            if evs is not None:
                ew.write_table(evs, row_group_size=1_000_000)
                qw.write_table(planted, row_group_size=1_000_000)
            if progress is not None:
                progress(done, spec.n_customers)
    return t_path, p_path


# --------------------------------------------------------------------------- behaviour events

#: Customers who appear only in the events (never buy), planted beside the order personas.
EVENT_PERSONAS: tuple[str, ...] = ("newcomer", "browser", "cart_abandoner")
EVENT_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("timestamp", pa.timestamp("us")),
        ("event_type", pa.string()),
    ]
)
EVENT_PERSONA_SCHEMA = pa.schema([("customer_id", pa.string()), ("persona", pa.string())])
_EVENT_ONLY_IDS = 50_000_001  # event-only customer IDs start here (buyers start at 100001)
_US_PER_MIN = 60_000_000


@dataclass(frozen=True)
class EventSpec:
    """The shop's behaviour events: event-only personas, browsing intensity and faults.

    Events draw from their own seed stream per block (``spawn_key=(2, block)``), so the
    transactions of a spec are the same with or without them.
    """

    event_only_shares: tuple[float, ...] = (0.04, 0.10, 0.06)  # EVENT_PERSONAS, of n_customers
    browse_per_order: tuple[float, ...] = (3.0, 3.0, 0.5, 0.5, 0.5, 0.5)  # PERSONAS order
    duplicate_rate: float = 0.002  # share of events written twice
    missing_customer_rate: float = 0.002  # share of events with no customer ID
    future_per_block: int = 2  # events stamped in 2099 (a broken clock), per block
    bot_events: int = 3_000  # one bot per block logs this many views in one day


def _visit_events(
    rng: np.random.Generator, start: np.ndarray, views: np.ndarray, cart: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(visit index, timestamp, type) for visits: a visit, ``views`` views a few minutes apart,
    and a cart when ``cart``; every gap is under 10 minutes, so each stays one visit."""
    n = start.size
    per = 1 + views + cart.astype(np.int64)
    owner = np.repeat(np.arange(n), per)
    pos = np.arange(owner.size) - np.repeat(np.cumsum(per) - per, per)
    step = rng.integers(1, 10, owner.size) * _US_PER_MIN
    step[pos == 0] = 0
    ts = start[owner] + np.cumsum(step) - np.repeat(np.cumsum(step)[np.cumsum(per) - per], per)
    kind = np.where(pos == 0, 0, np.where(pos <= views[owner], 1, 2))  # visit, view, cart
    return owner, ts, kind


_KIND_NAMES = np.array(["visit", "view", "cart", "purchase", "signup"], dtype=object)


def _event_block(
    spec: SynthSpec, ev: EventSpec, shop: _Shop, block: int, trans: pa.Table, truth: pa.Table
) -> tuple[pa.Table, pa.Table]:
    """Events of one block: order sessions, browsing, event-only personas, bots and faults."""
    rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(2, block)))
    end_day = spec.n_days - 1
    cust_ids: list[np.ndarray] = []
    stamps: list[np.ndarray] = []
    kinds: list[np.ndarray] = []

    # 1. every purchase order is a visit: views, a cart, then the purchase at the order's time
    t = trans.to_pandas()
    buys = t[t["customer_id"].notna() & ~t["invoice_id"].str.startswith("C")]
    orders = buys.drop_duplicates("invoice_id")[["customer_id", "invoice_date"]]
    at = orders["invoice_date"].to_numpy("datetime64[us]").astype(np.int64)
    start = at - rng.integers(5, 25, at.size) * _US_PER_MIN
    views = rng.integers(1, 4, at.size)
    owner, ts, kind = _visit_events(rng, start, views, np.ones(at.size, bool))
    ts = np.minimum(ts, at[owner] - _US_PER_MIN)
    cust_ids += [
        orders["customer_id"].to_numpy(object)[owner],
        orders["customer_id"].to_numpy(object),
    ]
    stamps += [ts, at]
    kinds += [kind, np.full(at.size, 3)]

    # 2. buyers browse besides: vip and loyal visit far more than they buy
    p = truth.to_pandas()
    persona = p["persona"].map({name: i for i, name in enumerate(PERSONAS)}).to_numpy()
    n_browse = rng.poisson(np.asarray(ev.browse_per_order)[persona] * p["n_orders"].to_numpy())
    first = (
        p["first_purchase"].to_numpy("datetime64[us]").astype(np.int64) - shop.start_us
    ) // _US_PER_DAY
    last = (
        p["last_purchase"].to_numpy("datetime64[us]").astype(np.int64) - shop.start_us
    ) // _US_PER_DAY
    who = np.repeat(np.arange(len(p)), n_browse)
    lo, hi = np.clip(first[who] - 30, 0, end_day), np.clip(last[who] + 3, 0, end_day)
    day = _sample_days(rng, shop.day_cum, lo, np.maximum(hi, lo))
    b_start = shop.start_us + day * _US_PER_DAY + _shop_seconds(rng, who.size) * 1_000_000
    owner, ts, kind = _visit_events(
        rng, b_start, rng.integers(1, 5, who.size), rng.random(who.size) < 0.05
    )
    cust_ids.append(p["customer_id"].to_numpy(object)[who][owner])
    stamps.append(ts)
    kinds.append(kind)

    # 3. customers who never buy: newcomers, browsers, cart abandoners
    n_block = min(spec.block_customers, spec.n_customers - block * spec.block_customers)
    counts = np.floor(np.asarray(ev.event_only_shares) * n_block).astype(np.int64)
    kind_of = np.repeat(np.arange(len(EVENT_PERSONAS)), counts)
    ids = np.asarray(
        [str(_EVENT_ONLY_IDS + block * spec.block_customers + i) for i in range(kind_of.size)],
        dtype=object,
    )
    # (first visit, last visit) in days before the end, and visits, per event persona
    first_ago = np.select(
        [kind_of == 0, kind_of == 1],
        [rng.integers(0, 26, kind_of.size), rng.integers(60, 400, kind_of.size)],
        rng.integers(60, 300, kind_of.size),
    )
    last_ago = np.select(
        [kind_of == 0, kind_of == 1],
        [rng.integers(0, 26, kind_of.size), rng.integers(0, 30, kind_of.size)],
        rng.integers(8, 40, kind_of.size),
    )
    last_ago = np.minimum(last_ago, first_ago)
    n_visits = np.select(
        [kind_of == 0, kind_of == 1],
        [rng.integers(1, 4, kind_of.size), rng.integers(3, 13, kind_of.size)],
        rng.integers(2, 7, kind_of.size),
    )
    who = np.repeat(np.arange(kind_of.size), n_visits)
    pos = np.arange(who.size) - np.repeat(np.cumsum(n_visits) - n_visits, n_visits)
    lo_day, hi_day = end_day - first_ago[who], end_day - last_ago[who]
    span = np.maximum(hi_day - lo_day, 0)
    day = np.where(
        pos == 0,
        lo_day,
        np.where(pos == n_visits[who] - 1, hi_day, lo_day + rng.integers(0, span + 1)),
    )
    e_start = shop.start_us + day * _US_PER_DAY + _shop_seconds(rng, who.size) * 1_000_000
    # abandoners leave a cart on every visit but the last (at least 8 days before the end)
    cart = (kind_of[who] == 2) & ((pos < n_visits[who] - 1) | (n_visits[who] == 1))
    owner, ts, kind = _visit_events(rng, e_start, rng.integers(1, 6, who.size), cart)
    signup = (pos[owner] == 0) & (kind == 0)
    cust_ids.append(ids[who][owner])
    stamps.append(ts)
    kinds.append(np.where(signup, 4, kind))

    # 4. faults: a bot, broken clocks, lost IDs and doubled rows
    bot_day = shop.start_us + int(rng.integers(0, end_day)) * _US_PER_DAY
    cust_ids.append(np.full(ev.bot_events, f"BOT{block:05d}", dtype=object))
    stamps.append(bot_day + np.sort(rng.integers(0, _US_PER_DAY, ev.bot_events)))
    kinds.append(np.ones(ev.bot_events, np.int64))
    c, s, k = np.concatenate(cust_ids), np.concatenate(stamps), np.concatenate(kinds)
    fut = rng.choice(c.size, ev.future_per_block, replace=False)
    s[fut] = int(np.datetime64("2099-06-01", "us").astype(np.int64)) + s[fut] % _US_PER_DAY
    c = np.where(rng.random(c.size) < ev.missing_customer_rate, None, c)
    dup = np.flatnonzero(rng.random(c.size) < ev.duplicate_rate)
    rows = np.concatenate([np.arange(c.size), dup])
    rows = rows[np.lexsort((rows, s[rows]))]
    events = pa.table(
        {
            "customer_id": pa.array(c[rows], pa.string()),
            "timestamp": pa.array(s[rows], pa.timestamp("us")),
            "event_type": pa.array(_KIND_NAMES[k[rows]], pa.string()),
        },
        schema=EVENT_SCHEMA,
    )
    planted = pa.table(
        {
            "customer_id": pa.array(ids, pa.string()),
            "persona": pa.array(np.asarray(EVENT_PERSONAS, dtype=object)[kind_of], pa.string()),
        },
        schema=EVENT_PERSONA_SCHEMA,
    )
    return events, planted


def _event_chunks(
    spec: SynthSpec, ev: EventSpec, chunk_customers: int
) -> Iterator[tuple[pa.Table, pa.Table, pa.Table, pa.Table, pa.Table, int]]:
    """Yield (transactions, personas, future, events, event personas, customers done) per chunk."""
    shop = _shop(spec)
    per_chunk = max(1, -(-chunk_customers // spec.block_customers))
    for b0 in range(0, spec.n_blocks, per_chunk):
        blocks = range(b0, min(b0 + per_chunk, spec.n_blocks))
        parts = [_block(spec, shop, b) for b in blocks]
        evs = [
            _event_block(spec, ev, shop, b, part[0], part[1])
            for b, part in zip(blocks, parts, strict=True)
        ]
        done = min(spec.n_customers, (b0 + len(parts)) * spec.block_customers)
        yield (
            pa.concat_tables([p[0] for p in parts]),
            pa.concat_tables([p[1] for p in parts]),
            pa.concat_tables([p[2] for p in parts]),
            pa.concat_tables([e[0] for e in evs]),
            pa.concat_tables([e[1] for e in evs]),
            done,
        )


def generate_events(
    spec: SynthSpec, ev: EventSpec | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(events, event-only personas) in memory, for small n; equal to what is written."""
    events, planted = [], []
    for _, _, _, e, p, _ in _event_chunks(spec, ev or EventSpec(), spec.n_customers):
        events.append(e)
        planted.append(p)
    return pa.concat_tables(events).to_pandas(), pa.concat_tables(planted).to_pandas()
