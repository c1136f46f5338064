"""environment.yml and pyproject.toml must name the same dependencies."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_reqs = {_name(r): r for r in pip_section if not r.startswith("-e")}
    proj_reqs = {_name(r): r for r in project["dependencies"]}
    assert env_reqs.keys() == proj_reqs.keys()
    assert env_reqs == proj_reqs  # same lower bounds too
    assert "python=3.11" in env["dependencies"] and "pip" in env["dependencies"]
    assert any(r.startswith("-e .") for r in pip_section)
