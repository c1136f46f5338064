"""The built wheel, installed alone into a fresh venv, writes the full report from any folder."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = (
    "index",
    "01_eda",
    "02_rfm_segments",
    "03_clusters",
    "04_compare_and_profile",
    "05_movement",
)


def _run(cmd: list[str], jupyter: Path | None = None, **kw) -> subprocess.CompletedProcess:
    """A command without this test's PYTHONPATH, so only the wheel provides segwork."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JUPYTER_PATH")}
    env["MPLBACKEND"] = "Agg"
    if jupyter is not None:
        env["JUPYTER_PATH"] = str(jupyter)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, **kw)


@pytest.mark.slow
def test_built_wheel_in_a_fresh_venv_writes_every_page(tmp_path):
    src = tmp_path / "src"  # build from a copy: setuptools leaves build/ and *.egg-info behind
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "lib", src / "lib", ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    dist = tmp_path / "dist"
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(dist), str(src)]
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("segwork-*.whl")
    venv = tmp_path / "venv"
    assert _run([sys.executable, "-m", "venv", "--without-pip", str(venv)]).returncode == 0
    py = venv / "bin" / "python"
    installed = _run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)]
    )
    assert installed.returncode == 0, installed.stderr
    # segwork comes from the wheel alone; its dependencies from this environment's site-packages
    # (a path line, so the editable install's .pth there is not processed)
    purelib = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    deps = [*site.getsitepackages(), sysconfig.get_paths()["purelib"]]
    (Path(purelib.stdout.strip()) / "segwork-test-deps.pth").write_text("\n".join(deps) + "\n")
    where = _run([str(py), "-c", "import segwork; print(segwork.__file__)"])
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout + where.stderr
    # nbconvert's own templates are data files installed beside it (share/jupyter/nbconvert);
    # only they are lent, not this environment's kernels (its `segwork` kernel runs the source tree)
    jupyter = tmp_path / "jupyter"
    jupyter.mkdir()
    (jupyter / "nbconvert").symlink_to(Path(sys.prefix) / "share" / "jupyter" / "nbconvert")
    work = tmp_path / "anywhere"
    work.mkdir()
    out = work / "report"
    done = _run(
        [str(venv / "bin" / "segwork"), "run", "--synth-customers", "400", "--out", str(out),
         "--lang", "en", "--quiet"],
        cwd=work, jupyter=jupyter,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for name in PAGES:
        page = out / f"{name}.html"
        assert page.is_file() and page.stat().st_size > 10_000, name
        assert "Traceback" not in page.read_text(encoding="utf-8"), name
    assert (out / "segments.csv").is_file() and (out / "summary.json").is_file()
