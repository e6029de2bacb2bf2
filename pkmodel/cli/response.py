"""``pkmodel fit``, ``curve``, ``threshold`` and the main job ``pkmodel analyze``."""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

from pkmodel.cli.options import probability
from pkmodel.cli.output import (
    add_cohort_argument,
    add_sampler_options,
    check_plot_path,
    emit_json,
    fit_exit,
    load_cohort_arg,
    phase,
    print_fit,
)
from pkmodel.disclaimer import DISCLAIMER
from pkmodel.errors import ConvergenceWarning, SpecificationError
from pkmodel.files import atomic_path, output_files, staged_outputs

__all__ = ["register"]


def _fit_from_args(args):
    from pkmodel.response import RemissionModel

    exposure = None  # the specification first: its options are checked before any work
    if args.exposure:
        exposure = {"pk_model": args.pk_model, "assume": _assumptions(args.assume or ()),
                    "population_draws": args.population_draws}
        if args.pk_history is not None:
            exposure |= {"history": args.pk_history,
                         "history_time_unit": args.pk_history_time_unit}
    elif (args.assume or args.pk_model != _DEFAULT_PK_MODEL or args.population_draws
          or args.pk_history is not None):
        raise SpecificationError("--assume, --pk-model, --population-draws and --pk-history "
                                 "belong to the exposure-driven model: add --exposure")
    spec = RemissionModel(covariates=tuple(args.covariate or ()), slope_by=args.slope_by,
                          target_accept=args.target_accept, exposure=exposure,
                          integrate_tl=args.integrate_tl)
    phase("reading the cohort")
    cohort = load_cohort_arg(args)
    phase(f"fitting the remission model to {cohort.data['patient_id'].nunique()} patients "
          f"({args.chains} chains x {args.tune} tuning + {args.draws} draws; the first fit of a "
          "model structure also compiles it)")
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        fit = spec.fit(cohort, draws=args.draws, tune=args.tune, chains=args.chains,
                       random_seed=args.seed, cores=args.cores,
                       progressbar=not args.json and sys.stderr.isatty())
    for w in caught:
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    phase(f"fitted in {time.perf_counter() - started:.0f} s")
    return cohort, fit


_DEFAULT_PK_MODEL = "fasanmade2011"


def _assumptions(items) -> dict[str, float]:
    """``COLUMN=VALUE`` pairs of --assume as a dict."""
    out = {}
    for item in items:
        column, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[column.strip()] = float(value)
        except ValueError:
            raise SpecificationError(f"--assume {item!r}: write COLUMN=VALUE, e.g. "
                                     "--assume albumin_g_l=40") from None
    return out


def _add_fit_options(p) -> None:
    p.add_argument("--exposure", action="store_true",
                   help="fit the exposure-driven model: remission from the baseline TL (b_base) "
                        "and the exposure gain of the regimen given (b_gain), from each "
                        "patient's individual PK; needs dose_mg_kg, interval_weeks and the PK "
                        "model's covariates")
    p.add_argument("--pk-model", default=_DEFAULT_PK_MODEL,
                   help="with --exposure: the population PK model of the exposure gains "
                        "(`pkmodel pk models`), or a population fit POPFIT.nc (`pkmodel pk "
                        "fit`; its numbers are recorded in the fit)")
    p.add_argument("--population-draws", type=int, default=None, metavar="K",
                   help="with --exposure: propagate the PK population's uncertainty: one fit "
                        "per K draws of it (a POPFIT.nc's posterior, or a library model's "
                        "published RSEs and stated defaults), pooled; K times the time "
                        "(docs/exposure.md)")
    p.add_argument("--pk-history", default=None, metavar="FILE",
                   help="with --exposure: the patients' TDM histories, a NONMEM-format PK "
                        "dataset (ID = patient_id; doses, troughs with BLQ flags, covariates), "
                        "each up to intensification: every trough informs the patient's PK; "
                        "the cohort's baseline_tl must be the history's last trough")
    p.add_argument("--pk-history-time-unit", choices=("day", "hour", "week"), default="day",
                   help="unit of the --pk-history's TIME (default day)")
    p.add_argument("--assume", action="append", metavar="COLUMN=VALUE",
                   help="with --exposure: a value stated for a PK column the cohort lacks or "
                        "leaves empty, e.g. albumin_g_l=40 (repeatable; recorded in the fit)")
    p.add_argument("--covariate", action="append", metavar="COLUMN",
                   help="adjust for this patient-level column (repeatable)")
    p.add_argument("--slope-by", choices=["disease"], default=None,
                   help="let the TL slope also differ by disease (regularised offsets)")
    p.add_argument("--integrate-tl", action="store_true",
                   help="integrate each censored baseline TL out of its patient's likelihood "
                        "instead of sampling it: one compiled model serves every cohort of the "
                        "same shape, so a refit of new data skips the compile (the same model; "
                        "the draws of a seed differ)")
    add_sampler_options(p, draws=1000, strict_also=(
        ", remission is separated by TL (slope set by the prior) or does not vary at some "
        "month (remission probability set by the prior)"))
    p.add_argument("--seed", type=int, default=None,
                   help="random seed, recorded in the fit (default 0: the same input gives the "
                        "same output)")


def _status(fit) -> dict:
    """Convergence (passed, failed checks) and data origin, for every JSON output of a fit."""
    from pkmodel.response.provenance import fit_status

    return fit_status(fit)


def _print_warnings(fit) -> None:
    """The reconstructed-cohort warning and a failed fit's verdict, first in the text output."""
    for line in _status(fit)["warnings"]:
        print(f"WARNING: {line}")


def _diagnostics_exit(fit, args, cohort) -> int:
    """Print the diagnostics; with ``--strict``, 3 for a failed fit, TL-separated data or
    remission that does not vary at some month."""
    from pkmodel.data import tl_separation
    from pkmodel.data.separation import constant_outcomes

    reasons = []
    if tl_separation(cohort):
        reasons.append("remission is separated by TL, so the slope is set by its prior (see the "
                       "warning above)")
    if constant_outcomes(cohort):
        reasons.append("remission does not vary at some month, so its probability there is set "
                       "by the prior (see the warning above)")
    return fit_exit(fit, args.strict, tuple(reasons))


def _fit(args) -> int:
    with output_files({"-o/--output": args.output}, force=args.force,
                      inputs=[args.cohort]) as out:
        cohort, fit = _fit_from_args(args)
        fit.save(out["-o/--output"])
    if args.json:
        emit_json({"output": str(args.output), **fit.to_dict(), **_status(fit)})
    else:
        _print_warnings(fit)
        print(f"wrote {args.output}")
        print_fit(fit)
    return _diagnostics_exit(fit, args, cohort)


def _load(args):
    from pkmodel.response import load_fit

    return load_fit(args.fit)


def _curve_args(p) -> None:
    p.add_argument("fit", help="a fit saved by `pkmodel fit`")
    p.add_argument("--strategy", action="append", help="strategy (repeatable; default all)")
    p.add_argument("--month", action="append", type=int, help="month (repeatable; default all)")
    p.add_argument("--level", default="population",
                   help="'population' (a new centre) or the name of a fitted centre")


def _month_list(args):
    return args.month if args.month else None


def _curve(args) -> int:
    from pkmodel.response import summarize_curve

    if args.plot:
        check_plot_path(args.plot, force=args.force, inputs=[args.fit])
    with output_files({"--plot": args.plot}, force=args.force, inputs=[args.fit]) as out:
        fit = _load(args)
        curve = fit.remission_curve(strategy=args.strategy, month=_month_list(args),
                                    level=args.level)
        summary = summarize_curve(curve, ci_prob=args.ci_prob)
        if args.plot:
            _save_plot(fit, curve, None, out["--plot"], False, args.ci_prob)
    if args.json:
        emit_json({"level": args.level, "ci_prob": args.ci_prob, "tl_units": "µg/mL",
                   **_status(fit), "curve": summary.to_dict(orient="records")})
    else:
        _print_warnings(fit)
        step = max(1, len(curve["tl"]) // 12)
        grid = curve["tl"].values[::step]
        show = summary[summary.tl.isin(grid)]
        print(f"P(remission), median and {round(args.ci_prob * 100)}% band ({args.level} level)")
        print(show.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return 0


def _threshold(args) -> int:
    fit = _load(args)
    table = fit.futility_threshold(p_min=args.p_min, credibility=args.credibility,
                                   strategy=args.strategy, month=_month_list(args),
                                   level=args.level)
    if args.json:
        emit_json({"tl_units": "µg/mL", **_status(fit),
                   "thresholds": table.to_dict(orient="records")})
    else:
        _print_warnings(fit)
        print(_threshold_text(table))
    return 0


def _threshold_text(table) -> str:
    lines = []
    for r in table.itertuples():
        futile = ("not reached within the grid" if r.tl_futile != r.tl_futile
                  else f"{r.tl_futile:.1f} µg/mL" + _beyond(r, r.tl_futile))
        cross = ("beyond the grid" if r.tl_cross_median != r.tl_cross_median else
                 f"{r.tl_cross_median:.1f}{_beyond(r, r.tl_cross_median)} "
                 f"[{_fmt(r.tl_cross_lower)}, {_fmt(r.tl_cross_upper)}]")
        lines.append(f"{r.strategy}, month {r.month}: futile (P(p<{r.p_min:g}) >= "
                     f"{r.credibility:g}) from TL {futile}; crossing TL median {cross}")
    if "extrapolated" in table and table["extrapolated"].any():
        lo, hi = table["fitted_tl_min"].iloc[0], table["fitted_tl_max"].iloc[0]
        lines.append(f"EXTRAPOLATION: the fitted baseline TLs span {lo:g}-{hi:g} µg/mL; a "
                     "threshold beyond them rests on the model's extrapolation")
    return "\n".join(lines)


def _beyond(r, value: float) -> str:
    """`` (extrapolation)`` for a TL beyond the fitted range."""
    lo, hi = getattr(r, "fitted_tl_min", None), getattr(r, "fitted_tl_max", None)
    return " (extrapolation)" if lo is not None and not lo <= value <= hi else ""


def _fmt(v: float) -> str:
    return "beyond grid" if v != v else f"{v:.1f}"


def _save_plot(fit, curve, thresholds, path, force, ci_prob) -> None:
    from pkmodel.plots import plot_remission_curves

    fmt = check_plot_path(path, force=force)
    fig = plot_remission_curves(fit, curve, thresholds, ci_prob=ci_prob, observed="both")
    with atomic_path(path, force=force) as tmp:
        fig.savefig(tmp, format=fmt, dpi=130)


def _analyze(args) -> int:
    """The main job: cohort, classical analysis, Bayesian fit, curves, thresholds, plot, report."""
    from pkmodel.data import classical_analysis
    from pkmodel.report import write_report
    from pkmodel.response import summarize_curve

    out = Path(args.out)
    fit_path, plot_path = out / "fit.nc", out / "remission_curves.png"
    report_path = out / "report.html"
    # all three outputs or none: staged beside --out, moved in only when all are written
    with staged_outputs(out, [p.name for p in (fit_path, plot_path, report_path)],
                        force=args.force, inputs=[args.cohort]) as staged:
        cohort, fit = _fit_from_args(args)
        classical = classical_analysis(cohort)
        phase("computing curves and thresholds")
        curve = fit.remission_curve()
        thresholds = fit.futility_threshold(p_min=args.p_min, credibility=args.credibility)
        phase(f"writing {fit_path.name}, {plot_path.name} and {report_path.name} to {out}")
        fit.save(staged[fit_path.name])
        _save_plot(fit, curve, thresholds, staged[plot_path.name], False, 0.9)
        write_report(fit, staged[report_path.name], p_min=args.p_min,
                     credibility=args.credibility, random_seed=fit.random_seed,
                     source=fit_path.name)
    diag = fit.diagnostics
    if args.json:
        emit_json({"disclaimer": DISCLAIMER, "cohort": cohort.describe().to_dict(),
                   **classical.to_dict(), **fit.to_dict(), **_status(fit),
                   "thresholds": thresholds.to_dict(orient="records"),
                   "outputs": {"fit": str(fit_path), "plot": str(plot_path),
                               "report": str(report_path)}})
    else:
        print(DISCLAIMER, "\n")
        _print_warnings(fit)
        print(cohort.describe(), "\n")
        print(classical, "\n")
        print("Bayesian remission model:", diag, "\n", sep=" ")
        print_fit(fit)
        print()
        s = summarize_curve(curve)
        grid = [3, 4, 5, 6, 8, 10, 12, 16, 20]
        idx = [int(abs(curve["tl"].values - g).argmin()) for g in grid]
        show = s[s.tl.isin(curve["tl"].values[idx])]
        print("Remission curve (population level), median and 90% band at selected TL:")
        print(show.to_string(index=False, float_format=lambda v: f"{v:.3g}"), "\n")
        print(f"Futility thresholds (p_min {args.p_min:g}, credibility {args.credibility:g}):")
        print(_threshold_text(thresholds), "\n")
        print(f"wrote {fit_path}, {plot_path} and {report_path}")
    return _diagnostics_exit(fit, args, cohort)


def register(subparsers) -> None:
    """Add the remission-model sub-commands."""
    p = subparsers.add_parser("fit", help="fit the Bayesian remission model and save it")
    add_cohort_argument(p)
    p.add_argument("-o", "--output", required=True, help="the netCDF file to write")
    p.add_argument("--force", action="store_true", help="replace an existing output")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_fit_options(p)
    p.set_defaults(handler=_fit)

    p = subparsers.add_parser("curve", help="posterior remission curve of a saved fit")
    _curve_args(p)
    p.add_argument("--ci-prob", type=probability, default=0.9, help="credible band width")
    p.add_argument("--plot", metavar="PNG", help="also write a plot")
    p.add_argument("--force", action="store_true", help="replace an existing plot")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_curve)

    p = subparsers.add_parser("threshold", help="credible futility thresholds of a saved fit")
    _curve_args(p)
    p.add_argument("--p-min", type=probability, default=0.2,
                   help="futile below this P(remission)")
    p.add_argument("--credibility", type=probability, default=0.9,
                   help="required posterior probability that P(remission) < p-min")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_threshold)

    p = subparsers.add_parser(
        "analyze", help="main job: describe, classical analysis, Bayesian fit, curves, "
        "thresholds, plot and HTML report")
    add_cohort_argument(p)
    p.add_argument("--out", default="out",
                   help="folder for fit.nc, remission_curves.png and report.html")
    p.add_argument("--force", action="store_true", help="replace existing outputs")
    p.add_argument("--p-min", type=probability, default=0.2,
                   help="futile below this P(remission)")
    p.add_argument("--credibility", type=probability, default=0.9,
                   help="required posterior probability that P(remission) < p-min")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_fit_options(p)
    p.set_defaults(handler=_analyze)

