"""summary.json is a typed contract: models, the shipped JSON Schema, and real runs against it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from segwork import summary as S
from segwork.artifacts import STAGE_SUMMARY
from segwork.config import NOTEBOOKS_DIR, RunParams
from segwork.errors import SegworkInputError
from segwork.run import run

HANGUL = re.compile(r"[\uac00-\ud7a3]")


def run_summary(params: RunParams) -> dict[str, Any]:
    """``segwork run`` (no report) and the summary.json it wrote, parsed."""
    out = run(params)
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def validate(doc: dict[str, Any]) -> None:
    """Validate with the jsonschema library against the shipped file (dates checked too)."""
    v = jsonschema.Draft202012Validator(
        S.shipped_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    v.validate(doc)


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> dict[str, Any]:
    """summary.json of the seeded synthetic shop (600 customers), report language Korean."""
    tmp = tmp_path_factory.mktemp("synth")
    params = RunParams(
        synth_customers=600, data_cache=str(tmp / "cache"), out_dir=str(tmp / "out"), report=False
    )
    return run_summary(params)


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
    assert set(back.clustering.truth.ari_vs_truth) == {"kmeans", "ward", "hdbscan", "gmm", "rfm"}
    assert set(back.segments.gmm) == set(back.clustering.methods["gmm"].counts)
    assert back.clustering.methods["hdbscan"].structure.verdict in ("found", "none")
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


def test_summary_json_is_written_once_per_run(tmp_path, monkeypatch):
    # the early notebooks read artifacts/stage_summary.json; OUT/summary.json comes once, last
    import segwork.run as run_module

    written: list[str] = []
    real = run_module.write_summary

    def counting(path, summary):
        written.append(Path(path).name)
        return real(path, summary)

    monkeypatch.setattr(run_module, "write_summary", counting)
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    for name in ("02_rfm_segments", "03_clusters"):  # one early, one late notebook
        shutil.copy(NOTEBOOKS_DIR / f"{name}.ipynb", nbs)
    params = RunParams(
        synth_customers=300,
        data_cache=str(tmp_path / "cache"),
        out_dir=str(tmp_path / "out"),
        notebooks_dir=str(nbs),
        lang="en",
    )
    out = run(params)
    assert written.count("summary.json") == 1 and written[-1] == "summary.json"
    assert written.count(STAGE_SUMMARY) == 2  # before the early notebooks, after clustering
    final = S.read_summary(out / "summary.json")
    assert set(final.timings.notebooks) == {"02_rfm_segments", "03_clusters"}
    assert final.timings.report is not None and final.clustering is not None
    stage = S.read_summary(out / "artifacts" / STAGE_SUMMARY)
    assert stage.clustering == final.clustering and stage.ledger == final.ledger
    validate(json.loads((out / "summary.json").read_text(encoding="utf-8")))
    assert (out / "03_clusters.html").is_file() and (out / "index.html").is_file()


def test_no_report_run_writes_summary_once_and_no_stage_file(tmp_path, monkeypatch):
    import segwork.run as run_module

    written: list[str] = []
    real = run_module.write_summary
    monkeypatch.setattr(
        run_module, "write_summary", lambda p, s: (written.append(Path(p).name), real(p, s))[1]
    )
    params = RunParams(
        synth_customers=200,
        data_cache=str(tmp_path / "cache"),
        out_dir=str(tmp_path / "out"),
        report=False,
        clusters=False,
    )
    out = run(params)
    assert written == ["summary.json"]
    summary = S.read_summary(out / "summary.json")
    assert summary.clustering is None and summary.segments.kmeans is None
    assert summary.timings.notebooks == {}
    validate(json.loads((out / "summary.json").read_text(encoding="utf-8")))


@pytest.mark.uci
@pytest.mark.slow
def test_uci_summary_validates(uci_parquet, tmp_path):
    params = RunParams(data_path=str(uci_parquet), out_dir=str(tmp_path / "out"), report=False)
    doc = run_summary(params)
    validate(doc)
    assert doc["ledger"]["rows_in"] == 541_909
    assert doc["clustering"].get("truth") is None
    assert not HANGUL.findall(json.dumps(doc, ensure_ascii=False))
