"""Canonical column names, the two public layouts, and the validated YAML config (no I/O on data)."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from segwork.config import DBCV_THRESHOLD, K_RANGE, MIN_SHARE, check_k
from segwork.currency import check_option as check_currency
from segwork.errors import SegworkInputError

#: Canonical columns, in the order the cleaned transaction view exposes them.
CANONICAL = (
    "invoice_id",
    "customer_id",
    "invoice_date",
    "quantity",
    "unit_price",
    "amount",
    "product_id",
    "product_name",
    "country",
    "status",
)
REQUIRED = ("customer_id", "invoice_date")

#: Layouts recognised with no configuration: canonical name -> header in the file.
KNOWN_LAYOUTS: dict[str, dict[str, str]] = {
    "uci_online_retail": {
        "invoice_id": "InvoiceNo",
        "product_id": "StockCode",
        "product_name": "Description",
        "quantity": "Quantity",
        "invoice_date": "InvoiceDate",
        "unit_price": "UnitPrice",
        "customer_id": "CustomerID",
        "country": "Country",
    },
    "online_retail_ii": {
        "invoice_id": "Invoice",
        "product_id": "StockCode",
        "product_name": "Description",
        "quantity": "Quantity",
        "invoice_date": "InvoiceDate",
        "unit_price": "Price",
        "customer_id": "Customer ID",
        "country": "Country",
    },
    # segwork's own synthetic shop writes canonical names.
    "segwork": {name: name for name in CANONICAL if name != "amount"},
}


@dataclass(frozen=True)
class ColumnMap:
    """segwork name -> the user's header. ``None`` means the column is absent."""

    customer_id: str | None = None
    invoice_date: str | None = None
    invoice_id: str | None = None
    quantity: str | None = None
    unit_price: str | None = None
    amount: str | None = None
    product_id: str | None = None
    product_name: str | None = None
    country: str | None = None
    status: str | None = None  # order status (e.g. 취소, 반품): the `tx` view's `status` column

    def as_dict(self) -> dict[str, str]:
        """Only the mapped columns."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class ReadOptions:
    """How to read the file; ``encoding='auto'`` tries UTF-8 (BOM or not), CP949, then Latin-1."""

    encoding: str = "auto"
    date_format: str | None = None
    thousands: str | None = None
    sheet: str | int | list[str | int] | None = None  # Excel: a name, an index, a list, or "all"
    header_row: int | None = None  # 1-based row holding the headers; None = detected


@dataclass(frozen=True)
class CleanRules:
    """Which cleaning rules are on. Every input row is kept or dropped for exactly one reason.

    ``cancellations='drop'`` drops cancelled lines (invoice starting with ``C``, or a status
    in ``cancel_status``) and returns (negative quantity); ``'net'`` keeps returns as negative
    revenue against the customer's purchases, so monetary is net of refunds while frequency
    counts purchase orders only. ``match_cancellations`` also removes the purchase a
    cancellation reverses (same customer, product and units, at or before it) as
    ``cancelled_purchase``, in both modes; ``cancel_status`` values are compared trimmed and
    case-insensitive against the ``status`` column.
    """

    drop_missing_customer: bool = True
    cancellations: Literal["drop", "net"] = "drop"
    match_cancellations: bool = True
    cancel_status: tuple[str, ...] = ()
    drop_non_product: bool = True
    drop_non_positive_quantity: bool = True
    drop_non_positive_price: bool = True
    drop_duplicates: bool = True
    non_product_codes: tuple[str, ...] = (
        "POST",
        "DOT",
        "M",
        "m",
        "C2",
        "D",
        "S",
        "B",
        "CRUK",
        "PADS",
        "DCGSSBOY",
        "DCGSSGIRL",
        "BANK CHARGES",
        "AMAZONFEE",
        "ADJUST",
        "ADJUST2",
        "TEST001",
        "TEST002",
    )
    non_product_prefixes: tuple[str, ...] = ("gift_0001", "DCGS")

    @classmethod
    def standard4(cls) -> CleanRules:
        """The four textbook rules only: customer present, not cancelled, quantity > 0, price > 0."""
        return cls(drop_non_product=False, drop_duplicates=False, match_cancellations=False)


@dataclass(frozen=True)
class RFMOptions:
    """Scoring: quantile bins (equal values always get equal scores) or fixed edges from config."""

    bins: int = 5
    segment_map: str = "ko_crm10"
    fixed_edges: dict[str, list[float]] | None = None  # {"recency_days": [...], ...}
    # "orders": R and F from orders; "visits": from the events (--events); None = visits when
    # events are given, else orders
    basis: Literal["orders", "visits"] | None = None


@dataclass(frozen=True)
class EventOptions:
    """The behaviour-events file (``--events``): its headers, event types, visits and bot rule.

    ``event_types`` maps the file's values (compared trimmed and lower-cased) to visit, view,
    cart, purchase or signup, on top of the common spellings segwork knows; other values are
    kept as ``other`` (they still make a visit) and named in a warning.
    """

    customer_id: str = "customer_id"
    timestamp: str = "timestamp"
    event_type: str | None = None  # None: a column named event_type is used when present
    session_id: str | None = None  # None: a column named session_id is used when present
    event_types: dict[str, str] | None = None  # file value -> visit|view|cart|purchase|signup
    session_gap_minutes: int = 30  # without session_id, a longer gap starts a new visit
    max_events_per_day: float = 500.0  # a customer above this (per active day) is a bot
    cart_window_days: int = 7  # a cart with no order within this many days is abandoned
    repeat_window_days: int = 90  # retention KPI: repeat buyers who ordered this recently
    encoding: str = "auto"
    date_format: str | None = None
    sheet: str | int | None = None
    header_row: int | None = None


@dataclass(frozen=True)
class ReportOptions:
    """How the report writes money: ``auto`` (from the data's main country), ``none`` or a code."""

    currency: str = "auto"  # auto | none | GBP | KRW | EUR | USD | ... (segwork.currency)


@dataclass(frozen=True)
class CampaignColumns:
    """Headers of a campaign outcome file (``segwork feedback``); None = the default names
    (customer_id, group, converted, revenue, segment, cost, or their Korean forms)."""

    customer_id: str | None = None
    group: str | None = None
    converted: str | None = None
    revenue: str | None = None
    segment: str | None = None
    cost: str | None = None


@dataclass(frozen=True)
class ClusterOptions:
    """Clustering choices: the range k is chosen in (or a fixed k), the smallest share a chosen
    cluster may hold, and the DBCV below which HDBSCAN reports no clear density structure."""

    k_range: tuple[int, int] = K_RANGE
    k: int | None = None
    min_share: float = MIN_SHARE
    dbcv_threshold: float = DBCV_THRESHOLD


@dataclass(frozen=True)
class PredictOptions:
    """Future state: the horizon in days and the purchase probability below which a customer is at risk."""

    horizon_days: int = 90
    at_risk_below: float = 0.3


@dataclass(frozen=True)
class Config:
    """Everything a run needs besides the data path and the as-of date."""

    columns: ColumnMap | None = None
    read: ReadOptions = field(default_factory=ReadOptions)
    clean: CleanRules = field(default_factory=CleanRules)
    rfm: RFMOptions = field(default_factory=RFMOptions)
    report: ReportOptions = field(default_factory=ReportOptions)
    campaign: CampaignColumns = field(default_factory=CampaignColumns)
    cluster: ClusterOptions = field(default_factory=ClusterOptions)
    events: EventOptions = field(default_factory=EventOptions)
    predict: PredictOptions = field(default_factory=PredictOptions)


#: How each annotation is named in an error: (singular, plural).
_TYPE_NAMES: dict[Any, tuple[str, str]] = {
    bool: ("true or false", "true/false values"),
    int: ("a whole number", "whole numbers"),
    float: ("a number", "numbers"),
    str: ("text", "texts"),
    type(None): ("nothing (null)", "nulls"),
}
_NO = object()  # a value that does not fit an annotation


def _or(words: list[str]) -> str:
    """'a', 'a or b', 'a, b or c'."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _describe(hint: Any, plural: bool = False) -> str:
    """An annotation in words, for an error message ('a list of texts', 'drop or net')."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in _TYPE_NAMES:
        return _TYPE_NAMES[hint][plural]
    if origin is Literal:
        return _or([str(a) for a in args])
    if origin in (typing.Union, types.UnionType):
        words = [_describe(a, plural) for a in args]
        return "/".join(words) if plural else _or(words)
    if origin in (tuple, list):
        return ("lists" if plural else "a list") + f" of {_describe(args[0], plural=True)}"
    if origin is dict:
        keys, values = _describe(args[0], plural=True), _describe(args[1], plural=True)
        return ("mappings" if plural else "a mapping") + f" of {keys} to {values}"
    return getattr(hint, "__name__", str(hint))


def _coerce(value: Any, hint: Any) -> Any:
    """``value`` fitted to the annotation (lists -> tuples, ints -> floats), or ``_NO``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if hint is type(None):
        return None if value is None else _NO
    if hint is bool:
        return value if isinstance(value, bool) else _NO
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _NO
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if ok else _NO
    if hint is str:
        return value if isinstance(value, str) else _NO
    if origin is Literal:
        return value if any(value == a and type(value) is type(a) for a in args) else _NO
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            got = _coerce(value, arg)
            if got is not _NO:
                return got
        return _NO
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            return _NO
        items = [_coerce(v, args[0]) for v in value]
        return _NO if any(i is _NO for i in items) else origin(items)
    if origin is dict:
        if not isinstance(value, dict):
            return _NO
        out = {_coerce(k, args[0]): _coerce(v, args[1]) for k, v in value.items()}
        return _NO if any(x is _NO for pair in out.items() for x in pair) else out
    return value


def _given(value: Any) -> str:
    """The value a user gave, with its YAML kind: "'no' (text)", "[1, 2] (a list)"."""
    kind = (
        "nothing"
        if value is None
        else "true/false"
        if isinstance(value, bool)
        else "a number"
        if isinstance(value, int | float)
        else "text"
        if isinstance(value, str)
        else "a list"
        if isinstance(value, list | tuple)
        else "a mapping"
        if isinstance(value, dict)
        else type(value).__name__
    )
    shown = "null" if value is None else repr(list(value) if isinstance(value, tuple) else value)
    return f"{shown[:60]}{'...' if len(shown) > 60 else ''} ({kind})"


def _tip(value: Any, hint: Any) -> str:
    """A fix for the commonest slips: a quoted yes/no, one text where a list is expected."""
    wants = _describe(hint)
    if isinstance(value, str) and "true or false" in wants:
        return "; write true or false without quotes"
    if isinstance(value, str) and "a list" in wants:
        return f"; write it as a list: [{value}]"
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and wants.startswith("text or")
    ):
        return f"; put it in quotes: '{value}'"
    return ""


def _build(cls: type, section: str, raw: Any, source: str) -> Any:
    """A config dataclass from a mapping: unknown keys and values of the wrong type are errors.

    Types come from the dataclass annotations, so a field added later is checked with no new code.
    """
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise SegworkInputError(
            f"{source}: '{section}' must be a mapping of keys to values, not {_given(raw)}"
        )
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted((str(k) for k in set(raw) - set(names)), key=str)
    if unknown:
        hint = difflib.get_close_matches(unknown[0], names, n=1)
        tip = f"; did you mean '{hint[0]}'?" if hint else ""
        raise SegworkInputError(
            f"{source}: unknown key {section}.{unknown[0]}{tip} allowed keys: {', '.join(sorted(names))}"
        )
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in raw.items():
        got = _coerce(value, hints[key])
        if got is _NO:
            raise SegworkInputError(
                f"{source}: {section}.{key} must be {_describe(hints[key])}, "
                f"not {_given(value)}{_tip(value, hints[key])}"
            )
        values[key] = got
    return cls(**values)


def config_from_dict(raw: dict[str, Any] | None, source: str = "config") -> Config:
    """Validate a plain dict (from YAML or papermill parameters) into a :class:`Config`."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise SegworkInputError(f"{source}: the config must be a mapping with keys columns, read")
    allowed = {
        "columns", "read", "clean", "rfm", "events", "cluster", "predict", "report", "campaign",
    }  # fmt: skip
    unknown = sorted(str(k) for k in set(raw) - allowed)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(allowed), n=1)
        tip = f"; did you mean '{close[0]}'?" if close else ""
        raise SegworkInputError(
            f"{source}: unknown top-level key '{unknown[0]}'{tip} allowed: {', '.join(sorted(allowed))}"
        )
    columns = _build(ColumnMap, "columns", raw["columns"], source) if raw.get("columns") else None
    if columns is not None:
        missing = [c for c in REQUIRED if getattr(columns, c) is None]
        if missing:
            raise SegworkInputError(f"{source}: columns.{missing[0]} is required")
        if columns.amount is None and (columns.quantity is None or columns.unit_price is None):
            raise SegworkInputError(
                f"{source}: map columns.amount, or both columns.quantity and columns.unit_price"
            )
    rules = _build(CleanRules, "clean", raw.get("clean"), source)
    rfm = _build(RFMOptions, "rfm", raw.get("rfm"), source)
    if not 2 <= rfm.bins <= 10:
        raise SegworkInputError(f"{source}: rfm.bins must be between 2 and 10, not {rfm.bins}")
    read = _build(ReadOptions, "read", raw.get("read"), source)
    report = _build(ReportOptions, "report", raw.get("report"), source)
    try:
        check_currency(report.currency)
    except SegworkInputError as exc:
        raise SegworkInputError(f"{source}: {str(exc).removeprefix('config: ')}") from None
    if read.header_row is not None and read.header_row < 1:
        raise SegworkInputError(
            f"{source}: read.header_row counts from 1 (the file's first row), not {read.header_row}"
        )
    predict = _build(PredictOptions, "predict", raw.get("predict"), source)
    if not 7 <= predict.horizon_days <= 730:
        raise SegworkInputError(
            f"{source}: predict.horizon_days must be between 7 and 730, not {predict.horizon_days}"
        )
    if not 0.0 < predict.at_risk_below < 1.0:
        raise SegworkInputError(
            f"{source}: predict.at_risk_below is a probability between 0 and 1 (exclusive), "
            f"not {predict.at_risk_below}"
        )
    campaign = _build(CampaignColumns, "campaign", raw.get("campaign"), source)
    events = _build(EventOptions, "events", raw.get("events"), source)
    _check_events(events, source)
    return Config(
        columns=columns,
        read=read,
        clean=rules,
        rfm=rfm,
        events=events,
        cluster=cluster_options(raw, source),
        predict=predict,
        report=report,
        campaign=campaign,
    )


def cluster_options(raw: dict[str, Any], source: str) -> ClusterOptions:
    """The ``cluster`` section, type-checked and range-checked."""
    opts = _build(ClusterOptions, "cluster", raw.get("cluster"), source)
    check_k(opts.k, opts.k_range, (f"{source}: cluster.k", f"{source}: cluster.k_range"))
    if not 0.0 <= opts.min_share < 0.5:
        raise SegworkInputError(
            f"{source}: cluster.min_share must be a share from 0 to below 0.5, not {opts.min_share}"
        )
    if not -1.0 <= opts.dbcv_threshold <= 1.0:
        raise SegworkInputError(
            f"{source}: cluster.dbcv_threshold must be between -1 and 1, not {opts.dbcv_threshold}"
        )
    return opts


#: The event types segwork understands (``events.event_types`` maps file values onto them).
EVENT_TYPES = ("visit", "view", "cart", "purchase", "signup")


def _check_events(ev: EventOptions, source: str) -> None:
    """Refuse event settings no run can use: unknown target types, non-positive windows."""
    for value, target in (ev.event_types or {}).items():
        if target not in EVENT_TYPES:
            raise SegworkInputError(
                f"{source}: events.event_types.{value} is {target!r}; use one of "
                f"{', '.join(EVENT_TYPES)}"
            )
    for key in ("session_gap_minutes", "max_events_per_day", "cart_window_days"):
        if not getattr(ev, key) > 0:
            raise SegworkInputError(
                f"{source}: events.{key} must be positive, not {getattr(ev, key)}"
            )


def load_config(path: str | Path | None) -> Config:
    """Read and validate a YAML config; ``None`` gives the defaults."""
    if path is None:
        return Config()
    p = Path(path)
    if not p.is_file():
        raise SegworkInputError(f"{p}: config file not found")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SegworkInputError(f"{p}: not valid YAML ({first})") from None
    return config_from_dict(raw, source=str(p))


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The inverse of :func:`config_from_dict`, for summary.json and papermill parameters."""
    out = dataclasses.asdict(cfg)
    out["clean"] = {k: list(v) if isinstance(v, tuple) else v for k, v in out["clean"].items()}
    out["cluster"] = {k: list(v) if isinstance(v, tuple) else v for k, v in out["cluster"].items()}
    return out
