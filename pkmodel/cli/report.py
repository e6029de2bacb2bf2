"""``pkmodel report FIT.nc -o report.html``: the self-contained HTML report of a saved fit."""

from __future__ import annotations

import warnings
from pathlib import Path

from pkmodel.cli.options import probability
from pkmodel.cli.output import emit_json
from pkmodel.errors import ConvergenceWarning, FitFileError
from pkmodel.files import output_files

__all__ = ["register"]


def _report(args) -> int:
    from pkmodel.fits import load
    from pkmodel.report import report_status, write_report
    from pkmodel.response import RemissionFit

    with output_files({"-o/--output": args.output}, force=args.force,
                      inputs=[args.fit]) as out:
        with warnings.catch_warnings():
            # the report itself shows a failed fit's diagnostics as FAIL, with what to do
            warnings.simplefilter("ignore", ConvergenceWarning)
            fit = load(args.fit, warn=False)
        if not isinstance(fit, RemissionFit):
            raise FitFileError(f"{args.fit}: a population PK fit; write its run report with "
                               f"`pkmodel pk report {args.fit} -o {args.output}`")
        write_report(fit, out["-o/--output"], p_min=args.p_min, credibility=args.credibility,
                     ci_prob=args.ci_prob, random_seed=args.seed, source=Path(args.fit).name)
    path = Path(args.output)
    diag = fit.diagnostics
    status = report_status(fit)
    if args.json:
        emit_json({"output": str(path), "diagnostics": diag.to_dict(), "status": status.label,
                   "rank_test_flags": list(status.flagged), "bytes": path.stat().st_size})
    else:
        print(f"wrote {path} (diagnostics {status.label}"
              + (f": the rank test flags {', '.join(status.flagged)}" if status.flagged else "")
              + ")")
    return 0


def register(subparsers) -> None:
    """Add the ``report`` sub-command."""
    p = subparsers.add_parser(
        "report", help="write a self-contained HTML report of a saved fit (data, model and "
        "priors, diagnostics, curves, thresholds, checks)")
    p.add_argument("fit", help="a fit saved by `pkmodel fit` or `pkmodel analyze` (a population "
                               "PK fit has its own: `pkmodel pk report`)")
    p.add_argument("-o", "--output", required=True, help="the HTML file to write")
    p.add_argument("--force", action="store_true", help="replace an existing report")
    p.add_argument("--p-min", type=probability, default=0.2,
                   help="futile below this P(remission)")
    p.add_argument("--credibility", type=probability, default=0.9,
                   help="required posterior probability that P(remission) < p-min")
    p.add_argument("--ci-prob", type=probability, default=0.9,
                   help="width of credible intervals")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the posterior predictive checks (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_report)
