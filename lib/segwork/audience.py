"""``segwork export``: one customer list per segment, a movers list and ``segments.json``.

Lists are read from a run folder's ``segments.csv`` (IDs as text, formulas unescaped) and
written for a CRM or ad tool: CSV (UTF-8 with BOM, formula-escaped), Excel (IDs as text cells)
or Parquet (raw values). The export folder is published atomically and carries segwork's
marker with ``kind: export``; any other folder (a report, a folder of the user's) is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from segwork.config import LOCK_TIMEOUT
from segwork.errors import SegworkInputError
from segwork.maps import SegmentMap, load_map
from segwork.outputs import read_segments, write_csv, write_json, write_xlsx
from segwork.publish import atomic_dir, check_out, claimed, read_marker
from segwork.summary import read_summary

FORMATS = ("csv", "parquet", "xlsx")
EXPORT_KIND = "export"
MOVERS = "movers"
#: Columns of a segment list, in order; optional ones are kept when the run has them.
LIST_COLUMNS = (
    "customer_id",
    "segment",
    "segment_name",
    "stage",
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "p_purchase",
    "expected_revenue",
    "previous_segment",
    "previous_segment_name",
)
Say = Callable[[str], None]


def _quiet(_msg: str) -> None:
    """Say nothing."""


def file_stem(segment_id: str) -> str:
    """A safe file name for a segment id (letters, digits, ``_.-``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", segment_id) or "_"


def load_run(run: str | Path) -> tuple[Path, pd.DataFrame, dict[str, Any], SegmentMap]:
    """The run folder, its segments.csv, its summary.json (raw, validated) and segment map."""
    folder = Path(run)
    if not folder.is_dir():
        raise SegworkInputError(f"--run {run}: not a folder; give the OUT folder of a segwork run")
    for name in ("segments.csv", "summary.json"):
        if not (folder / name).is_file():
            raise SegworkInputError(
                f"--run {run}: no {name}; give the OUT folder of a finished segwork run"
            )
    summary = read_summary(folder / "summary.json")  # the contract, or a one-line error
    raw = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    smap = load_map(summary.rfm.segment_map)
    return folder, read_segments(folder / "segments.csv"), raw, smap


def segment_lists(
    seg: pd.DataFrame, smap: SegmentMap, lang: str, only: list[str] | None = None
) -> dict[str, pd.DataFrame]:
    """Segment id -> its customer list (columns :data:`LIST_COLUMNS` the run has), map order."""
    by_id = smap.by_id()
    names = smap.labels(lang)
    frame = pd.DataFrame({"customer_id": seg["customer_id"], "segment": seg["rfm_segment_id"]})
    frame["segment_name"] = frame["segment"].map(names)
    frame["stage"] = frame["segment"].map({k: s.stage for k, s in by_id.items()})
    for c in LIST_COLUMNS[4:12]:
        if c in seg:
            frame[c] = seg[c]
    if "previous_segment_id" in seg:
        frame["previous_segment"] = seg["previous_segment_id"]
        frame["previous_segment_name"] = seg["previous_segment_id"].map(names)
    wanted = only or list(by_id)
    return {s: frame[frame["segment"] == s].reset_index(drop=True) for s in wanted}


def movers(seg: pd.DataFrame, smap: SegmentMap, lang: str) -> pd.DataFrame | None:
    """Customers whose segment changed since the earlier date (from, to); None without migration."""
    if "previous_segment_id" not in seg:
        return None
    names = smap.labels(lang)
    prev, now = seg["previous_segment_id"], seg["rfm_segment_id"]
    moved = prev.notna() & (prev != now)
    out = pd.DataFrame(
        {
            "customer_id": seg.loc[moved, "customer_id"],
            "from_segment": prev[moved],
            "to_segment": now[moved],
        }
    )
    out["from_name"] = out["from_segment"].map(names)
    out["to_name"] = out["to_segment"].map(names)
    return out.reset_index(drop=True)


def describe(
    smap: SegmentMap, summary: dict[str, Any], lists: dict[str, pd.DataFrame], files: dict[str, str]
) -> dict[str, Any]:
    """``segments.json``: every segment's rule (boxes on the score cube), size, stage, KPI,
    actions, revenue, the exported file and the future state / campaign result when the run has
    them."""
    groups = summary.get("rfm", {}).get("groups", {})
    future = (summary.get("prediction") or {}).get("segments") or {}
    feedback = (summary.get("feedback") or {}).get("segments") or {}
    out = []
    for s in smap.segments:
        g = groups.get(s.id, {})
        out.append(
            {
                "id": s.id,
                "name": {"ko": s.ko, "en": s.en},
                "stage": s.stage,
                "rule": [{a: list(rng) for a, rng in box.items()} for box in s.boxes],
                "customers": int(g.get("customers", 0)),
                "revenue": g.get("revenue"),
                "kpi": s.kpi,
                "actions": s.actions,
                "file": files.get(s.id),
                "exported": int(len(lists[s.id])) if s.id in lists else None,
                "future_state": future.get(s.id),
                "campaign": feedback.get(s.id),
            }
        )
    return {
        "segment_map": smap.name,
        "bins": smap.bins,
        "rule_axes": "r, f, m scores 1..bins; fm = f + m; each box is inclusive [lo, hi]",
        "as_of": summary.get("as_of"),
        "segments": out,
    }


def _write(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "csv":
        write_csv(frame, path)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    elif not write_xlsx(frame, path, sheet=path.stem[:31]):
        raise SegworkInputError(
            f"--format xlsx: {path.stem} has {len(frame):,} customers, more than an Excel sheet "
            "holds; use --format csv or parquet"
        )


def check_target(to: str | Path) -> Path:
    """``--to`` as an absolute path: new, empty, or an earlier segwork export (nothing else)."""
    out = check_out(to, "--to")
    if out.is_dir() and any(out.iterdir()):
        marker = read_marker(out)
        if marker is None or marker.get("kind") != EXPORT_KIND:
            what = "a segwork report" if marker is not None else "a folder segwork did not write"
            raise SegworkInputError(
                f"--to {to}: is {what}, not an earlier export; nothing was changed; give a new "
                "or empty folder"
            )
    return out


def export(
    run: str | Path,
    to: str | Path,
    fmt: str = "csv",
    segments: list[str] | None = None,
    lang: str = "en",
    say: Say = _quiet,
    timeout: float = LOCK_TIMEOUT,
) -> Path:
    """Write the lists and ``segments.json`` into ``to`` atomically; returns the folder."""
    if fmt not in FORMATS:
        raise SegworkInputError(f"--format: '{fmt}' is not one of {', '.join(FORMATS)}")
    folder, seg, summary, smap = load_run(run)
    known = [s.id for s in smap.segments]
    if segments is not None:
        segments = [s.strip() for s in segments if s.strip()]
        bad = [s for s in segments if s not in known]
        if bad or not segments:
            raise SegworkInputError(
                f"--segments: unknown segment id(s) {', '.join(bad) or '(none given)'}; "
                f"the run's map {smap.name} has {', '.join(known)}"
            )
    stems = {s: file_stem(s) for s in known}
    if len(set(stems.values())) < len(stems) or MOVERS in stems.values():
        raise SegworkInputError(f"segment map {smap.name}: segment ids clash as file names")
    target = check_target(to)
    lists = segment_lists(seg, smap, lang, segments)
    moved = movers(seg, smap, lang)
    with (
        claimed(target, say, timeout, "--to"),
        atomic_dir(target, "--to", kind=EXPORT_KIND, run=str(folder.resolve())) as tmp,
    ):
        files: dict[str, str] = {}
        for sid, frame in lists.items():
            name = f"{stems[sid]}.{fmt}"
            _write(frame, tmp / name, fmt)
            files[sid] = name
        desc = describe(smap, summary, lists, files)
        desc["run"] = str(folder.resolve())
        desc["format"] = fmt
        desc["lang"] = lang
        desc["movers"] = None
        if moved is not None:
            _write(moved, tmp / f"{MOVERS}.{fmt}", fmt)
            desc["movers"] = {"file": f"{MOVERS}.{fmt}", "customers": int(len(moved))}
        write_json(tmp / "segments.json", desc)
        say(f"wrote {len(files)} segment list(s) to {target}")
    return target
