"""The text catalogue: every string a reader sees, one YAML file per language.

Computed results (tables, ``summary.json``, artefacts) carry ids and codes only; the report turns
them into words here::

    t = catalogue("en")
    t("reasons.cancellation")                      # 'Cancellation or return'
    t("quality.empty_months", n=2)                 # '2 month(s) with no orders: ...'
    df.rename(columns=t["columns"])                # a whole section as {id: text}

Adding a language is adding ``<lang>.yaml`` with the same keys as ``en.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from segwork.errors import SegworkInputError

FOLDER = Path(__file__).resolve().parent


def languages() -> tuple[str, ...]:
    """The language codes that have a catalogue (``ko``, ``en``, ...)."""
    return tuple(sorted(p.stem for p in FOLDER.glob("*.yaml")))


class Text:
    """One language's strings: ``t("section.key", **fmt)`` or ``t["section"]`` for a whole section."""

    __slots__ = ("entries", "lang")

    def __init__(self, lang: str, entries: Mapping[str, Any]) -> None:
        self.lang = lang
        self.entries = entries

    def _node(self, key: str) -> Any:
        """The entry (a string or a section) at dotted ``key``; KeyError names what is missing."""
        node: Any = self.entries
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise KeyError(f"text catalogue {self.lang!r}: no entry {key!r}")
            node = node[part]
        return node

    def __call__(self, key: str, /, **fmt: Any) -> str:
        """The string at dotted ``key`` with its ``{placeholders}`` filled from ``fmt``."""
        node = self._node(key)
        if not isinstance(node, str):
            raise KeyError(f"text catalogue {self.lang!r}: {key!r} is a section, not a string")
        return node.format(**fmt)

    def __getitem__(self, section: str) -> Mapping[str, str]:
        """A section as a read-only ``{id: text}`` mapping (for renames and ``.get(id, id)``)."""
        node = self._node(section)
        if not isinstance(node, Mapping):
            raise KeyError(f"text catalogue {self.lang!r}: {section!r} is a string, not a section")
        return MappingProxyType(node)

    def get(self, key: str, default: str) -> str:
        """The string at ``key`` (unformatted), or ``default`` when the catalogue has none."""
        try:
            node = self._node(key)
        except KeyError:
            return default
        return node if isinstance(node, str) else default

    def __repr__(self) -> str:
        """Which language this is."""
        return f"Text({self.lang!r})"


def _check_leaves(lang: str, node: Any, path: str = "") -> None:
    """Every leaf of a catalogue is a string (YAML would turn ``yes`` or ``1`` into other types)."""
    if isinstance(node, Mapping):
        for k, v in node.items():
            _check_leaves(lang, v, f"{path}.{k}" if path else str(k))
    elif not isinstance(node, str):
        raise ValueError(f"text/{lang}.yaml: {path} is {node!r}, not a string; quote it")


@cache
def catalogue(lang: str) -> Text:
    """The catalogue of ``lang`` (loaded once per process); an unknown language is input error."""
    if lang not in languages():
        raise SegworkInputError(
            f"language {lang!r}: no text catalogue; available: {', '.join(languages())}"
        )
    entries = yaml.safe_load((FOLDER / f"{lang}.yaml").read_text(encoding="utf-8")) or {}
    _check_leaves(lang, entries)
    return Text(lang, entries)


def make_note(code: str, /, **params: Any) -> dict[str, Any]:
    """A note as data: its code, its values and the English line for logs (from the catalogue)."""
    return {"code": code, "params": params, "message": note_message(code, params, "en")}


def note_message(code: str, params: dict[str, Any], lang: str) -> str:
    """A note in ``lang``: values that are note codes themselves (a reason) are worded first."""
    t = catalogue(lang)
    words = {
        k: t(f"notes.{v}", **params) if isinstance(v, str) and v in t["notes"] else v
        for k, v in params.items()
    }
    try:
        return t(f"notes.{code}", **words)
    except (KeyError, IndexError, ValueError):
        return f"{code} {params}"
