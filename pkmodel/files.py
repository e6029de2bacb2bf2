"""Writing outputs safely: to a temporary file beside the target, then renamed into place.

An interrupted run (Ctrl-C, a killed process) therefore leaves either the previous file or the
complete new one, never a partial file, and an existing file is only replaced when asked to.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pkmodel.errors import OutputExistsError

__all__ = ["atomic_path", "check_writable"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Return ``path`` as a Path, raising if it exists and ``force`` is false.

    Call this before long work (a fit) so that a refused output is refused at once.
    """
    target = Path(path)
    if target.exists() and not force:
        raise OutputExistsError(
            f"{target} already exists; pass force=True (--force on the command line) to replace it"
        )
    if target.exists() and target.is_dir():
        raise OutputExistsError(f"{target} is a directory, not a file")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise OutputExistsError(f"the folder {parent} does not exist; create it first")
    return target


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it is renamed to ``path``.

    On any exception (including KeyboardInterrupt) the temporary file is removed and ``path`` is
    left as it was.

    Examples
    --------
    >>> with atomic_path("out.json", force=True) as tmp:  # doctest: +SKIP
    ...     tmp.write_text("{}")
    """
    target = check_writable(path, force=force)
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
