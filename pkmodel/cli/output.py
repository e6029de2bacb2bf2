"""Shared output helpers of the command line: JSON printing, a fit's printout and exit status,
the options every fitting command shares, and loading a cohort argument."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from pkmodel.cli.options import fraction_at_least_half, nonnegative_int, positive_int

__all__ = ["STRICT_EXIT", "add_cohort_argument", "add_sampler_options", "check_plot_path",
           "emit_json", "fit_exit", "fit_text", "load_cohort_arg", "phase", "print_fit",
           "separator", "to_jsonable"]

#: The exit status of a fitting command run with ``--strict`` whose fit fails its checks.
STRICT_EXIT = 3


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
    """An ``argparse`` type for ``--sep``: one character; ``\\t`` or ``tab`` mean a tab,
    ``space`` or ``whitespace`` any run of blanks (NONMEM's whitespace-separated files)."""
    import argparse

    if text in ("\\t", "tab", "TAB"):
        return "\t"
    if text.lower() in ("space", "whitespace"):
        return r"\s+"
    if len(text) != 1 or text in ('"', "\n", "\r"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a delimiter: give one character, e.g. ',' or ';', or tab as "
            "--sep tab, or space for any run of blanks")
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


def add_sampler_options(p, *, draws: int, strict_also: str = "") -> None:
    """The options of every command that samples a fit: ``--draws`` (default ``draws``),
    ``--tune``, ``--chains``, ``--cores``, ``--target-accept`` and ``--strict`` (with
    ``strict_also``, the command's other reasons to fail, in its help)."""
    p.add_argument("--draws", type=positive_int, default=draws,
                   help=f"posterior draws per chain (default {draws})")
    p.add_argument("--tune", type=nonnegative_int, default=1000,
                   help="tuning steps per chain (default 1000)")
    p.add_argument("--chains", type=positive_int, default=4, help="number of chains (default 4)")
    p.add_argument("--cores", type=positive_int, default=None,
                   help="run chains in parallel on this many cores (default: all, up to --chains);"
                   " the same seed gives the same draws whatever the number")
    p.add_argument("--target-accept", type=fraction_at_least_half, default=0.9,
                   help="NUTS target acceptance rate (default 0.9; raise it against divergences)")
    p.add_argument("--strict", action="store_true",
                   help=f"exit with status {STRICT_EXIT} if the fit fails its convergence checks"
                        + strict_also)


def fit_text(fit, ci_prob: float = 0.9) -> str:
    """A fit's summary table as text: 3 significant digits, ESS as whole numbers, R-hat to 3
    decimals; ``fixed`` for the diagnostics of a value that is not sampled (NONMEM's FIX), and
    ``n/a`` for an R-hat that one chain cannot give. The same for every kind of fit."""
    table = fit.summary(ci_prob).astype({"ess_bulk": object, "ess_tail": object,
                                         "r_hat": object})
    fixed = table["ess_bulk"].isna()
    for column, fmt in (("ess_bulk", "{:.0f}"), ("ess_tail", "{:.0f}"), ("r_hat", "{:.3f}")):
        values = table[column]
        table[column] = [("fixed" if is_fixed else "n/a") if value is None or value != value
                         else fmt.format(value) for value, is_fixed in zip(values, fixed,
                                                                           strict=True)]
    return table.to_string(index=False, float_format="{:.3g}".format, na_rep="-")


def print_fit(fit, ci_prob: float = 0.9) -> None:
    """Print a fit's summary table (``--ci-prob`` wide intervals) and notes on standard output,
    the same for every kind of fit; :func:`fit_exit` prints its diagnostics."""
    print(f"posterior summary: mean, SD, median and {round(100 * ci_prob)}% equal-tailed "
          "interval (lower, upper)")
    print(fit_text(fit, ci_prob))
    for note in fit.notes:
        print(f"note: {note}")


def fit_exit(fit, strict: bool, reasons: tuple[str, ...] = ()) -> int:
    """Print the fit's convergence diagnostics on standard error (also with ``--json``), and
    return the exit status: :data:`STRICT_EXIT` with ``--strict`` when the fit fails its gate or
    for one of ``reasons`` (each printed, e.g. data that leave a parameter to its prior), else
    0."""
    print(str(fit.diagnostics), file=sys.stderr)
    if strict:
        for reason in reasons:
            print(f"strict: {reason}", file=sys.stderr)
    return STRICT_EXIT if strict and (not fit.converged or reasons) else 0
