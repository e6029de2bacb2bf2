"""Shared output helpers of the command line: JSON printing and loading a cohort argument."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["add_cohort_argument", "check_plot_path", "emit_json", "load_cohort_arg", "phase",
           "separator", "to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars, NaN and nested containers to plain JSON (NaN becomes null)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def emit_json(payload: dict) -> None:
    """Print ``payload`` as deterministic JSON (sorted keys) on standard output."""
    json.dump(to_jsonable(payload), sys.stdout, indent=2, sort_keys=True, allow_nan=False)
    sys.stdout.write("\n")


def phase(text: str) -> None:
    """One line of progress on stderr, when stderr is not a terminal (a terminal gets the
    sampler's progress bar instead): a piped or logged run shows where it is."""
    if not sys.stderr.isatty():
        print(f"pkmodel: {text}", file=sys.stderr, flush=True)


def separator(text: str) -> str:
    """An ``argparse`` type for ``--sep``: one character; ``\\t`` or ``tab`` mean a tab."""
    import argparse

    if text in ("\\t", "tab", "TAB"):
        return "\t"
    if len(text) != 1 or text in ('"', "\n", "\r"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a delimiter: give one character, e.g. ',' or ';', or tab as "
            "--sep tab")
    return text


def check_plot_path(path, *, force: bool, inputs=()) -> str:
    """Check a figure's output path before the work: writable, and a format matplotlib writes.

    Returns the format (the file's suffix, ``png`` when it has none).
    """
    from matplotlib.backend_bases import FigureCanvasBase

    from pkmodel.errors import SpecificationError
    from pkmodel.files import check_writable

    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    supported = FigureCanvasBase.get_supported_filetypes()
    if fmt not in supported:
        raise SpecificationError(f"cannot write a figure as .{fmt}; use one of "
                                 f"{', '.join('.' + k for k in sorted(supported))}")
    check_writable(path, force=force, inputs=inputs)
    return fmt


def add_cohort_argument(parser) -> None:
    """Add the optional COHORT argument and the reader options to a sub-command."""
    parser.add_argument("cohort", nargs="?", default=None,
                        help="cohort CSV/Parquet file (default: the shipped RECONSTRUCTED Ungar "
                             "2019 cohort)")
    parser.add_argument("--sep", default=",", type=separator,
                        help="CSV delimiter, one character (default ','; 'tab' for a tab)")
    parser.add_argument("--keep-ati-positive", action="store_true",
                        help="keep patients with antibodies to infliximab (excluded by default)")
    from pkmodel.cli.options import nonnegative_float

    parser.add_argument("--min-tl", type=nonnegative_float, default=3.0, metavar="UG_ML",
                        help="exclude patients with baseline TL below this, µg/mL (default 3; "
                             "0 keeps everyone)")


def load_cohort_arg(args):
    """Read the cohort named on the command line, or the shipped one."""
    from pkmodel.data import load_ungar2019, read_cohort

    options = {"exclude_ati_positive": not args.keep_ati_positive,
               "min_tl_ug_ml": args.min_tl if args.min_tl > 0 else None}
    if args.cohort is None:
        return load_ungar2019(**options)
    return read_cohort(args.cohort, sep=args.sep, **options)
