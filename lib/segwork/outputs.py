"""Machine-readable outputs (segments.csv, summary.json) and the atomic publish of a run folder.

A run builds everything in a temporary sibling folder and swaps it in only on success, so a
failed run never leaves a half-written report where a good one stood.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SEGMENT_COLUMNS = (
    "customer_id",
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "rfm_segment",
)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return None if np.isnan(obj) else float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (pd.Timestamp,)) or hasattr(obj, "isoformat"):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json(path: Path, data: dict[str, Any]) -> None:
    """UTF-8 JSON, Korean kept readable, numpy and dates converted."""
    path.write_text(
        json.dumps(data, ensure_ascii=False, indent=2, default=_json_default) + "\n",
        encoding="utf-8",
    )


def segments_frame(
    table: pd.DataFrame, labels: dict[str, str], extra: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per customer in the documented column order; ``extra`` adds cluster columns."""
    out = table[["recency_days", "frequency", "monetary", "r_score", "f_score", "m_score"]].copy()
    out["monetary"] = out["monetary"].round(2)
    out["rfm_segment"] = table["rfm_segment_id"].map(labels)
    out["rfm_segment_id"] = table["rfm_segment_id"]
    if extra is not None:
        out = out.join(extra)
    out.index.name = "customer_id"
    return out.reset_index()


@contextmanager
def atomic_dir(out_dir: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``out_dir``; on success it replaces ``out_dir``.

    On an exception the temporary folder is removed (unless the caller moved it elsewhere)
    and ``out_dir`` is untouched.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)
