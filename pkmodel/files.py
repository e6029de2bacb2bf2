"""Writing outputs safely: to a temporary file beside the target, then renamed into place.

An interrupted run (Ctrl-C, a killed process) therefore leaves either the previous file or the
complete new one, never a partial file, and an existing file is only replaced when asked to.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from pkmodel.errors import OutputExistsError, OutputPathError

__all__ = ["atomic_path", "check_writable", "staged_outputs"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _probe(folder: Path) -> None:
    """Create and remove a file in ``folder``: the only test of writability that also holds for
    root and read-only mounts."""
    try:
        fd, name = tempfile.mkstemp(prefix=".pkmodel-probe-", dir=folder)
    except OSError as exc:
        raise OutputPathError(f"cannot write in the folder {folder} ({exc.strerror or exc}); "
                              "choose a folder you can write to") from None
    os.close(fd)
    os.unlink(name)


def check_writable(
    path: str | os.PathLike,
    *,
    force: bool = False,
    inputs: Iterable[str | os.PathLike] = (),
) -> Path:
    """Return ``path`` as a Path if an output can be written there; raise at once otherwise.

    Call this before long work (a fit), so that a refused output is refused before the work.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``force`` is false.
    OutputPathError
        If ``path`` exists but is not a regular file (a folder, a symbolic link, a device or a
        FIFO: ``force`` never replaces those), is one of ``inputs`` (the files the command
        reads), lies under something that is not a folder, or its folder cannot be written.
    """
    target = Path(path)
    for source in inputs:
        if source is not None and _same_file(target, Path(source)):
            raise OutputPathError(f"{target} is an input of this command; write the output to "
                                  "another file")
    if target.is_symlink() or (target.exists() and not target.is_file()):
        kind = ("a folder" if target.is_dir() and not target.is_symlink() else
                "a symbolic link" if target.is_symlink() else "a device, FIFO or socket")
        raise OutputPathError(f"{target} is {kind}, not a regular file; pkmodel only writes "
                              "regular files: choose another path")
    if target.exists() and not force:
        raise OutputExistsError(
            f"{target} already exists; use --force (force=True in Python) to replace it"
        )
    parent = target.parent if str(target.parent) else Path(".")
    for folder in (parent, *parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise OutputPathError(f"{folder} is a file, so {target} cannot be created under "
                                      "it; choose another path")
            break
    if not parent.is_dir():
        raise OutputPathError(f"the folder {parent} does not exist; create it first")
    _probe(parent)
    return target


@contextlib.contextmanager
def staged_outputs(
    folder: str | os.PathLike,
    names: Iterable[str],
    *,
    force: bool = False,
    inputs: Iterable[str | os.PathLike] = (),
) -> Iterator[dict[str, Path]]:
    """Write several outputs all or nothing: yield temporary paths, move them into ``folder``.

    The outputs are written into a hidden staging folder beside ``folder``; only when the block
    finishes are they moved into ``folder`` (created then if needed), each by an atomic rename.
    An exception or Ctrl-C inside the block leaves ``folder`` as it was: no new folder, no partial
    outputs, and with ``force`` the previous outputs untouched.

    Raises
    ------
    OutputExistsError, OutputPathError
        As :func:`check_writable`, for every output, before the block runs.
    """
    folder = Path(folder)
    names = list(names)
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise OutputPathError(f"{folder} exists and is not a folder; choose another --out")
    targets = {name: folder / name for name in names}
    parent = folder.parent if str(folder.parent) else Path(".")
    base = next(f for f in (parent, *parent.parents) if f.exists() or f == Path(f.anchor))
    if folder.is_dir():
        for target in targets.values():
            check_writable(target, force=force, inputs=inputs)
    elif not base.is_dir():
        raise OutputPathError(f"{base} is a file, so the folder {folder} cannot be created "
                              "under it; choose another --out")
    _probe(base)
    stage = Path(tempfile.mkdtemp(prefix=f".{folder.name}.pkmodel-", dir=base))
    try:
        yield {name: stage / name for name in names}
        folder.mkdir(parents=True, exist_ok=True)
        for name, target in targets.items():
            staged = stage / name
            os.chmod(staged, 0o666 & ~_umask())
            os.replace(staged, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike, *, force: bool = False, inputs: Iterable[str | os.PathLike] = ()
) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it is renamed to ``path``.

    On any exception (including KeyboardInterrupt) the temporary file is removed and ``path`` is
    left as it was.

    Examples
    --------
    >>> with atomic_path("out.json", force=True) as tmp:  # doctest: +SKIP
    ...     tmp.write_text("{}")
    """
    target = check_writable(path, force=force, inputs=inputs)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".part", dir=target.parent if str(target.parent) else "."
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
