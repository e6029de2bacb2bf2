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
