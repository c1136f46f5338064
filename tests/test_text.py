"""segwork.text: every language has the same keys and placeholders; lookups fail loudly."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any

import pytest
import yaml

from segwork.errors import SegworkInputError
from segwork.text import FOLDER, Text, catalogue, languages

HANGUL = re.compile(r"[\uac00-\ud7a3]")


def leaves(node: Mapping[str, Any], path: str = "") -> dict[str, Any]:
    """Dotted key -> leaf value of a nested catalogue."""
    out: dict[str, Any] = {}
    for k, v in node.items():
        key = f"{path}.{k}" if path else str(k)
        out.update(leaves(v, key) if isinstance(v, Mapping) else {key: v})
    return out


def placeholders(text: str) -> set[str]:
    """The named fields of a format string ("{n:,} rows" -> {"n"})."""
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def raw(lang: str) -> dict[str, Any]:
    """A catalogue file as YAML parsed it (before any check)."""
    return yaml.safe_load((FOLDER / f"{lang}.yaml").read_text(encoding="utf-8"))


def test_ko_and_en_ship_and_are_the_languages():
    assert set(languages()) >= {"ko", "en"}


@pytest.mark.parametrize("lang", [lang for lang in languages() if lang != "en"])
def test_every_language_has_the_keys_of_english_and_no_others(lang):
    en, other = leaves(raw("en")), leaves(raw(lang))
    assert sorted(set(en) - set(other)) == []  # missing in lang
    assert sorted(set(other) - set(en)) == []  # extra in lang


@pytest.mark.parametrize("lang", languages())
def test_every_leaf_is_a_string(lang):
    bad = {k: v for k, v in leaves(raw(lang)).items() if not isinstance(v, str)}
    assert bad == {}


@pytest.mark.parametrize("lang", [lang for lang in languages() if lang != "en"])
def test_every_entry_has_the_placeholders_of_english(lang):
    en, other = leaves(raw("en")), leaves(raw(lang))
    diff = {
        k: (sorted(placeholders(en[k])), sorted(placeholders(other[k])))
        for k in en
        if k in other and placeholders(en[k]) != placeholders(other[k])
    }
    assert diff == {}


def test_english_has_no_hangul_and_korean_is_korean():
    en = leaves(raw("en"))
    assert {k: v for k, v in en.items() if HANGUL.search(v)} == {}
    ko = leaves(raw("ko"))
    # sentences (3+ words) in the Korean file are Korean
    prose = {k: v for k, v in ko.items() if len(v.split()) >= 3 and not HANGUL.search(v)}
    assert prose == {}


def test_lookup_formats_placeholders_and_sections():
    en, ko = catalogue("en"), catalogue("ko")
    assert en("reasons.cancellation") == "Cancellation or return"
    assert ko("reasons.cancellation") == "취소·반품"
    assert en("quality.empty_months", n=3) == "3 month(s) with no orders: data may be missing"
    assert (
        ko("quality.non_positive_customers", n=1234)
        == "순매출 0 이하 고객 1,234명 (환불이 구매보다 큼)"
    )
    assert dict(en["stages"]) == {
        "acquisition": "Acquisition",
        "conversion": "Conversion",
        "retention": "Retention",
    }
    assert ko["columns"].get("unknown_id", "unknown_id") == "unknown_id"
    assert en.get("reasons.nope", "nope") == "nope"
    assert catalogue("en") is en  # loaded once


def test_missing_keys_and_wrong_kinds_fail_loudly():
    en = catalogue("en")
    with pytest.raises(KeyError, match="reasons.nope"):
        en("reasons.nope")
    with pytest.raises(KeyError, match="section"):
        en("reasons")
    with pytest.raises(KeyError, match="string"):
        en["reasons.cancellation"]
    with pytest.raises(KeyError):
        en("quality.empty_months")  # placeholder not given


def test_unknown_language_is_input_error():
    with pytest.raises(SegworkInputError, match="xx"):
        catalogue("xx")
    with pytest.raises(SegworkInputError):
        catalogue("../text/en")


def test_a_new_language_is_a_data_change(tmp_path, monkeypatch):
    import segwork.text as text

    (tmp_path / "en.yaml").write_text((FOLDER / "en.yaml").read_text(encoding="utf-8"))
    (tmp_path / "de.yaml").write_text("reasons:\n  cancellation: Stornierung\n", encoding="utf-8")
    monkeypatch.setattr(text, "FOLDER", tmp_path)
    text.catalogue.cache_clear()
    try:
        assert "de" in text.languages()
        assert text.catalogue("de")("reasons.cancellation") == "Stornierung"
    finally:
        text.catalogue.cache_clear()


def test_a_non_string_leaf_is_refused(tmp_path, monkeypatch):
    import segwork.text as text

    (tmp_path / "xx.yaml").write_text("ledger:\n  kept: yes\n", encoding="utf-8")
    monkeypatch.setattr(text, "FOLDER", tmp_path)
    text.catalogue.cache_clear()
    try:
        with pytest.raises(ValueError, match="ledger.kept"):
            text.catalogue("xx")
    finally:
        text.catalogue.cache_clear()


def test_text_repr_names_the_language():
    assert repr(catalogue("ko")) == "Text('ko')"
    assert isinstance(catalogue("ko"), Text)


# ------------------------------------------------------------------ every id the code shows has words


def test_every_drop_reason_page_stage_and_selection_rule_has_words():
    import re as _re
    from pathlib import Path

    from segwork.clean import REASONS
    from segwork.config import MAPS_DIR, NOTEBOOKS

    segmenters = (Path(FOLDER).parent / "segmenters.py").read_text(encoding="utf-8")
    rules = set(_re.findall(r'"rule": "([a-z_]+)"', segmenters))
    rules |= set(_re.findall(r'\bRULE\w* = "([a-z_]+)"', segmenters))
    rules |= set(_re.findall(r'\brule = "([a-z_]+)"', segmenters))
    rules |= set(_re.findall(r'\brule = \w+, "([a-z_]+)"', segmenters))
    stages = set()
    for path in MAPS_DIR.glob("*.yaml"):
        stages |= {s["stage"] for s in yaml.safe_load(path.read_text(encoding="utf-8"))["segments"]}
    for lang in languages():
        t = catalogue(lang)
        assert set(REASONS) <= set(t["reasons"]), lang
        assert set(NOTEBOOKS) <= set(t["pages"]), lang
        assert stages and stages <= set(t["stages"]), lang
        assert rules == {
            "fixed_k",
            "distance_threshold",
            "in_range_min_share_stable_best",
            "in_range_min_share_stable_lowest_bic",
            "largest_gap_in_range",
            "hdbscan_grid_noise_cap",
        }
        assert rules <= set(t["selection"]), lang


def test_every_warning_code_produced_has_words_with_its_params():
    import re as _re
    from pathlib import Path

    src = "".join(
        (Path(FOLDER).parent / f).read_text(encoding="utf-8") for f in ("read.py", "pipeline.py")
    )
    codes = set(_re.findall(r'\(\s*"([a-z_]+)",\s*(?:f?"|_skipped_note)', src)) & {
        "stale_data",
        "cancel_heavy_customers",
        "missing_customer_markers",
        "ambiguous_dates",
        "sheets_skipped",
    }
    assert len(codes) == 5
    for lang in languages():
        assert codes <= set(catalogue(lang)["warnings"]), lang


def test_every_figure_text_key_is_in_the_catalogue():
    import re as _re
    from pathlib import Path

    figures = (Path(FOLDER).parent / "report" / "figures.py").read_text(encoding="utf-8")
    keys = set(_re.findall(r'\bt\("([a-z_]+)", lang\)', figures))
    keys |= {f"top_{k}" for k in ("country", "product")}
    keys |= {f"{c}_short" for c in ("recency", "frequency", "monetary")}
    assert len(keys) > 30
    for lang in languages():
        assert keys <= set(catalogue(lang)["figures"]), (
            lang,
            keys - set(catalogue(lang)["figures"]),
        )
