"""Campaign outcome files: reading one (``load_campaign``) and simulating one with a planted uplift.

``load_campaign`` reads CSV (segwork's encodings and delimiters), Excel or Parquet with the
columns customer_id, group (treated/control), converted (0/1), revenue and optional segment
and cost; other headers are mapped under ``campaign:`` in config.yaml. Bad files are one line.

The simulation: a seeded synthetic campaign with a planted uplift per segment.

Each customer is assigned to treated (share ``treated_share``) or control at random; a control
customer converts with the segment's base rate, a treated one with base rate + planted uplift.
Converters spend a log-normal amount around ``order_value``. The result has the columns
``segwork feedback`` reads (customer_id, group, converted, revenue, cost), so tests can check
that the intervals cover the planted uplift and that a zero-uplift segment is not called a win.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from segwork.errors import SegworkInputError
from segwork.read import _check_file, _decode, _raw_bytes, _sniff_delimiter
from segwork.schema import CampaignColumns, Config

TREATED = ("treated", "treatment", "test", "t", "1", "true", "실험", "발송")
CONTROL = ("control", "holdout", "c", "0", "false", "대조", "미발송")
#: Headers recognised without config, per field (compared case-insensitively, trimmed).
DEFAULT_HEADERS: dict[str, tuple[str, ...]] = {
    "customer_id": ("customer_id", "customerid", "customer id", "고객id", "고객번호"),
    "group": ("group", "arm", "그룹", "집단"),
    "converted": ("converted", "conversion", "전환", "구매여부"),
    "revenue": ("revenue", "amount", "매출", "구매금액"),
    "segment": ("segment", "segment_id", "rfm_segment_id", "세그먼트"),
    "cost": ("cost", "cost_per_contact", "비용"),
}
REQUIRED = ("customer_id", "group", "converted", "revenue")


def read_table(path: Path, encoding: str = "auto") -> pd.DataFrame:
    """A CSV (any of segwork's encodings and delimiters), Excel or Parquet file as text columns."""
    fmt = _check_file(path)
    try:
        if fmt == "parquet":
            df = pd.read_parquet(path)
            return (
                df.astype(object)
                .where(df.notna(), None)
                .map(lambda v: None if v is None else str(v))
            )
        if fmt == "excel":
            return pd.read_excel(path, dtype=str)
        text, _ = _decode(path, _raw_bytes(path), encoding)
        sep = _sniff_delimiter(text[:65536])
        return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except SegworkInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is the file's problem
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SegworkInputError(f"{path}: cannot read the campaign file ({first})") from None


def _mapping(path: Path, headers: list[str], cols: CampaignColumns) -> dict[str, str]:
    """segwork field -> the file's header, from config first, then the default names."""
    out: dict[str, str] = {}
    low = {h.strip().lower(): h for h in headers}
    for name in DEFAULT_HEADERS:
        given = getattr(cols, name)
        if given is not None:
            if given not in headers:
                raise SegworkInputError(
                    f"{path}: campaign.{name} names column '{given}', which is not among the "
                    f"headers ({', '.join(headers[:12])})"
                )
            out[name] = given
            continue
        for alias in DEFAULT_HEADERS[name]:
            if alias in low:
                out[name] = low[alias]
                break
    missing = [n for n in REQUIRED if n not in out]
    if missing:
        raise SegworkInputError(
            f"{path}: required column '{missing[0]}' not found; headers are "
            f"{', '.join(headers[:12])}; map it in config.yaml under campaign.{missing[0]}"
        )
    return out


def _numbers(path: Path, col: pd.Series, name: str) -> pd.Series:
    """A text column as floats; bad values are a one-line error naming a few."""
    txt = col.astype(object).where(col.notna(), "").astype(str).str.strip().str.replace(",", "")
    num = pd.to_numeric(txt.replace("", "0"), errors="coerce")
    bad = txt[num.isna()]
    if len(bad):
        shown = ", ".join(repr(v) for v in bad.unique()[:4])
        raise SegworkInputError(
            f"{path}: column {name}: {len(bad)} value(s) are not numbers ({shown})"
        )
    return num.astype(float)


def load_campaign(path: str | Path, cfg: Config | None = None) -> pd.DataFrame:
    """The outcome file as customer_id, treated (bool), converted (0/1), revenue, [segment, cost].

    Bad files raise a one-line SegworkInputError: missing columns, unknown group values, a
    converted column that is not 0/1, duplicate customers, no control or no treated group.
    """
    path = Path(path)
    cols = (cfg or Config()).campaign
    raw = read_table(path, (cfg or Config()).read.encoding)
    headers = [str(h) for h in raw.columns]
    raw.columns = headers
    m = _mapping(path, headers, cols)
    if raw.empty:
        raise SegworkInputError(f"{path}: the campaign file has headers but no rows")
    ids = raw[m["customer_id"]].astype(object).where(raw[m["customer_id"]].notna(), "")
    ids = ids.astype(str).str.strip()
    if (ids == "").any():
        raise SegworkInputError(
            f"{path}: {(ids == '').sum()} row(s) have no customer_id (e.g. row {int((ids == '').idxmax()) + 2})"
        )
    dup = ids[ids.duplicated()]
    if len(dup):
        raise SegworkInputError(
            f"{path}: {len(dup)} customer_id(s) appear more than once (e.g. "
            f"{', '.join(dup.unique()[:3])}); give one row per contacted customer"
        )
    grp = raw[m["group"]].astype(str).str.strip().str.lower()
    treated, control = grp.isin(TREATED), grp.isin(CONTROL)
    odd = grp[~(treated | control)]
    if len(odd):
        raise SegworkInputError(
            f"{path}: column {m['group']}: {len(odd)} value(s) are neither treated nor control "
            f"({', '.join(repr(v) for v in odd.unique()[:4])}); use treated/control"
        )
    if not control.any():
        raise SegworkInputError(
            f"{path}: no control group (every row is treated); uplift needs customers who "
            "were held out"
        )
    if not treated.any():
        raise SegworkInputError(f"{path}: no treated customers (every row is control)")
    conv = _numbers(path, raw[m["converted"]], m["converted"])
    bad = conv[~conv.isin([0.0, 1.0])]
    if len(bad):
        raise SegworkInputError(
            f"{path}: column {m['converted']} must be 0 or 1; found "
            f"{', '.join(repr(v) for v in bad.unique()[:4])}"
        )
    out = pd.DataFrame(
        {
            "customer_id": ids.to_numpy(),
            "treated": treated.to_numpy(),
            "converted": conv.astype("int64").to_numpy(),
            "revenue": _numbers(path, raw[m["revenue"]], m["revenue"]).to_numpy(),
        }
    )
    if "segment" in m:
        seg = raw[m["segment"]].astype(object)
        out["segment"] = seg.where(
            seg.notna() & (seg.astype(str).str.strip() != ""), None
        ).to_numpy()
    if "cost" in m:
        out["cost"] = _numbers(path, raw[m["cost"]], m["cost"]).to_numpy()
    return out


@dataclass(frozen=True)
class CampaignSpec:
    """The planted truth: base response rate and uplift per segment id (missing: defaults)."""

    uplift: dict[str, float] = field(default_factory=dict)
    base_rate: dict[str, float] = field(default_factory=dict)
    default_base_rate: float = 0.05
    default_uplift: float = 0.0
    treated_share: float = 0.5
    order_value: float = 50.0
    cost_per_contact: float = 0.5
    seed: int = 0


def simulate_campaign(segments: pd.Series, spec: CampaignSpec) -> pd.DataFrame:
    """One outcome row per customer of ``segments`` (customer id -> segment id), seeded."""
    rng = np.random.default_rng(spec.seed)
    seg = segments.astype(str).to_numpy()
    n = len(seg)
    base = np.array([spec.base_rate.get(s, spec.default_base_rate) for s in seg])
    lift = np.array([spec.uplift.get(s, spec.default_uplift) for s in seg])
    treated = rng.random(n) < spec.treated_share
    p = np.clip(base + np.where(treated, lift, 0.0), 0.0, 1.0)
    converted = rng.random(n) < p
    spend = rng.lognormal(np.log(spec.order_value), 0.5, n)
    return pd.DataFrame(
        {
            "customer_id": segments.index.astype(str),
            "group": np.where(treated, "treated", "control"),
            "converted": converted.astype("int64"),
            "revenue": np.where(converted, spend.round(2), 0.0),
            "cost": np.where(treated, spec.cost_per_contact, 0.0),
        }
    )
