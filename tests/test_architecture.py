"""The layers of docs/architecture.md: every import inside pkmodel points downwards."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pkmodel"
FOUNDATIONS = {"errors", "ranges", "files", "sampling", "model_cache", "tables", "validation",
               "disclaimer", "diagnostics", "netcdf", "fits"}
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
