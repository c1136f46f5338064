"""Machine-readable outputs (segments.csv, summary.json); publishing a run folder is in publish.py."""

from __future__ import annotations

import json
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
