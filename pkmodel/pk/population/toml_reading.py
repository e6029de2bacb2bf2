"""Reading a TOML file's tables with every error located at its line and key.

Generic machinery, knowing nothing of what the tables mean: :func:`parse_toml` reads a file
(TOML's own syntax errors with their line and column), :class:`LocatedReader` checks each table's
keys against those known there (an unknown key is named with its line, the closest known key and
all of them) and turns an error raised while building an object from a table into one located at
the key the message names. The specification reader (:mod:`pkmodel.pk.population.spec`) uses it.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pkmodel.errors import SpecFileError, SpecificationError

__all__ = ["LocatedReader", "key_lines", "parse_toml"]


def parse_toml(path: str | os.PathLike) -> tuple[dict, str]:
    """The parsed tables of a TOML file and its text.

    Raises
    ------
    SpecFileError
        If the file is missing or unreadable, or is not valid TOML (with TOML's line and
        column).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is no key
    except FileNotFoundError:
        raise SpecFileError("no such specification file", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecFileError(f"cannot read the specification ({exc})", source=str(path)) from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        line = int(match.group(1)) if match else None
        column = f", column {match.group(2)}" if match else ""
        raise SpecFileError(f"not valid TOML{column}: {message}", source=str(path),
                            line=line) from None


def key_lines(text: str) -> dict[tuple, int]:
    """The line (1-based) of each key and table of a TOML text, by path.

    Array-of-tables entries get their index (``("covariates", 0, "effect")``). Simple, line-based
    scanning: enough to point at a key in a specification file (multi-line values are skipped
    over only if their continuation lines hold no ``key =``).
    """
    lines: dict[tuple, int] = {}
    counts: dict[tuple, int] = {}
    current: tuple = ()

    def parts(dotted: str) -> tuple:
        return tuple(p.strip().strip("\"'") for p in dotted.split("."))

    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.split("#", 1)[0].strip() if '"' not in line else line.strip()
        if match := re.match(r"^\[\[\s*([^\]]+?)\s*\]\]", stripped):
            path = parts(match.group(1))
            index = counts.get(path, -1) + 1
            counts[path] = index
            current = (*path, index)
            lines.setdefault(current, number)
            lines.setdefault(path, number)
        elif match := re.match(r"^\[\s*([^\]]+?)\s*\]", stripped):
            current = parts(match.group(1))
            lines.setdefault(current, number)
        elif match := re.match(r"^([A-Za-z0-9_\-\"'. ]+?)\s*=", stripped):
            lines.setdefault((*current, *parts(match.group(1))), number)
    return lines


def label(path: tuple) -> str:
    """How an error names a table: ``[model]``, ``[parameters.cl]``, ``[[covariates]] entry 2``."""
    if not path:
        return "the specification"
    if isinstance(path[-1], int):
        return "[[" + ".".join(str(p) for p in path[:-1]) + f"]] entry {path[-1] + 1}"
    return "[" + ".".join(str(p) for p in path) + "]"


class LocatedReader:
    """Reads tables of a parsed TOML file (or of a plain dict), errors located in the file.

    Parameters
    ----------
    source : str, optional
        The file, named in errors.
    text : str, optional
        Its text, to find the line of a key (no lines without it).
    """

    def __init__(self, source: str | None, text: str | None) -> None:
        self.source = source
        self.lines = key_lines(text) if text is not None else {}

    def error(self, message: str, path: tuple, key: str | None = None) -> SpecFileError:
        """An error at ``path``: the key's line, else that of the nearest table above it."""
        line = None
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                line = self.lines[path[:end]]
                break
        return SpecFileError(message, source=self.source, line=line, key=key)

    def table(self, value: Any, path: tuple, known: tuple[str, ...]) -> dict:
        """``value`` as a dict, refused unless a table whose keys are all in ``known``."""
        where = label(path)
        if not isinstance(value, Mapping):
            raise self.error(f"{where} must be a table of keys, not {value!r}", path)
        for key in value:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
                raise self.error(
                    f"unknown key {key!r} in {where}"
                    + (f" (did you mean {close[0]!r}?)" if close else "")
                    + f"; known keys: {', '.join(known)}", (*path, key), key)
        return dict(value)

    def build(self, make: Callable[[], Any], *paths: tuple) -> Any:
        """Construct, turning a :class:`SpecificationError` into one located at the key it names
        among those under ``paths`` (else at the first path)."""
        try:
            return make()
        except SpecFileError:
            raise
        except (SpecificationError, TypeError) as exc:  # TypeError: a value of the wrong kind
            message = str(exc)
            keys = [k for path in paths for k in self.lines
                    if len(k) == len(path) + 1 and k[:len(path)] == path]
            key = next((k for k in sorted(keys, key=lambda k: -len(str(k[-1])))
                        if re.search(rf"\b{re.escape(str(k[-1]))}\b", message)), None)
            where = label(paths[0] if key is None else key[:-1])
            raise self.error(f"{where}: {message}", key or paths[0],
                             None if key is None else str(key[-1])) from None
