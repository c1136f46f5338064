"""config.py: one table of defaults; every notebook's parameters cell and the CLI follow it."""

from __future__ import annotations

import ast
import dataclasses

import pytest

from segwork import config
from segwork.cli import build_parser
from segwork.config import NOTEBOOK_PARAMETERS, NOTEBOOKS, NOTEBOOKS_DIR, RunParams


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_parameters_cell_matches_the_defaults(name):
    import papermill as pm

    found = pm.inspect_notebook(str(NOTEBOOKS_DIR / f"{name}.ipynb"))
    values = {k: ast.literal_eval(v["default"]) for k, v in found.items()}
    assert values == NOTEBOOK_PARAMETERS


def test_notebook_parameters_are_run_parameters_with_the_same_defaults():
    defaults = {f.name: f.default for f in dataclasses.fields(RunParams)}
    for key, value in NOTEBOOK_PARAMETERS.items():
        assert key in defaults, key
        if key != "out_dir":  # notebooks: None = compute into the cache; runs: reports/<month>
            assert defaults[key] == value, key


def test_cli_defaults_come_from_config():
    args = build_parser().parse_args(["run"])
    assert args.seed == config.DEFAULT_SEED
    assert args.synth_customers == config.DEFAULT_SYNTH_CUSTOMERS
    assert args.lang == config.DEFAULT_LANG
    assert args.wait == config.LOCK_TIMEOUT
    assert args.kernel_timeout == config.KERNEL_START_TIMEOUT
    assert args.notebook_timeout == config.NOTEBOOK_TIMEOUT


def test_the_package_ships_its_notebooks_and_templates():
    assert sorted(p.stem for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb")) == list(NOTEBOOKS)
    assert (config.TEMPLATES_DIR / "index.html.j2").is_file()
    assert NOTEBOOKS_DIR.parent == config.PACKAGE


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGWORK_CACHE", str(tmp_path / "c"))
    assert config.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("SEGWORK_CACHE")
    assert config.cache_dir().name == "segwork"


def test_k_range_flag_parses_and_bad_k_is_one_line():
    assert config.parse_k_range("3-8") == (3, 8)
    assert config.parse_k_range(None) is None
    for bad in ("8", "3..8", "a-b", "-3"):
        with pytest.raises(config.SegworkInputError, match="--k-range"):
            config.parse_k_range(bad)
    for params, needle in (
        (RunParams(k=1), "--k: 1 clusters"),
        (RunParams(k_range=(5, 3)), "--k-range: 5-3"),
        (RunParams(k_range=(1, 3)), "--k-range: 1-3"),
    ):
        with pytest.raises(config.SegworkInputError, match=needle):
            config.check_params(params)
    args = build_parser().parse_args(["run", "--k", "5", "--k-range", "4-6"])
    assert (args.k, args.k_range) == (5, "4-6")
    assert build_parser().parse_args(["run"]).k is None
