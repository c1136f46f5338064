"""The package's shape: imports point one way (no cycles, no upward import), modules stay small."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "lib" / "segwork"

#: Lowest first. A module may import its own layer or lower ones, never a higher one.
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(layer.split())
    for layer in (
        "__init__ errors",
        "config text currency tally",
        "publish schema maps outputs store",
        "read",
        "clean events",
        "rfm visitbasis",
        "kpi",
        "features synth campaign visitkpi",
        "segmenters",
        "evaluate",
        "clustering",
        "predict",
        "profile",
        "spark",
        "sparkread sparkfit engine",
        "migrate feedback",
        "pipeline summary",
        "artifacts audience",
        "report.fonts report.tables",
        "report.figures report.views report.export report.loop report.clusterwords report.visits "
        "report.future",
        "report.movement",
        "report.cards report.pages",
        "report.execute",
        "report.session report",
        "run",
        "cli __main__",
    )
)
#: Modules allowed past ~400 lines, and why.
LONG_MODULES = {
    "artifacts": "every file a run leaves for the notebooks (customers, monthly, top items, lift, "
    "clusters, predictions) and the cache for notebooks opened on their own",
    "schema": "every config section (columns, read, clean, rfm, events, cluster, report, campaign) "
    "with its generic type check; one section per module is the next step",
    "pipeline": "the one path through the stages (read, events, ledger, RFM, migration, clusters, "
    "prediction); the optional stages move to their own modules next",
    "read": "one reader for three formats: encodings, delimiters, sheets, header rows, money and "
    "date parsing as SQL; split by format is the next step",
    "segmenters": "four estimators (K-Means, Ward, HDBSCAN, Gaussian mixture), each with its model "
    "selection, and the one k-selection rule they share",
    "synth": "the synthetic shop: personas, products, orders, cancellations and a true future",
    "publish": "every rule for writing OUT safely (claim, lock, sweep, swap), kept in one place",
    "events": "the events file's reading, the events ledger with its six reasons and bot rule, "
    "the visit window pass and the cart aggregate, each in SQL",
    "clean": "the ledger's rules, cancellation matching and the per-customer aggregate in SQL",
    "report.views": "the reader tables of four report pages",
    "report.execute": "the child-process runner with its deadlines and retry",
    "predict": "the time split, the purchase model, its three baselines, scoring and the stage: "
    "the back-test recipe reads in one place",
    "spark": "the Spark engine: a DuckDB-shaped connection replaying segwork's SQL through SQLGlot, "
    "the reader's replay over files, folders and URLs, and the labelling on the executors",
    "summary": "the whole summary.json contract (models, schema, build, read, write) in one place",
}


def module_name(path: Path) -> str:
    """``lib/segwork/report/views.py`` -> ``report.views``; a package's __init__ -> its name."""
    rel = path.relative_to(PKG).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts) or "__init__"


def modules() -> dict[str, Path]:
    """Every module of the package by name."""
    return {module_name(p): p for p in sorted(PKG.rglob("*.py")) if "__pycache__" not in p.parts}


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports(path: Path, known: set[str]) -> set[str]:
    """segwork modules ``path`` imports anywhere (functions included), TYPE_CHECKING blocks aside."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {id(n) for b in ast.walk(tree) if _type_checking(b) for n in ast.walk(b)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name == "segwork" or not name.startswith("segwork."):
                if name == "segwork":
                    found.add("__init__")
                continue
            short = name.removeprefix("segwork.")
            while short and short not in known:
                short = short.rpartition(".")[0]
            if short:
                found.add(short)
    return found


def graph() -> dict[str, set[str]]:
    """Module -> the segwork modules it imports."""
    mods = modules()
    return {name: imports(path, set(mods)) - {name} for name, path in mods.items()}


def layer_of(name: str) -> int:
    """Index of the layer that holds ``name``."""
    for i, layer in enumerate(LAYERS):
        if name in layer:
            return i
    raise KeyError(name)


def test_every_module_has_a_layer():
    missing = sorted(m for m in modules() if not any(m in layer for layer in LAYERS))
    assert missing == [], f"place these modules in LAYERS: {missing}"


def test_no_module_imports_a_higher_one():
    g = graph()
    upward = sorted(
        f"{m} -> {d}" for m, deps in g.items() for d in deps if layer_of(d) > layer_of(m)
    )
    assert upward == []


def test_no_import_cycle():
    g = graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(g.get(node, ())):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_checks_can_fail(tmp_path, monkeypatch):
    # a planted upward import and cycle are found (the checks are not vacuous)
    g = {"rfm": {"cli"}, "cli": {"rfm"}}
    monkeypatch.setattr(sys.modules[__name__], "graph", lambda: g)
    with pytest.raises(AssertionError):
        test_no_module_imports_a_higher_one()
    with pytest.raises(AssertionError):
        test_no_import_cycle()


def test_modules_stay_small_or_say_why():
    long = {
        name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()
    }
    over = sorted(n for n, lines in long.items() if lines > 420 and n not in LONG_MODULES)
    assert over == [], {n: long[n] for n in over}
