"""Entry point of the ``pkmodel`` command.

Errors that pkmodel raises on purpose (bad input, refused overwrite) print one message and exit
with status 2; Ctrl-C exits with 130 and leaves outputs as they were.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

from pkmodel.disclaimer import DISCLAIMER
from pkmodel.errors import PkmodelError, PkmodelWarning

__all__ = ["build_parser", "main"]

# Each module adds its sub-commands with ``register(subparsers)``.
_COMMAND_MODULES = ("pkmodel.cli.cohort", "pkmodel.cli.response", "pkmodel.cli.pk",
                    "pkmodel.cli.report", "pkmodel.cli.scenarios", "pkmodel.cli.recommend")


class _HelpFormatter(argparse.HelpFormatter):
    """Help that states each option's default, unless the help already says it or there is
    none worth stating (``None``, a switch that is off)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or "default" in text.lower()
                or action.default in (None, False, argparse.SUPPRESS)):
            return text
        default = action.default
        if isinstance(default, list | tuple):
            default = " ".join(str(v) for v in default)
        return f"{text} (default: {default})".replace("%", "%%")


class _Parser(argparse.ArgumentParser):
    """pkmodel's parsers, the sub-commands' too (argparse builds them with this class)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered."""
    from pkmodel import __version__

    parser = _Parser(
        prog="pkmodel",
        description="Bayesian exposure-response and PK modelling of infliximab intensification. "
        + DISCLAIMER,
    )
    parser.add_argument("--version", action="version", version=f"pkmodel {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """pkmodel's own warnings as one plain message; others as Python shows them."""
    if issubclass(category, PkmodelWarning):
        print(f"pkmodel: warning: {message}", file=sys.stderr)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    warnings.showwarning = _show_warning
    try:  # Ctrl-C while the libraries load (seconds on a busy machine): nothing started yet
        parser = build_parser()
    except KeyboardInterrupt:
        print("pkmodel: interrupted; no output was written", file=sys.stderr)
        return 130
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (argparse printed it)
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    if getattr(args, "handler", None) is None:
        # `pkmodel` or `pkmodel pk` alone: the help of the command group asked for
        group = getattr(args, "help_parser", None) or parser
        group.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except PkmodelError as exc:
        print(f"pkmodel: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pkmodel: interrupted; no output was written", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `pkmodel describe --json | head`: the reader left; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
