"""``pkmodel describe`` and ``pkmodel classical``."""

from __future__ import annotations

from pkmodel.cli.output import add_cohort_argument, emit_json, load_cohort_arg

__all__ = ["register"]


def _describe(args) -> int:
    summary = load_cohort_arg(args).describe()
    if args.json:
        emit_json(summary.to_dict())
    else:
        print(summary)
    return 0


def _classical(args) -> int:
    from pkmodel.data import classical_analysis

    cohort = load_cohort_arg(args)
    result = classical_analysis(cohort)
    if args.json:
        emit_json({"cohort": cohort.name, "notes": list(cohort.notes), **result.to_dict()})
    else:
        for note in cohort.notes:
            print(f"note: {note}")
        print(result)
    return 0


def register(subparsers) -> None:
    """Add the cohort sub-commands."""
    p = subparsers.add_parser("describe", help="counts, remission rates and TL by outcome")
    add_cohort_argument(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(handler=_describe)

    p = subparsers.add_parser(
        "classical", help="the source study's analysis: Mann-Whitney, ROC AUC, Youden cut-off"
    )
    add_cohort_argument(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(handler=_classical)
