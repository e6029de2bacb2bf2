"""Atomic outputs: renamed into place, usual file mode, nothing left on failure."""

from __future__ import annotations

import os

import pytest

from pkmodel.errors import OutputExistsError
from pkmodel.files import atomic_path


def test_outputs_get_the_usual_file_mode(tmp_path):
    with atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("x")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o666 & ~mask


def test_failed_write_leaves_the_previous_file_and_no_part(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target, force=True) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    with pytest.raises(OutputExistsError, match="--force"):
        with atomic_path(target):
            pass
