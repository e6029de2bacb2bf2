"""Writing outputs safely: to a temporary file beside the target, then renamed into place.

An interrupted run (Ctrl-C, a killed process) therefore leaves either the previous file or the
complete new one, never a partial file, and an existing file is only replaced when asked to:
without ``force`` the new file is linked into place, which fails if a file of that name appeared
meanwhile (another run finished first), so that two runs never both "succeed" on one path.

A command with several outputs (a fit and its figures) writes them all or none
(:func:`output_files`, :func:`staged_outputs`), and holds a lock beside each output while it
works (``.NAME.pkmodel-lock``, holding its process id): a second run on the same output fails at
once, instead of after its own work. A lock left by a process that no longer runs is taken over.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from pkmodel.errors import OutputExistsError, OutputPathError

__all__ = ["atomic_path", "check_writable", "output_files", "output_lock", "staged_outputs"]


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
    with output_lock(folder):
        stage = Path(tempfile.mkdtemp(prefix=f".{folder.name}.pkmodel-", dir=base))
        try:
            yield {name: stage / name for name in names}
            folder.mkdir(parents=True, exist_ok=True)
            _commit({stage / name: target for name, target in targets.items()}, force)
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
        _commit({tmp: target}, force)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _move(source: Path, target: Path, force: bool) -> None:
    """Move a finished file into place: replacing (``force``) or only where none exists."""
    os.chmod(source, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
    if force:
        os.replace(source, target)
        return
    try:
        os.link(source, target)  # fails if the target exists: an exclusive create
    except FileExistsError:
        raise OutputExistsError(f"{target} was created by another process while this run "
                                "worked; nothing was replaced: use --force (force=True in "
                                "Python) to replace it, or choose another output") from None
    except OSError as exc:  # a file system without hard links
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV,
                             errno.EMLINK):
            raise
        if target.exists():
            raise OutputExistsError(f"{target} was created by another process while this run "
                                    "worked; use --force to replace it") from None
        os.replace(source, target)
        return
    os.unlink(source)


def _commit(moves: Mapping[Path, Path], force: bool) -> None:
    """Move every finished file into place, all or nothing: if one cannot be placed, those
    already placed by this call are removed again (their previous files are only replaced with
    ``force``, where the call cannot fail on an existing file)."""
    placed: list[Path] = []
    try:
        for source, target in moves.items():
            _move(Path(source), Path(target), force)
            placed.append(Path(target))
    except BaseException:
        if not force:
            for target in placed:
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
        raise


def _lock_path(target: Path) -> Path:
    parent = target.parent if str(target.parent) else Path(".")
    return parent / f".{target.name}.pkmodel-lock"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextlib.contextmanager
def output_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold the lock of one output while it is being made; refuse one held by a running process.

    Raises
    ------
    OutputExistsError
        If another running process holds it (its id is named).
    """
    lock = _lock_path(Path(path))
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text(encoding="ascii").strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and pid != os.getpid() and _running(pid):
                raise OutputExistsError(
                    f"{path} is being written by another pkmodel run (process {pid}); wait "
                    f"for it to finish, or choose another output (if no such run exists, "
                    f"delete {lock})") from None
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()  # left by a process that no longer runs
            continue
        except OSError as exc:
            raise OutputPathError(f"cannot write beside {path} ({exc.strerror or exc}); "
                                  "choose a folder you can write to") from None
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(str(os.getpid()))
        break
    else:  # pragma: no cover - a lock re-created between two attempts
        raise OutputExistsError(f"{path} is being written by another pkmodel run; choose "
                                "another output")
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()


@contextlib.contextmanager
def output_files(
    targets: Mapping[str, str | os.PathLike | None],
    *,
    force: bool = False,
    inputs: Iterable[str | os.PathLike | None] = (),
) -> Iterator[dict[str, Path]]:
    """The outputs of one command, all or nothing: checked and locked before the work, written
    to temporary files beside them, moved into place together when the block finishes.

    Parameters
    ----------
    targets : mapping
        The option that names each output (``"-o"``, ``"--gof"``) to its path; ``None``
        entries (an output not asked for) are left out.
    force : bool
        Replace existing files.
    inputs : iterable of paths
        The files the command reads, which no output may be.

    Yields
    ------
    dict
        The option to the temporary path to write (it does not exist yet; its suffix is the
        target's, so that a writer that reads the format from it finds it).

    Raises
    ------
    OutputPathError
        Two options naming the same file, an output that is an input, not a regular file, or
        in a folder that cannot be written (before the work).
    OutputExistsError
        An existing output without ``force``, or one another pkmodel run is writing.

    An exception or Ctrl-C inside the block leaves every output as it was.
    """
    wanted = {option: Path(p) for option, p in targets.items() if p is not None}
    inputs = [i for i in inputs if i is not None]
    seen: dict[str, str] = {}
    for option, target in wanted.items():
        key = os.path.normcase(os.path.abspath(target))
        if key in seen:
            raise OutputPathError(f"{seen[key]} and {option} name the same file {target}; give "
                                  "each output its own path")
        seen[key] = option
        check_writable(target, force=force, inputs=inputs)
    with contextlib.ExitStack() as stack:
        for target in wanted.values():
            stack.enter_context(output_lock(target))
        temps: dict[str, Path] = {}
        try:
            for option, target in wanted.items():
                parent = target.parent if str(target.parent) else Path(".")
                fd, name = tempfile.mkstemp(prefix=f".{target.stem}.pkmodel-",
                                            suffix=target.suffix, dir=parent)
                os.close(fd)
                os.unlink(name)  # the writer creates it
                temps[option] = Path(name)
            yield dict(temps)
            _commit({temps[o]: wanted[o] for o in wanted}, force)
        finally:
            for tmp in temps.values():
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
