"""summary.json is a typed contract: models, the shipped JSON Schema, and real runs against it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import jsonschema
import pytest

from segwork import summary as S
from segwork.config import RunParams
from segwork.errors import SegworkInputError
from segwork.pipeline import cluster, load_truth, start

HANGUL = re.compile(r"[\uac00-\ud7a3]")


def run_summary(params: RunParams) -> dict[str, Any]:
    """The JSON a run writes as summary.json, parsed (ledger, RFM, clusters, timings)."""
    cfg, data, prep = start(params)
    clus = cluster(prep, params, load_truth(data), lambda _m: None)
    timings = {**prep.timings.seconds, "total": sum(prep.timings.seconds.values())}
    summary = S.build_summary(prep, cfg, params, clus.summary, timings)
    return json.loads(S.dump(summary))


def validate(doc: dict[str, Any]) -> None:
    """Validate with the jsonschema library against the shipped file (dates checked too)."""
    v = jsonschema.Draft202012Validator(
        S.shipped_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    v.validate(doc)


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> dict[str, Any]:
    """summary.json of the seeded synthetic shop (600 customers), report language Korean."""
    cache = tmp_path_factory.mktemp("synth")
    return run_summary(RunParams(synth_customers=600, data_cache=str(cache), lang="ko"))


def test_shipped_schema_is_the_generated_one():
    assert S.shipped_schema() == S.schema(), "run: python -m segwork.summary --write-schema"
    jsonschema.Draft202012Validator.check_schema(S.shipped_schema())


def test_write_schema_command(tmp_path):
    dest = tmp_path / "schema.json"
    cmd = [sys.executable, "-m", "segwork.summary", "--write-schema", str(dest)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(dest.read_text(encoding="utf-8")) == S.shipped_schema()


def test_synthetic_summary_validates_and_holds_ids_only(synth):
    validate(synth)
    back = S.Summary.model_validate(synth)
    assert back.ledger.rows_kept + sum(d.rows for d in back.ledger.dropped.values()) == (
        back.ledger.rows_in
    )
    ids = list(back.rfm.groups)
    assert list(back.segments.rfm) == ids and "vip" in ids  # ids, not "VIP" / "잠재 VIP"
    assert sum(back.segments.rfm.values()) == back.customers == 600
    assert back.as_of_source == "latest_plus_one"
    hd = back.clustering.methods["hdbscan"]
    assert set(hd.counts) == set(back.segments.hdbscan) and "-1" not in hd.counts
    assert "-1" not in hd.names and "-1" not in hd.rules.rules
    assert {d.cluster for d in hd.dominant_groups["rfm"]} == set(hd.counts)
    assert set(back.clustering.truth.ari_vs_truth) == {"kmeans", "ward", "hdbscan", "rfm"}
    text = json.dumps(synth, ensure_ascii=False)
    assert not HANGUL.findall(text), "summary.json must be language-free"
    assert '"label' not in text


def test_display_labels_break_the_contract(synth, tmp_path):
    bad = json.loads(json.dumps(synth))
    bad["rfm"]["groups"]["vip"]["label_ko"] = "VIP"
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(SegworkInputError, match=r"summary\.json.*rfm\.groups\.vip\.label_ko"):
        S.read_summary(path)
    bad = json.loads(json.dumps(synth))
    bad["ledger"]["dropped"]["취소·반품"] = {"rows": 1, "revenue": 0.0}
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)


def test_write_and_read_round_trip(synth, tmp_path):
    summary = S.Summary.model_validate(synth)
    path = S.write_summary(tmp_path / "summary.json", summary)
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary file left
    back = S.read_summary(path)
    assert back == summary
    assert back.params.seed == 0 and back.config.rfm.segment_map == "ko_crm10"
    assert (
        back.clustering.methods["kmeans"].selection.chosen_k
        == back.clustering.methods["kmeans"].n_clusters
    )
    assert "calinski_harabasz" not in synth["clustering"]["methods"]["ward"]["selection"]["scores"]


def test_unreadable_summary_is_an_input_error(tmp_path):
    with pytest.raises(SegworkInputError, match="cannot read"):
        S.read_summary(tmp_path / "missing.json")
    (tmp_path / "old.json").write_text('{"as_of": "2024-01-01"}', encoding="utf-8")
    with pytest.raises(SegworkInputError, match=r"old\.json: not a summary\.json"):
        S.read_summary(tmp_path / "old.json")


def test_cluster_key():
    assert [S.cluster_key(v) for v in (-1, "-1", 0, "3", "noise")] == [
        "noise", "noise", "0", "3", "noise",
    ]  # fmt: skip


@pytest.mark.uci
@pytest.mark.slow
def test_uci_summary_validates(uci_parquet, tmp_path):
    doc = run_summary(RunParams(data_path=str(uci_parquet), data_cache=str(tmp_path)))
    validate(doc)
    assert doc["ledger"]["rows_in"] == 541_909
    assert doc["clustering"].get("truth") is None
    assert not HANGUL.findall(json.dumps(doc, ensure_ascii=False))
