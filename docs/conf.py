"""Sphinx configuration of the pkmodel documentation (PyData theme, MyST, numpydoc).

Build: ``sphinx-build -W -b html docs docs/_build`` (tests/test_docs.py does this in CI).
Notebooks are rendered from their stored outputs (never executed here): they are copied from
``notebooks/`` into ``docs/notebooks/`` at the start of every build.
"""

from __future__ import annotations

import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

project = "pkmodel"
author = "pkmodel developers"
copyright = "pkmodel developers"
try:
    release = version("pkmodel")
except PackageNotFoundError:  # building from a source tree that is not installed
    release = "0.0.0+unknown"
version = release

extensions = [
    "myst_nb",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
]

exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# --- MyST and notebooks: render the committed outputs, never execute
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_merge_streams = True

# --- API reference from docstrings
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"  # numpydoc shows the documented types
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# --- HTML: the PyData theme, self-contained (no external fonts, analytics or version switcher)
html_theme = "pydata_sphinx_theme"
html_title = f"pkmodel {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
# no left sidebar: the pages have no sub-pages to list, and the article gets its width
html_sidebars = {"**": []}
html_static_path = ["_static"]
html_css_files = ["pkmodel.css"]  # tables that fit the page
html_show_sourcelink = False


def _copy_notebooks() -> None:
    """Copy notebooks/*.ipynb into docs/notebooks/ (a build folder, not committed)."""
    target = DOCS / "notebooks"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir()
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        shutil.copy2(nb, target / nb.name)


_copy_notebooks()
