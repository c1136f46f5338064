"""Segment maps are data: YAML files of named groups, each a set of boxes on the score cube.

A box gives inclusive ``[lo, hi]`` ranges on any of ``r``, ``f``, ``m`` and ``fm`` (= f + m);
an axis it does not name is unrestricted. Loading proves every (r, f, m) cell of the cube
belongs to exactly one group, and names the cells when it does not.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from segwork.errors import SegworkInputError

SHIPPED = ("ko_crm10", "classic11")
STAGES = ("acquisition", "conversion", "retention")
_AXES = ("r", "f", "m", "fm")


@dataclass(frozen=True)
class Segment:
    """One named group: labels in Korean and English, journey stage, KPI and actions."""

    id: str
    ko: str
    en: str
    stage: str
    kpi: dict[str, str]
    actions: dict[str, list[str]]
    boxes: tuple[dict[str, tuple[int, int]], ...]

    def label(self, lang: str) -> str:
        """The display name in ``lang`` (ko or en)."""
        return self.ko if lang == "ko" else self.en


@dataclass(frozen=True)
class SegmentMap:
    """A validated map: ``lookup`` is a bins^3 array of segment indices, one per (r, f, m) cell."""

    name: str
    title: dict[str, str]
    bins: int
    segments: tuple[Segment, ...]
    lookup: np.ndarray

    def assign(self, scores: pd.DataFrame) -> np.ndarray:
        """Segment id per row of a frame with r_score, f_score, m_score."""
        r = scores["r_score"].to_numpy() - 1
        f = scores["f_score"].to_numpy() - 1
        m = scores["m_score"].to_numpy() - 1
        ids = np.array([s.id for s in self.segments], dtype=object)
        return ids[self.lookup[r, f, m]]

    def by_id(self) -> dict[str, Segment]:
        """Segments keyed by id, in map order."""
        return {s.id: s for s in self.segments}

    def labels(self, lang: str) -> dict[str, str]:
        """Segment id -> display name in ``lang``."""
        return {s.id: s.label(lang) for s in self.segments}

    def grid(self, lang: str = "en") -> pd.DataFrame:
        """The map as an R x (F+M) table of display names (rows: r from high to low).

        A cell with several groups (maps that split on f and m separately) lists them all.
        """
        names = [s.label(lang) for s in self.segments]
        out: dict[int, dict[int, str]] = {}
        for r in range(self.bins, 0, -1):
            row = {}
            for fm in range(2, 2 * self.bins + 1):
                ids = {
                    int(self.lookup[r - 1, f - 1, fm - f - 1])
                    for f in range(1, self.bins + 1)
                    if 1 <= fm - f <= self.bins
                }
                row[fm] = " / ".join(names[i] for i in sorted(ids))
            out[r] = row
        grid = pd.DataFrame.from_dict(out, orient="index")
        grid.index.name = "r_score"
        grid.columns.name = "f_score + m_score"
        return grid


def _cell(r: int, f: int, m: int) -> str:
    return f"(r={r}, f={f}, m={m})"


def _in_box(box: dict[str, tuple[int, int]], r: int, f: int, m: int) -> bool:
    vals = {"r": r, "f": f, "m": m, "fm": f + m}
    return all(lo <= vals[a] <= hi for a, (lo, hi) in box.items())


def _parse_box(raw: Any, where: str) -> dict[str, tuple[int, int]]:
    if not isinstance(raw, dict) or not raw:
        raise SegworkInputError(f"{where}: a box must map axes (r, f, m, fm) to [lo, hi]")
    box: dict[str, tuple[int, int]] = {}
    for axis, rng in raw.items():
        if axis not in _AXES:
            raise SegworkInputError(f"{where}: unknown axis '{axis}'; use r, f, m or fm")
        if isinstance(rng, int):
            rng = [rng, rng]
        if not (isinstance(rng, list) and len(rng) == 2 and all(isinstance(x, int) for x in rng)):
            raise SegworkInputError(f"{where}: axis {axis} needs [lo, hi] integers, got {rng!r}")
        box[axis] = (rng[0], rng[1])
    return box


def parse_map(raw: Any, source: str) -> SegmentMap:
    """Validate a map dict and build its lookup cube; gaps and overlaps name the cells."""
    if not isinstance(raw, dict) or "segments" not in raw:
        raise SegworkInputError(f"{source}: a segment map needs 'name', 'bins' and 'segments'")
    bins = int(raw.get("bins", 5))
    segs: list[Segment] = []
    for i, s in enumerate(raw["segments"]):
        where = f"{source}: segment {s.get('id', i)!r}"
        missing = [k for k in ("id", "ko", "en", "stage", "cells") if k not in s]
        if missing:
            raise SegworkInputError(f"{where}: missing key '{missing[0]}'")
        if s["stage"] not in STAGES:
            raise SegworkInputError(f"{where}: stage must be one of {', '.join(STAGES)}")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", str(s["id"])):
            raise SegworkInputError(
                f"{where}: id must be lower-case letters, digits and _ (it names files and keys)"
            )
        cells = s["cells"] if isinstance(s["cells"], list) else [s["cells"]]
        segs.append(
            Segment(
                id=str(s["id"]),
                ko=str(s["ko"]),
                en=str(s["en"]),
                stage=s["stage"],
                kpi=dict(s.get("kpi") or {}),
                actions={k: list(v) for k, v in (s.get("actions") or {}).items()},
                boxes=tuple(_parse_box(b, where) for b in cells),
            )
        )
    lookup = np.full((bins, bins, bins), -1, dtype=np.int64)
    gaps: list[str] = []
    overlaps: list[str] = []
    for r, f, m in itertools.product(range(1, bins + 1), repeat=3):
        hits = [i for i, s in enumerate(segs) if any(_in_box(b, r, f, m) for b in s.boxes)]
        if not hits:
            gaps.append(_cell(r, f, m))
        elif len(hits) > 1:
            overlaps.append(f"{_cell(r, f, m)} in {' and '.join(segs[i].id for i in hits)}")
        else:
            lookup[r - 1, f - 1, m - 1] = hits[0]
    problems = []
    if gaps:
        problems.append(f"{len(gaps)} cells in no group: {', '.join(gaps[:6])}")
    if overlaps:
        problems.append(f"{len(overlaps)} cells in several groups: {', '.join(overlaps[:4])}")
    if problems:
        raise SegworkInputError(f"{source}: segment map is not a partition; " + "; ".join(problems))
    return SegmentMap(
        name=str(raw.get("name", source)),
        title=dict(raw.get("title") or {}),
        bins=bins,
        segments=tuple(segs),
        lookup=lookup,
    )


def load_map(spec: str | Path | SegmentMap) -> SegmentMap:
    """A shipped map by name (ko_crm10, classic11), a YAML path, or an already loaded map."""
    if isinstance(spec, SegmentMap):
        return spec
    if str(spec) in SHIPPED:
        text = resources.files("segwork.maps").joinpath(f"{spec}.yaml").read_text(encoding="utf-8")
        return parse_map(yaml.safe_load(text), f"{spec}.yaml")
    path = Path(spec)
    if not path.is_file():
        raise SegworkInputError(
            f"{spec}: segment map not found; use {' or '.join(SHIPPED)} or a YAML file path"
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SegworkInputError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_map(raw, str(path))
