"""Campaign feedback: treated vs control response per segment, uplift with a 95% interval, ROI.

The interval of an uplift (difference of two independent proportions, treated minus control)
is Newcombe's **hybrid score interval** (method 10 in Newcombe R.G., "Interval estimation for
the difference between independent proportions: comparison of eleven methods", Statistics in
Medicine 17:873-890, 1998): it combines the Wilson score intervals of the two rates, keeps
its coverage near the nominal level for small groups and rates near 0 or 1 (where the Wald
interval fails) and never leaves [-1, 1]. A segment's action **paid off** when the whole
interval lies above zero; an interval that straddles zero is "no evidence", not a loss.

Incremental revenue per contact is the mean revenue of a treated customer minus that of a
control customer (non-buyers count as 0). ROI = (incremental revenue per contact - cost per
contact) / cost per contact, with the cost averaged over treated customers.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from contextlib import nullcontext, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from segwork.campaign import load_campaign
from segwork.errors import SegworkInputError
from segwork.outputs import read_segments
from segwork.publish import mark, out_lock, read_marker

FEEDBACK_FILE = "feedback.json"
#: z for a two-sided 95% interval.
Z95 = 1.959963984540054
#: Fewer treated or control customers than this in a group: no interval (a warning says so).
MIN_GROUP = 10


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GroupResult(_Model):
    """Treated vs control in one segment (or overall)."""

    n_treated: int
    n_control: int
    conversions_treated: int
    conversions_control: int
    rate_treated: float | None
    rate_control: float | None
    uplift: float | None
    uplift_ci: tuple[float, float] | None  # 95% Newcombe hybrid score; None when too few
    incremental_revenue_per_contact: float | None
    cost_per_contact: float | None
    roi: float | None
    paid_off: bool | None  # True: interval above 0; False: interval includes or is below 0


class FeedbackWarning(_Model):
    """A problem with the outcome file worth reading before the numbers."""

    code: Literal[
        "unknown_customers",
        "too_few_for_interval",
        "control_larger",
        "groups_may_be_swapped",
        "unknown_segments",
        "revenue_without_conversion",
        "no_segment",
    ]
    params: dict[str, Any]
    message: str


class Feedback(_Model):
    """``feedback.json``: one campaign's results, ids and codes only."""

    segwork_version: str
    campaign: str  # the outcome file
    run: str | None  # the run whose segments were used
    written: datetime
    method: Literal["newcombe_hybrid_score"] = "newcombe_hybrid_score"
    confidence: float = 0.95
    overall: GroupResult
    segments: dict[str, GroupResult]
    warnings: list[FeedbackWarning] = Field(default_factory=list)


# --------------------------------------------------------------------------- statistics


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (n > 0)."""
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """Newcombe (1998) hybrid score interval for p1 - p2 from two Wilson intervals."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, z)
    l2, u2 = wilson(k2, n2, z)
    d = p1 - p2
    lo = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return max(-1.0, lo), min(1.0, hi)


def group_result(frame: pd.DataFrame, min_group: int = MIN_GROUP) -> GroupResult:
    """Rates, uplift and its interval, incremental revenue and ROI of one group of rows."""
    t = frame[frame["treated"]]
    c = frame[~frame["treated"]]
    n1, n2 = len(t), len(c)
    k1, k2 = int(t["converted"].sum()), int(c["converted"].sum())
    r1 = k1 / n1 if n1 else None
    r2 = k2 / n2 if n2 else None
    uplift = r1 - r2 if r1 is not None and r2 is not None else None
    ci = newcombe(k1, n1, k2, n2) if n1 >= min_group and n2 >= min_group else None
    inc = float(t["revenue"].mean() - c["revenue"].mean()) if n1 and n2 else None
    cost = float(t["cost"].mean()) if "cost" in t and n1 and t["cost"].notna().any() else None
    roi = (inc - cost) / cost if inc is not None and cost else None
    return GroupResult(
        n_treated=n1,
        n_control=n2,
        conversions_treated=k1,
        conversions_control=k2,
        rate_treated=_r(r1),
        rate_control=_r(r2),
        uplift=_r(uplift),
        uplift_ci=None if ci is None else (round(ci[0], 6), round(ci[1], 6)),
        incremental_revenue_per_contact=None if inc is None else round(inc, 2),
        cost_per_contact=None if cost is None else round(cost, 4),
        roi=_r(roi),
        paid_off=None if ci is None else bool(ci[0] > 0),
    )


def _r(x: float | None, nd: int = 6) -> float | None:
    return None if x is None else round(float(x), nd)


# --------------------------------------------------------------------------- analysis


def _warn(code: str, message: str, **params: Any) -> FeedbackWarning:
    return FeedbackWarning(code=code, params=params, message=message)  # type: ignore[arg-type]


def analyse(
    camp: pd.DataFrame,
    segments: pd.Series | None = None,
    campaign: str = "",
    run: str | None = None,
    names: dict[str, str] | None = None,
    min_group: int = MIN_GROUP,
) -> Feedback:
    """Per-segment and overall results of a loaded campaign.

    ``segments`` maps customer id -> segment id from the run; a ``segment`` column in the file
    (the segment at send time, as id or display name in ``names`` = name -> id) wins over it.
    """
    from segwork import __version__

    warnings: list[FeedbackWarning] = []
    camp = camp.copy()
    if segments is not None:
        known = camp["customer_id"].isin(segments.index)
        n_unknown = int((~known).sum())
        if n_unknown:
            ex = camp.loc[~known, "customer_id"].head(3).tolist()
            warnings.append(
                _warn(
                    "unknown_customers",
                    f"{n_unknown:,} of {len(camp):,} campaign customers are not in the run "
                    f"(e.g. {', '.join(ex)}); they count overall but in no segment",
                    n=n_unknown,
                    total=len(camp),
                    examples=ex,
                )
            )
        looked_up = camp["customer_id"].map(segments)
    else:
        looked_up = pd.Series(None, index=camp.index, dtype=object)
    if "segment" in camp and names:
        odd = sorted({str(v).strip() for v in camp["segment"].dropna()} - set(names))
        if odd:
            warnings.append(
                _warn(
                    "unknown_segments",
                    f"{len(odd)} segment value(s) in the file are not in the run's segment map "
                    f"({', '.join(odd[:4])}); they are reported as given",
                    values=odd[:10],
                )
            )
    if "segment" in camp:
        given = camp["segment"].map(
            lambda v: None if v is None else (names or {}).get(str(v).strip(), str(v).strip())
        )
        camp["seg"] = given.where(given.notna(), looked_up)
    else:
        camp["seg"] = looked_up
    if camp["seg"].isna().all():
        warnings.append(
            _warn(
                "no_segment",
                "no segment per customer (no segment column and no run to look them up); "
                "only the overall result is shown",
            )
        )
    n_t, n_c = int(camp["treated"].sum()), int((~camp["treated"]).sum())
    if n_c > n_t:
        warnings.append(
            _warn(
                "control_larger",
                f"the control group ({n_c:,}) is larger than the treated group ({n_t:,}); "
                "allowed, but check the two were not swapped",
                n_treated=n_t,
                n_control=n_c,
            )
        )
    odd = int(((camp["converted"] == 0) & (camp["revenue"] != 0)).sum())
    if odd:
        warnings.append(
            _warn(
                "revenue_without_conversion",
                f"{odd:,} customers have revenue but converted = 0; revenue is counted as given",
                n=odd,
            )
        )
    overall = group_result(camp, min_group)
    if overall.uplift_ci is not None and overall.uplift_ci[1] < 0:
        warnings.append(
            _warn(
                "groups_may_be_swapped",
                f"control customers responded more than treated ones overall (uplift "
                f"{overall.uplift:+.1%}, interval below zero); check that the treated and "
                "control labels were not swapped",
                uplift=overall.uplift,
            )
        )
    per: dict[str, GroupResult] = {}
    few: list[str] = []
    for seg, rows in camp.dropna(subset=["seg"]).groupby("seg", sort=True):
        res = group_result(rows, min_group)
        per[str(seg)] = res
        if res.uplift_ci is None:
            few.append(str(seg))
    if overall.uplift_ci is None:
        few.insert(0, "overall")
    if few:
        warnings.append(
            _warn(
                "too_few_for_interval",
                f"{len(few)} group(s) have fewer than {min_group} treated or control customers; "
                f"no interval for {', '.join(few[:6])}",
                groups=few,
                min_group=min_group,
            )
        )
    return Feedback(
        segwork_version=__version__,
        campaign=campaign,
        run=run,
        written=datetime.now(UTC),
        overall=overall,
        segments=per,
        warnings=warnings,
    )


# --------------------------------------------------------------------------- runs and files


def run_segments(run: Path) -> tuple[pd.Series, str | None]:
    """Customer id -> segment id from a run folder's segments.csv, and its segment map name."""
    seg = run / "segments.csv"
    if not seg.is_file():
        raise SegworkInputError(f"--run {run}: no segments.csv; give a folder segwork run wrote")
    df = read_segments(seg)
    smap = None
    with suppress(OSError, ValueError, KeyError, TypeError):
        summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
        smap = str(summary["rfm"]["segment_map"])
    return pd.Series(df["rfm_segment_id"].to_numpy(), index=df["customer_id"].to_numpy()), smap


def write_feedback(fb: Feedback, path: Path, timeout: float = 60.0) -> Path:
    """Write feedback.json; inside a run folder, under its lock, and listed in its marker so a
    later run of that month may still replace the folder."""
    folder = path.parent
    text = fb.model_dump_json(indent=2) + "\n"
    marker = read_marker(folder)
    if path.exists() and marker is None:
        try:
            Feedback.model_validate_json(path.read_bytes())
        except (ValidationError, OSError):
            raise SegworkInputError(
                f"{path}: exists and is not a segwork feedback file; nothing was changed"
            ) from None
    with out_lock(folder, timeout=timeout) if marker else nullcontext():
        tmp = folder / f".{path.name}.{os.getpid()}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        if marker is not None:
            keep = {
                k: v
                for k, v in marker.items()
                if k not in ("segwork_version", "pid", "host", "written", "files")
            }
            mark(folder, files=marker.get("files") is not None, **keep)
    return path


def latest_feedback(reports_root: str | Path) -> Feedback | None:
    """The most recently written feedback.json in any report folder under ``reports_root``."""
    root = Path(reports_root)
    if not root.is_dir():
        return None
    best: Feedback | None = None
    for p in root.glob(f"*/{FEEDBACK_FILE}"):
        try:
            fb = Feedback.model_validate_json(p.read_bytes())
        except (ValidationError, OSError):
            continue
        if best is None or fb.written > best.written:
            best = fb
    return best


def latest_run(reports_root: str | Path) -> Path | None:
    """The report folder under ``reports_root`` with the latest as-of date (None if none)."""
    root = Path(reports_root)
    best: tuple[str, Path] | None = None
    if not root.is_dir():
        return None
    for p in root.glob("*/summary.json"):
        if p.parent.name.startswith("."):
            continue
        with suppress(OSError, ValueError, KeyError, TypeError):
            as_of = str(json.loads(p.read_text(encoding="utf-8"))["as_of"])
            if best is None or as_of > best[0]:
                best = (as_of, p.parent)
    return None if best is None else best[1]


def feedback(
    campaign: str | Path,
    run: str | Path | None = None,
    config: str | Path | None = None,
    reports_root: str | Path = "reports",
    say: Callable[[str], None] = lambda _m: None,
) -> tuple[Path, Feedback]:
    """``segwork feedback``: read the outcome file, analyse it against the run's segments and
    write feedback.json into the run folder (beside the campaign file when there is no run)."""
    from segwork.maps import load_map
    from segwork.schema import load_config

    cfg = load_config(config)
    path = Path(campaign)
    camp = load_campaign(path, cfg)
    folder = Path(run) if run is not None else latest_run(reports_root)
    if run is not None and not Path(run).is_dir():
        raise SegworkInputError(f"--run {run}: not a folder; give the OUT folder of a segwork run")
    segments, names = None, None
    if folder is not None:
        say(f"segments from {folder}")
        segments, smap_name = run_segments(folder)
        if smap_name:
            smap = load_map(smap_name)
            names = {**smap.labels("ko"), **smap.labels("en")}
            names = {v: k for k, v in names.items()} | {s.id: s.id for s in smap.segments}
    fb = analyse(
        camp,
        segments,
        campaign=str(path.resolve()),
        run=None if folder is None else str(folder.resolve()),
        names=names,
    )
    out = (
        folder / FEEDBACK_FILE
        if folder is not None
        else path.with_name(f"{path.stem}.{FEEDBACK_FILE}")
    )
    for w in fb.warnings:
        say(f"warning: {w.message} [{w.code}]")
    return write_feedback(fb, out), fb
