"""artifacts.py: every artefact of a run is written once, and the early and late halves load as one."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from segwork import artifacts
from segwork.config import RunParams
from segwork.run import run


@pytest.mark.slow
def test_a_report_run_writes_each_artefact_once_and_reads_nothing_back(tmp_path, monkeypatch):
    written: Counter[str] = Counter()
    real_parquet = artifacts._parquet

    def counting(frame, path: Path, index: bool) -> None:
        written[path.name] += 1
        real_parquet(frame, path, index)

    read_back: list[str] = []
    real_read = artifacts.pd.read_parquet

    def watching(path, *a, **k):
        if "building" in str(path):  # the run's own build folder, before it is published
            read_back.append(Path(path).name)
        return real_read(path, *a, **k)

    monkeypatch.setattr(artifacts, "_parquet", counting)
    monkeypatch.setattr(artifacts.pd, "read_parquet", watching)
    params = RunParams(
        synth_customers=300, data_cache=str(tmp_path / "data"), out_dir=str(tmp_path / "out")
    )
    out = run(params)
    assert written and set(written.values()) == {1}, written
    assert read_back == []
    monkeypatch.undo()
    art = artifacts.load_artifacts(out)
    assert {"kmeans_cluster", "hdbscan_probability", "rfm_segment_id"} <= set(art.customers.columns)
    assert {"all", "rfm", "kmeans", "ward", "hdbscan"} <= set(art.top["scope"])
    assert art.linkage.shape[1] == 4 and len(art.linkage) > 0
