"""One research-software disclaimer, pkmodel.DISCLAIMER, in every output that carries one."""

from __future__ import annotations

import re
from pathlib import Path

import pkmodel
from pkmodel.disclaimer import DISCLAIMER

PACKAGE = Path(pkmodel.__file__).parent


def test_no_module_writes_a_disclaimer_of_its_own():
    """Outside pkmodel/disclaimer.py, "bedside" is only in the package's docstring."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
            if re.search(r"bedside|research software", line, flags=re.IGNORECASE):
                found.append((path.relative_to(PACKAGE).as_posix(), number))
    assert [f for f in found if f[0] != "disclaimer.py"] == [("__init__.py", 3)]


def test_the_outputs_carry_it(capsys):
    from types import SimpleNamespace

    from pkmodel.cli import response, scenarios
    from pkmodel.cli.main import main
    from pkmodel.report import RESEARCH_DISCLAIMER
    from pkmodel.report.sections import disclaimer_section

    assert pkmodel.DISCLAIMER is DISCLAIMER
    assert response.DISCLAIMER is DISCLAIMER and scenarios.DISCLAIMER is DISCLAIMER
    assert RESEARCH_DISCLAIMER is DISCLAIMER
    assert DISCLAIMER in disclaimer_section(SimpleNamespace(cohort_notes=()))
    assert main(["--help"]) == 0
    assert DISCLAIMER in " ".join(capsys.readouterr().out.split())
