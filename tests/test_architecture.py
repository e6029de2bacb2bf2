"""The layers of docs/architecture.md: every import inside pkmodel points downwards."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pkmodel"
FOUNDATIONS = {"errors", "ranges", "files", "sampling", "model_cache", "nutpie_internals",
               "priors", "tables", "validation", "disclaimer", "diagnostics", "netcdf", "fits"}
ALLOWED = {
    "foundations": FOUNDATIONS,
    "data": FOUNDATIONS | {"data"},
    "pk": FOUNDATIONS | {"pk"},
    "response": FOUNDATIONS | {"data", "pk", "response"},
    "scenarios": FOUNDATIONS | {"data", "pk", "response", "scenarios"},
    "plots": FOUNDATIONS | {"data", "pk", "response", "scenarios", "plots"},
    "report": FOUNDATIONS | {"data", "pk", "response", "scenarios", "plots", "report"},
}


def _layer(path: Path) -> str | None:
    parts = path.relative_to(PACKAGE).parts
    if len(parts) == 1:
        return "foundations" if path.stem in FOUNDATIONS else None  # __init__: the facade
    return parts[0] if parts[0] in ALLOWED else None  # cli: may import everything


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            if name == "pkmodel" or name.startswith("pkmodel."):
                out.append((node.lineno, name.split(".")[1] if "." in name else ""))
    return out


def test_every_import_inside_pkmodel_points_downwards():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = _layer(path)
        if layer is None:
            continue
        for line, target in _imports(path):
            if target and target not in ALLOWED[layer]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({layer}) imports "
                             f"pkmodel.{target}")
    assert not wrong, "\n".join(wrong)


def test_the_architecture_page_names_every_subpackage():
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for sub in sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()):
        assert f"`pkmodel.{sub}`" in text, sub


def test_import_pkmodel_loads_neither_scipy_stats_nor_pymc():
    """`import pkmodel` (and so the command line's start) does not load the heavy libraries:
    scipy.stats alone took a third of it. Checked in a fresh interpreter."""
    import subprocess
    import sys

    code = ("import sys, pkmodel; heavy = [m for m in ('scipy.stats', 'pymc', 'arviz', "
            "'pytensor', 'matplotlib.pyplot') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    assert out == "", f"import pkmodel loads {out}"


def test_the_wheel_ships_its_license_types_and_example_data():
    """pyproject declares what a package index shows: the license file, py.typed and the
    example datasets as package data; `pkmodel.theophylline()` finds the files."""
    import tomllib

    import pkmodel

    root = Path(__file__).resolve().parents[1]
    meta = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    project = meta["project"]
    assert project["license"] == "BSD-3-Clause" and project["license-files"] == ["LICENSE"]
    text = (root / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("BSD 3-Clause License") and "the pkmodel developers" in text
    assert any(c.startswith("Topic :: Scientific/Engineering") for c in project["classifiers"])
    data = meta["tool"]["setuptools"]["package-data"]
    assert "py.typed" in data["pkmodel"] and (root / "pkmodel" / "py.typed").exists()
    assert {"*.csv", "*.toml"} <= set(data["pkmodel.data"])
    files = pkmodel.theophylline()
    assert files.dataset.is_file() and files.spec.is_file()
    assert files.dataset.parent == root / "pkmodel" / "data"


# ----------------------------------------------------------------------------- import cycles
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _typing_only(tree: ast.AST) -> set[int]:
    """The nodes under ``if TYPE_CHECKING:`` (imports for annotations only)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for statement in node.body for n in ast.walk(statement)}
    return skip


def import_graph() -> dict[str, dict[str, int]]:
    """Module -> {imported module: line} for every import inside pkmodel, those inside functions
    included (typing-only ones aside). ``from pkmodel.x import name`` is an edge to the module
    ``pkmodel.x.name`` when there is one, else to ``pkmodel.x``; a package's ``__init__`` is its
    own module, not implied by importing one of its submodules."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, dict[str, int]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _typing_only(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: dict[str, int] = {}
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base
                           for a in node.names]
            for target in targets:
                if target in paths and target != name:
                    edges.setdefault(target, node.lineno)
        graph[name] = edges
    return graph


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _cycle(graph: dict[str, dict[str, int]], component: list[str]) -> list[str]:
    """One cycle through the component's first module, as ``module:line -> module`` steps."""
    members, start = set(component), component[0]
    path, seen = [start], {start}

    def walk(v: str) -> bool:
        for w in sorted(graph[v]):
            if w == start:
                path.append(w)
                return True
            if w in members and w not in seen:
                seen.add(w)
                path.append(w)
                if walk(w):
                    return True
                path.pop()
        return False

    walk(start)
    return [f"{a}:{graph[a][b]} imports {b}" for a, b in itertools.pairwise(path)]


def test_the_cycle_finder_finds_a_cycle_through_imports_inside_functions():
    graph = {"a": {"b": 3}, "b": {"c": 10}, "c": {"a": 42}, "d": {"a": 1}}
    assert strongly_connected(graph) == [["a", "b", "c"]]
    assert _cycle(graph, ["a", "b", "c"]) == ["a:3 imports b", "b:10 imports c",
                                              "c:42 imports a"]
    live = import_graph()
    assert "pkmodel.pk.population.loading" in live["pkmodel.pk.resolver"]  # inside a function
    assert "pkmodel.pk.population.spec" not in live["pkmodel.pk.population.prior"]  # typing


def test_no_import_cycle_anywhere_in_pkmodel():
    graph = import_graph()
    cycles = [" -> ".join(_cycle(graph, c)) for c in strongly_connected(graph)]
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_tests_mirror_the_package():
    """Tests of a subpackage live in the folder of the same path under tests/ (tests/pk/population/
    for pkmodel/pk/population/...); the root holds the foundations' tests, the docs' and the
    shared helpers. A folder of tests that names no subpackage, or a test file in the root named
    for a subpackage, is out of place."""
    tests = PACKAGE.parent / "tests"
    folders = {p.parent.relative_to(tests) for p in tests.rglob("test_*.py")}
    for folder in folders - {Path(".")}:
        assert (PACKAGE / folder / "__init__.py").is_file(), f"tests/{folder} mirrors nothing"
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    misplaced = [p.name for p in tests.glob("test_*.py")
                 if any(p.stem.startswith(f"test_{s}_") or p.stem == f"test_{s}"
                        for s in subpackages - {"data"})]
    assert not misplaced, f"move {misplaced} into the folder of their subpackage"
