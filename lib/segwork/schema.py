"""Canonical column names, the two public layouts, and the validated YAML config (no I/O on data)."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

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


@dataclass(frozen=True)
class Config:
    """Everything a run needs besides the data path and the as-of date."""

    columns: ColumnMap | None = None
    read: ReadOptions = field(default_factory=ReadOptions)
    clean: CleanRules = field(default_factory=CleanRules)
    rfm: RFMOptions = field(default_factory=RFMOptions)


def _build(cls: type, section: str, raw: Any, source: str) -> Any:
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise SegworkInputError(f"{source}: '{section}' must be a mapping of keys to values")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        hint = difflib.get_close_matches(unknown[0], names, n=1)
        tip = f"; did you mean '{hint[0]}'?" if hint else ""
        raise SegworkInputError(
            f"{source}: unknown key {section}.{unknown[0]}{tip} allowed keys: {', '.join(sorted(names))}"
        )
    values = dict(raw)
    for k, v in values.items():
        if isinstance(v, list) and cls is CleanRules:
            values[k] = tuple(v)
    return cls(**values)


def config_from_dict(raw: dict[str, Any] | None, source: str = "config") -> Config:
    """Validate a plain dict (from YAML or papermill parameters) into a :class:`Config`."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise SegworkInputError(f"{source}: the config must be a mapping with keys columns, read")
    allowed = {"columns", "read", "clean", "rfm"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise SegworkInputError(
            f"{source}: unknown top-level key '{unknown[0]}'; allowed: {', '.join(sorted(allowed))}"
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
    if rules.cancellations not in ("drop", "net"):
        raise SegworkInputError(
            f"{source}: clean.cancellations must be drop or net, not {rules.cancellations!r}"
        )
    rfm = _build(RFMOptions, "rfm", raw.get("rfm"), source)
    if not 2 <= int(rfm.bins) <= 10:
        raise SegworkInputError(f"{source}: rfm.bins must be between 2 and 10, not {rfm.bins}")
    return Config(
        columns=columns,
        read=_build(ReadOptions, "read", raw.get("read"), source),
        clean=rules,
        rfm=rfm,
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
    return out
