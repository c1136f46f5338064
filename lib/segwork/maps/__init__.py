"""Segment maps are data: YAML files of named groups, each a set of boxes on the score cube.

A box gives inclusive ``[lo, hi]`` ranges on any of ``r``, ``f``, ``m`` and ``fm`` (= f + m);
an axis it does not name is unrestricted. A box may also test the visit features of the
customer table (:data:`FEATURE_AXES`, present when a run has events) with a whole number
(``orders: 0``), a comparison (``carts_abandoned: ">=1"``, ``first_visit_days: "<=30"``) or
``[lo, hi]`` (``hi`` null = no upper end). Each feature's values (whole numbers >= 0) fall into
the intervals its conditions cut, so the map lives on a finite cube (r, f, m and one axis of
intervals per feature). Loading proves every cell of that cube belongs to exactly one group,
and names the cells when it does not.
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

SHIPPED = ("ko_crm10", "classic11", "ko_crm_visits")
STAGES = ("acquisition", "conversion", "retention")
_AXES = ("r", "f", "m", "fm")
#: Customer-table columns a box may test besides the scores (whole numbers >= 0).
FEATURE_AXES = ("orders", "visits", "views", "carts", "carts_abandoned", "first_visit_days")
OPEN = 2**62  # the upper end of a feature range with none ("orders: '>=2'")
_COMPARISON = re.compile(r"^\s*(>=|<=|>|<|==|=)?\s*(\d+)\s*$")


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
    lookup: np.ndarray  # bins^3, then one axis per feature (its intervals) when the map has any
    features: tuple[str, ...] = ()  # feature columns the map tests, in FEATURE_AXES order
    cuts: tuple[tuple[int, ...], ...] = ()  # per feature: the starts of its intervals (0 first)

    def assign(self, scores: pd.DataFrame) -> np.ndarray:
        """Segment id per row of a frame with r_score, f_score, m_score (and the map's features)."""
        missing = [c for c in self.features if c not in scores.columns]
        if missing:
            raise SegworkInputError(
                f"segment map '{self.name}' tests {', '.join(missing)}, which only a run with "
                "--events has; pass an events file or use a map without visit conditions"
            )
        index = [scores[f"{a}_score"].to_numpy() - 1 for a in ("r", "f", "m")]
        for col, cuts in zip(self.features, self.cuts, strict=True):
            values = np.clip(np.nan_to_num(scores[col].to_numpy(dtype=float)), 0, None)
            index.append(np.searchsorted(np.asarray(cuts), values, side="right") - 1)
        ids = np.array([s.id for s in self.segments], dtype=object)
        return ids[self.lookup[tuple(index)]]

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
                    int(i)
                    for f in range(1, self.bins + 1)
                    if 1 <= fm - f <= self.bins
                    for i in np.ravel(self.lookup[r - 1, f - 1, fm - f - 1])
                }
                row[fm] = " / ".join(names[i] for i in sorted(ids))
            out[r] = row
        grid = pd.DataFrame.from_dict(out, orient="index")
        grid.index.name = "r_score"
        grid.columns.name = "f_score + m_score"
        return grid


def _level(name: str, cuts: tuple[int, ...], i: int) -> str:
    """'orders=0', 'first_visit_days=0..30', 'orders>=2': one interval of a feature."""
    lo = cuts[i]
    if i == len(cuts) - 1:
        return f"{name}>={lo}"
    hi = cuts[i + 1] - 1
    return f"{name}={lo}" if hi == lo else f"{name}={lo}..{hi}"


def _cell(r: int, f: int, m: int, levels: tuple[str, ...] = ()) -> str:
    return "(" + ", ".join([f"r={r}", f"f={f}", f"m={m}", *levels]) + ")"


def _in_box(
    box: dict[str, tuple[int, int]], r: int, f: int, m: int, feats: dict[str, int] | None = None
) -> bool:
    vals = {"r": r, "f": f, "m": m, "fm": f + m, **(feats or {})}
    return all(lo <= vals[a] <= hi for a, (lo, hi) in box.items())


def _feature_range(axis: str, raw: Any, where: str) -> tuple[int, int]:
    """A feature condition as an inclusive [lo, hi] (hi = OPEN for no upper end)."""
    if isinstance(raw, bool):
        raw = None  # true/false is not a count: fall through to the error
    if isinstance(raw, int) and raw >= 0:
        return raw, raw
    if isinstance(raw, list) and len(raw) == 2 and isinstance(raw[0], int) and raw[0] >= 0:
        hi = OPEN if raw[1] is None else raw[1]
        if isinstance(hi, int) and not isinstance(hi, bool) and hi >= raw[0]:
            return raw[0], hi
    if isinstance(raw, str) and (found := _COMPARISON.match(raw)):
        op, n = found.group(1) or "=", int(found.group(2))
        ranges = {">=": (n, OPEN), ">": (n + 1, OPEN), "<=": (0, n), "=": (n, n), "==": (n, n)}
        if op == "<" and n > 0:
            return 0, n - 1
        if op in ranges:
            return ranges[op]
    raise SegworkInputError(
        f"{where}: {axis} needs a whole number >= 0, a comparison such as '>=1' or '<=30', "
        f"or [lo, hi] (hi null = no upper end); got {raw!r}"
    )


def _parse_box(raw: Any, where: str) -> dict[str, tuple[int, int]]:
    if not isinstance(raw, dict) or not raw:
        raise SegworkInputError(f"{where}: a box must map axes (r, f, m, fm) to [lo, hi]")
    box: dict[str, tuple[int, int]] = {}
    for axis, rng in raw.items():
        if axis in FEATURE_AXES:
            box[axis] = _feature_range(axis, rng, where)
            continue
        if axis not in _AXES:
            raise SegworkInputError(
                f"{where}: unknown axis '{axis}'; use r, f, m, fm or a visit feature "
                f"({', '.join(FEATURE_AXES)})"
            )
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
    used = {a for s in segs for b in s.boxes for a in b}
    features = tuple(a for a in FEATURE_AXES if a in used)
    cuts = tuple(_cuts(segs, a) for a in features)
    lookup = np.full((bins, bins, bins, *(len(c) for c in cuts)), -1, dtype=np.int64)
    gaps: list[str] = []
    overlaps: list[str] = []
    for cell in itertools.product(*(range(n) for n in lookup.shape)):
        r, f, m = (c + 1 for c in cell[:3])
        feats = {a: cuts[i][cell[3 + i]] for i, a in enumerate(features)}
        hits = [i for i, s in enumerate(segs) if any(_in_box(b, r, f, m, feats) for b in s.boxes)]
        levels = tuple(_level(a, cuts[i], cell[3 + i]) for i, a in enumerate(features))
        if not hits:
            gaps.append(_cell(r, f, m, levels))
        elif len(hits) > 1:
            overlaps.append(f"{_cell(r, f, m, levels)} in {' and '.join(segs[i].id for i in hits)}")
        else:
            lookup[cell] = hits[0]
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
        features=features,
        cuts=cuts,
    )


def _cuts(segs: list[Segment], axis: str) -> tuple[int, ...]:
    """Starts of the intervals the map's conditions cut ``axis`` into (0 first): every value in
    one interval meets exactly the same conditions, so one value per interval proves the map."""
    points = {0}
    for s in segs:
        for b in s.boxes:
            if axis in b:
                lo, hi = b[axis]
                points.add(lo)
                if hi < OPEN:
                    points.add(hi + 1)
    return tuple(sorted(points))


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
