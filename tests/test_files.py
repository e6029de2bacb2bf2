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


def test_a_file_that_appears_during_the_work_is_never_replaced_without_force(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(OutputExistsError, match="created by another process"):
        with atomic_path(target) as tmp:
            tmp.write_text("mine")
            target.write_text("another run's")  # finished first
    assert target.read_text() == "another run's"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_output_files_are_all_or_nothing_and_locked(tmp_path):
    from pkmodel.errors import OutputPathError
    from pkmodel.files import output_files

    a, b = tmp_path / "a.nc", tmp_path / "b.png"
    with pytest.raises(KeyboardInterrupt), output_files({"-o": a, "--gof": b}) as out:
        out["-o"].write_text("fit")
        assert (tmp_path / ".a.nc.pkmodel-lock").read_text() == str(os.getpid())
        with pytest.raises(OutputExistsError, match="being written by another"):
            # as another process would see it (a running process holds the lock)
            (tmp_path / ".b.png.pkmodel-lock").write_text(str(os.getppid()))
            with output_files({"--plot": b}):
                pass
        raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == []  # nothing, not even a lock
    with output_files({"-o": a, "--gof": b, "--vpc": None}) as out:
        assert out["-o"].suffix == ".nc" and out["--gof"].suffix == ".png"
        out["-o"].write_text("fit")
        out["--gof"].write_text("figure")
        assert not a.exists()  # moved in only at the end
    assert a.read_text() == "fit" and b.read_text() == "figure"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nc", "b.png"]
    with pytest.raises(OutputPathError, match="-o and --gof name the same file"):
        with output_files({"-o": tmp_path / "c", "--gof": tmp_path / "." / "c"}):
            pass
