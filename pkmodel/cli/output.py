"""Shared output helpers of the command line: JSON printing and loading a cohort argument."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import numpy as np

__all__ = ["add_cohort_argument", "emit_json", "load_cohort_arg", "to_jsonable"]


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


def add_cohort_argument(parser) -> None:
    """Add the optional COHORT argument and the reader options to a sub-command."""
    parser.add_argument("cohort", nargs="?", default=None,
                        help="cohort CSV/Parquet file (default: the shipped RECONSTRUCTED Ungar "
                             "2019 cohort)")
    parser.add_argument("--sep", default=",", help="CSV delimiter (default ',')")
    parser.add_argument("--keep-ati-positive", action="store_true",
                        help="keep patients with antibodies to infliximab (excluded by default)")
    parser.add_argument("--min-tl", type=float, default=3.0, metavar="UG_ML",
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
