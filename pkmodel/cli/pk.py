"""``pkmodel pk models``, ``simulate``, ``forecast``, ``fit`` (population PK estimation),
``compare`` (population fits ranked by PSIS-LOO), ``report``, and ``import-nonmem`` /
``export-nonmem`` (NONMEM control streams)."""

from __future__ import annotations

import dataclasses
import re
import sys
import warnings

import numpy as np

from pkmodel.cli.options import (
    nonnegative_int,
    positive_float,
    positive_int,
    probability,
)
from pkmodel.cli.output import add_sampler_options, emit_json, phase, separator
from pkmodel.disclaimer import DISCLAIMER
from pkmodel.sampling import POPULATION_DRAWS

__all__ = ["register"]


def _covariates(args) -> dict:
    cov = {"weight_kg": args.weight}
    if args.albumin_g_l is not None:
        cov["albumin_g_dl"] = _albumin_g_dl(args.albumin_g_l)
    for name in ("ati", "female", "immunomodulator"):
        if getattr(args, name):
            cov[name] = 1.0
    return cov


def _albumin_g_dl(g_l: float) -> float:
    """Albumin from the command line (g/L, the cohort tables' unit) in the models' g/dL, checked
    in the unit the user wrote."""
    from pkmodel.data.plausibility import check_plausible
    from pkmodel.pk.covariate_registry import from_cohort

    check_plausible("--albumin-g-l", "albumin_g_l", g_l)
    return float(from_cohort({"albumin_g_l": g_l})["albumin_g_dl"])


def _pk_model(name: str):
    """A library model by name, or a population fit's file (``POPFIT.nc``) as a model."""
    from pkmodel.pk import resolve_model

    return resolve_model(name)


def _simulate(args) -> int:
    from pkmodel.pk import DoseSchedule, parse_regimen, simulate, steady_state_troughs

    model = _pk_model(args.model)
    regimens = [parse_regimen(r) for r in (args.regimen or ["standard"])]
    cov = _covariates(args)
    results = []
    for reg in regimens:
        entry: dict = {"regimen": reg.to_dict()}
        if args.switch_week is not None:
            base = DoseSchedule.from_regimen(parse_regimen(args.switch_from),
                                             until_week=args.switch_week)
            n_new = max(2, int(np.ceil((args.weeks - args.switch_week) / reg.interval_weeks)))
            sched = base.switched(reg, at_day=args.switch_week * 7.0, n_doses=n_new)
            ds = simulate(model, sched, cov, until_week=args.weeks)
            entry["switch"] = {"from": parse_regimen(args.switch_from).label,
                               "at_week": args.switch_week}
        else:
            ds = simulate(model, reg, cov, until_week=args.weeks)
        if "trough" in ds:
            tr = ds["trough"].isel(patient=0, draw=0)
            entry["troughs"] = [{"week": float(t) / 7.0, "trough_ug_ml": float(v)}
                                for t, v in zip(ds["dose_time_days"].values, tr.values,
                                                strict=True)]
        else:  # one dose within --weeks: no trough before a second dose yet
            entry["troughs"] = []
        ss = steady_state_troughs(model, [reg], cov).values.ravel()[0]
        entry["steady_state_trough_ug_ml"] = float(ss)
        if args.n_patients > 0:
            pop = steady_state_troughs(model, [reg], cov, n_draws=args.n_patients,
                                       random_seed=args.random_seed).values.ravel()
            q = np.quantile(pop, [0.05, 0.25, 0.5, 0.75, 0.95])
            entry["population"] = {
                "n": int(args.n_patients),
                "quantiles_ug_ml": dict(zip(["q05", "q25", "median", "q75", "q95"],
                                            q.tolist(), strict=True)),
                "p_trough_ge_target": float(np.mean(pop >= args.target)),
            }
        results.append(entry)
    payload = {"model": model.name, "citation": model.citation, "covariates": cov,
               "target_ug_ml": args.target, "units": {"trough": "µg/mL", "time": "week"},
               "results": results}
    if args.json:
        emit_json(payload)
        return 0
    print(f"model: {model.title}")
    print(f"covariates: {cov}")
    print(f"{'regimen':<16} {'steady-state trough (µg/mL)':>28}"
          + (f" {'population median [90% range]':>32} {'P(>= target)':>13}"
             if args.n_patients else ""))
    for entry in results:
        line = f"{entry['regimen']['label']:<16} {entry['steady_state_trough_ug_ml']:>28.2f}"
        if "population" in entry:
            q = entry["population"]["quantiles_ug_ml"]
            line += (f" {q['median']:>14.2f} [{q['q05']:.2f}, {q['q95']:.2f}]".ljust(33)
                     + f" {entry['population']['p_trough_ge_target']:>12.2f}")
        print(line)
    return 0


def _models(args) -> int:
    from pkmodel.pk import MODELS
    from pkmodel.pk.models import COVARIATES

    rows = [{"name": m.name, "aliases": list(m.aliases), "title": m.title,
             "population": m.population,
             "covariates": {c: COVARIATES[c]["unit"] for c in m.covariates_used},
             "random_effects": list(m.random_effects),
             "residual_error": {"proportional": m.proportional_sd,
                                "additive_ug_ml": m.additive_sd_ug_ml},
             "citation": m.citation} for m in MODELS.values()]
    if args.json:
        emit_json({"models": rows})
        return 0
    for row in rows:
        cov = ", ".join(f"{c} ({u})" for c, u in row["covariates"].items())
        print(f"{row['name']}  [{', '.join(row['aliases'])}]")
        print(f"  population: {row['population']}")
        print(f"  covariates: {cov}")
        doi = re.search(r"doi:\S+?(?=[ );]|\.?$)", row["citation"])
        print(f"  reference:  {row['title'].rsplit(': ', 1)[-1]}"
              + (f" ({doi.group(0).rstrip('.')})" if doi else ""))
    return 0


def _forecast(args) -> int:
    from pkmodel.errors import PKDataError
    from pkmodel.pk import (
        MODELS,
        estimate_averaged,
        estimate_individual,
        example_dataset,
        forecast_troughs,
        read_nonmem,
    )

    names = args.model or ["fasanmade2009"]
    models = (list(MODELS.values()) if names == ["average"]
              else [_pk_model(name) for name in names])
    if args.dataset is None:
        data = example_dataset()
        print("pkmodel: using the shipped SIMULATED example dataset (not patient data); give "
              "a DATASET to use yours", file=sys.stderr)
    else:
        # a fitted model's declared covariates (WGT...) are read as its fit read them
        data = read_nonmem(args.dataset, sep=args.sep, time_unit=args.time_unit,
                           covariates=models[0].covariate_registry if len(models) == 1
                           else None)
    if args.id is None and len(data) > 1:
        raise PKDataError(f"the dataset has {len(data)} patients", source=data.source,
                          column="ID", fix=f"choose one with --id ({', '.join(data.ids)})")
    subject = data[args.id if args.id is not None else data.ids[0]]
    if subject.observations is None:
        raise PKDataError(f"ID {subject.id!r} has no observation (EVID 0, MDV 0)",
                          source=data.source, column="DV", fix="add the measured troughs")
    cov = dict(subject.covariates)
    history = subject.covariate_history
    if args.weight is not None:
        cov["weight_kg"] = args.weight
        if history is not None:  # one constant weight replaces the dataset's WT
            history = history.with_values(weight_kg=args.weight)
    if "weight_kg" not in cov:
        raise PKDataError("the patient's weight is unknown", source=data.source, column="WT",
                          fix="add a WT column (kg) or pass --weight")
    if len(models) > 1 and args.method != "map":
        raise PKDataError("model averaging uses method map", column=None,
                          fix="drop --method nuts, or give one --model")
    given = cov if history is None else history
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if len(models) > 1:
            est = estimate_averaged(given, subject.schedule, subject.observations,
                                    models=models, draws=args.draws,
                                    random_seed=args.random_seed)
            for name, one in est.estimates.items():
                verdict = one.diagnostics["plausibility"]
                if args.strict and not verdict["plausible"] and est.weights[name] > 0.5:
                    raise PKDataError(verdict["message"], fix="correct the data, or drop "
                                      "--strict to see the estimate")
        else:
            if args.method == "nuts":
                phase(f"sampling the posterior of ID {subject.id} with NUTS ({args.chains} "
                      f"chains x {args.draws} draws)")
            est = estimate_individual(models[0], given, subject.schedule, subject.observations,
                                      method=args.method, draws=args.draws, tune=args.tune,
                                      chains=args.chains, random_seed=args.random_seed,
                                      strict=args.strict)
        fc = forecast_troughs(est, args.regimen or None, target_ug_ml=args.target,
                              credible=args.credible, n_doses=args.n_doses,
                              random_seed=args.random_seed)
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    payload = {"model": "average" if len(models) > 1 else models[0].name, "id": subject.id,
               "covariates": cov, "covariates_vary": history is not None,
               "covariate_history": None if history is None else history.to_dict(),
               "estimate": est.summary(), "forecast": fc.to_dict(),
               "warnings": [str(w.message) for w in caught],
               "data_notes": list(data.notes), "disclaimer": DISCLAIMER}
    if history is not None:
        payload["covariates_at_last_record"] = history.last()
    if args.json:
        emit_json(payload)
        return 0
    for note in data.notes:  # what the reader left unused, with its rows
        print(f"note: {note}")
    if history is None:
        print(f"patient {subject.id}, covariates {cov}, {len(subject.observations)} "
              "observation(s)")
    else:
        print(f"patient {subject.id}, {len(subject.observations)} observation(s); covariates "
              f"vary ({', '.join(history.varying())}), last value carried forward:")
        names = list(history.names)
        print("  " + f"{'day':>8}" + "".join(f" {n:>14}" for n in names))
        for row in history.rows():
            print("  " + f"{row['day']:>8g}" + "".join(f" {row[n]:>14g}" for n in names))
        print("  parameters and steady-state forecasts at the last record's covariates")
    if len(models) > 1:
        print("model averaging: posterior model weights (log evidence)")
        for name, weight in est.weights.items():
            print(f"  {name:<26} {weight:6.3f}  ({est.log_evidence[name]:.2f})")
    else:
        print(f"model: {models[0].title}")
        for k, v in payload["estimate"]["parameters"].items():
            print(f"  {k}: {v['median']:.3g} {v['unit']} "
                  f"(90% CrI {v['q05']:.3g}-{v['q95']:.3g})")
    print(f"forecast trough ({fc.horizon}), {int(fc.credible * 100)}% credible interval, "
          f"P(trough >= {fc.target_ug_ml:g} µg/mL):")
    for row in payload["forecast"]["regimens"]:
        print(f"  {row['regimen']:<14} {row['median_ug_ml']:7.2f} "
              f"[{row['lower_ug_ml']:.2f}, {row['upper_ug_ml']:.2f}]  "
              f"P = {row['p_trough_ge_target']:.2f}")
    print(DISCLAIMER)
    return 0


#: Subjects per page of the per-subject plots of ``pk fit --plots``.
_PER_PAGE = 12


def _plot_files(folder, n_subjects: int, etas: bool) -> dict:
    """The files ``--plots DIR`` writes, by name: GOF, pcVPC, etas (a model with random
    effects) and the per-subject pages."""
    from pathlib import Path

    folder = Path(folder)
    pages = -(-n_subjects // _PER_PAGE)
    names = ("gof", "vpc", "etas") if etas else ("gof", "vpc")
    files = {f"--plots {name}": folder / f"{name}.png" for name in names}
    return files | {f"--plots individuals_{k:02d}": folder / f"individuals_{k:02d}.png"
                    for k in range(1, pages + 1)}


def _fit(args) -> int:
    from pathlib import Path

    from pkmodel.errors import OutputPathError
    from pkmodel.files import output_files
    from pkmodel.pk.population import read_population_data

    spec = _fit_spec(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = read_population_data(args.dataset, spec, sep=args.sep)
    outputs = {"-o/--output": args.output, "--gof": args.gof, "--vpc": args.vpc}
    made = None
    if args.plots is not None:
        folder = Path(args.plots)
        if folder.exists() and not folder.is_dir():
            raise OutputPathError(f"--plots {folder}: not a folder; give a folder (created if "
                                  "missing) for the figures")
        if not folder.exists():
            if not folder.parent.is_dir():
                raise OutputPathError(f"--plots {folder}: its parent folder does not exist")
            made = folder
        outputs |= _plot_files(folder, data.n_subjects, bool(spec.bsv_parameters))
    try:
        if made is not None:
            made.mkdir()
        with output_files(outputs, force=args.force, inputs=[args.dataset, args.spec]) as out:
            return _fit_into(args, out, spec, data, caught)
    except BaseException:
        if made is not None and made.is_dir() and not any(made.iterdir()):
            made.rmdir()  # nothing written: no empty folder left behind
        raise


def _fit_spec(args):
    """The specification of ``pk fit``, with ``--prior`` and ``--prior-weight``."""
    from pkmodel.pk.population import read_spec

    spec = read_spec(args.spec)
    if args.prior is not None:
        from pkmodel.pk.population import with_prior

        spec = with_prior(spec, args.prior, 1.0 if args.prior_weight is None else args.prior_weight)
    elif args.prior_weight is not None:
        if spec.prior is None:
            from pkmodel.errors import SpecificationError

            raise SpecificationError("--prior-weight needs --prior MODEL (or a [prior] table in "
                                     "the specification)")
        spec = dataclasses.replace(spec, prior=dataclasses.replace(spec.prior,
                                                                   weight=args.prior_weight))
    return spec


def _fit_into(args, out: dict, spec, data, caught: list) -> int:
    """``pkmodel pk fit``, writing its outputs to ``out`` (moved into place together)."""
    from pkmodel.cli.output import check_plot_path, fit_exit, print_fit
    from pkmodel.errors import ConvergenceWarning
    from pkmodel.pk.population import fit_population

    formats = {o: check_plot_path(getattr(args, o[2:]), force=args.force)
               for o in ("--gof", "--vpc") if o in out}
    with warnings.catch_warnings(record=True) as fitting:
        warnings.simplefilter("always")
        phase(f"fitting a {spec.structure_label()} model to {data.n_subjects} subjects, "
              f"{data.n_observations} observations")
        fit = fit_population(data, spec, draws=args.draws, tune=args.tune, chains=args.chains,
                             cores=args.cores, target_accept=args.target_accept,
                             random_seed=args.random_seed,
                             progressbar=not args.json and sys.stderr.isatty(),
                             strict=args.strict)
    # a failed gate is said by the diagnostics below; a note of the data is printed once, as a
    # note, even where it was also a warning
    caught = [w for w in [*caught, *fitting] if not issubclass(w.category, ConvergenceWarning)
              and str(w.message) not in fit.notes]
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    fit.save(out["-o/--output"])
    figures = []
    if formats:
        from pkmodel.plots.population import plot_goodness_of_fit, plot_pc_vpc

        for option, plot in (("--gof", plot_goodness_of_fit), ("--vpc", plot_pc_vpc)):
            if option in formats:
                phase(f"drawing {getattr(args, option[2:])}")
                plot(fit).savefig(out[option], format=formats[option], dpi=110)
                figures.append(str(getattr(args, option[2:])))
    if args.plots is not None:
        figures += _draw_plots(fit, args.plots, out)
    payload = fit.to_dict(args.credible) | {"output": str(args.output), "figures": figures,
                                            "warnings": [str(w.message) for w in caught],
                                            "disclaimer": DISCLAIMER}
    if args.json:
        emit_json(payload)
        return fit_exit(fit, args.strict, _slip_reasons(fit))
    print(f"population PK fit: {payload['structure']}, {payload['n_subjects']} subjects, "
          f"{payload['n_observations']} observations ({payload['n_below_lloq']} below the LLOQ)")
    if spec.prior is not None:
        print(f"prior: {spec.prior.model}, weight {spec.prior.weight:g} (informs "
              f"{', '.join(spec.prior.terms)})")
        for note in spec.prior.notes:
            print(f"  prior note: {note}")
    print_fit(fit, args.credible)
    for name, value in payload["shrinkage"].items():
        print(f"eta shrinkage {name}: {value:.1%}")
    print(f"saved to {args.output}" + (f"; figures {', '.join(figures)}" if figures else ""))
    print(DISCLAIMER)
    return fit_exit(fit, args.strict, _slip_reasons(fit))


def _slip_reasons(fit) -> tuple[str, ...]:
    """The posterior medians' unit slip, if any: a reason for ``--strict`` to fail."""
    return tuple(n for n in fit.notes if n.startswith("the posterior medians are implausible"))


def _draw_plots(fit, folder, out: dict) -> list[str]:
    """Every figure of ``--plots DIR``: GOF, pcVPC, etas, the per-subject pages."""
    from pathlib import Path

    from pkmodel.cli.output import phase
    from pkmodel.plots.population import plot_goodness_of_fit, plot_pc_vpc
    from pkmodel.plots.subjects import plot_etas, plot_individuals

    phase(f"drawing the figures into {folder}")
    figures = {"gof": plot_goodness_of_fit(fit), "vpc": plot_pc_vpc(fit)}
    if fit.spec.bsv_parameters:
        figures["etas"] = plot_etas(fit)
    for k, fig in enumerate(plot_individuals(fit, per_page=_PER_PAGE), start=1):
        figures[f"individuals_{k:02d}"] = fig
    written = []
    for name, fig in figures.items():
        fig.savefig(out[f"--plots {name}"], format="png", dpi=100)
        written.append(str(Path(folder) / f"{name}.png"))
    return written


def _report(args) -> int:
    from pathlib import Path

    from pkmodel.files import output_files
    from pkmodel.pk.population import load_population_fit
    from pkmodel.report import write_population_report

    with output_files({"-o/--output": args.output}, force=args.force,
                      inputs=[args.fit]) as out:
        fit = load_population_fit(args.fit, warn=False)  # the report shows a failed gate as FAIL
        write_population_report(fit, out["-o/--output"], ci_prob=args.credible,
                                n_replicates=args.replicates, random_seed=args.random_seed,
                                source=Path(args.fit).name)
    path = Path(args.output)
    if args.json:
        emit_json({"output": str(path), "diagnostics": fit.diagnostics.to_dict(),
                   "bytes": path.stat().st_size})
    else:
        print(f"wrote {path} (diagnostics {'PASS' if fit.converged else 'FAIL'})")
    return 0


def _compare(args) -> int:
    from pathlib import Path

    from pkmodel.errors import SpecificationError
    from pkmodel.pk.population import load_population_fit
    from pkmodel.pk.population.comparison import compare_fits

    names = [Path(p).name for p in args.fits]
    if len(set(names)) < len(names):  # two files of one name in different folders
        names = [str(p) for p in args.fits]
    if len(set(names)) < len(names):
        raise SpecificationError("the same fit file is given twice; give each fit once")
    fits = {name: load_population_fit(path, warn=False)
            for name, path in zip(names, args.fits, strict=True)}
    result = compare_fits(fits, level=args.level)
    unconverged = [name for name, fit in fits.items() if not fit.converged]
    verdicts = result.verdicts() + [
        f"{name} FAILS its convergence checks: its ELPD is not to be trusted before it passes "
        "(pkmodel pk fit with more tuning and draws)" for name in unconverged]
    if args.json:
        emit_json({"level": result.level, "good_k": result.good_k,
                   "reliable": result.reliable and not unconverged,
                   "fits": result.table.to_dict("records"), "verdicts": verdicts})
        return 0
    what = "a subject" if args.level == "subject" else "an observation"
    print(f"PSIS-LOO, leaving out {what} at a time; higher ELPD predicts better")
    print(f"{'rank':>4}  {'fit':<28} {'ELPD':>10} {'SE':>7} {'ELPD diff':>10} {'SE diff':>8} "
          f"{'p_loo':>7}  k-hat > {result.good_k:.2f}")
    for row in result.table.to_dict("records"):
        print(f"{row['rank']:>4}  {row['name']:<28} {row['elpd']:>10.1f} {row['se']:>7.1f} "
              f"{row['elpd_diff']:>10.1f} {row['dse']:>8.1f} {row['p_loo']:>7.1f}  "
              f"{row['n_high_k']} (max {row['max_k']:.2f})")
    for line in verdicts:
        print(f"- {line}")
    return 0


def _write_text(text: str, output, force: bool, inputs: list) -> None:
    """``text`` into ``output`` (all or nothing), or to standard output without one."""
    from pkmodel.files import output_files

    if output is None:
        sys.stdout.write(text)
        return
    with output_files({"-o/--output": output}, force=force, inputs=inputs) as out:
        out["-o/--output"].write_text(text, encoding="utf-8")
    print(f"wrote {output}", file=sys.stderr)


def _import_nonmem(args) -> int:
    from pkmodel.pk.population.control_stream import read_control_stream

    imported = read_control_stream(args.control_stream, time_unit=args.time_unit,
                                   concentration_unit=args.concentration_unit,
                                   amount_unit=args.amount_unit, drug=args.drug)
    _write_text(imported.toml, args.output, args.force, [args.control_stream])
    return 0


def _export_nonmem(args) -> int:
    from pkmodel.pk.population import read_spec
    from pkmodel.pk.population.control_stream import write_control_stream

    text = write_control_stream(read_spec(args.spec), data=args.data,
                                occasions=args.occasions)
    _write_text(text, args.output, args.force, [args.spec])
    return 0


def _nonmem_parsers(sub) -> None:
    """``pkmodel pk import-nonmem`` and ``pkmodel pk export-nonmem``."""
    from pkmodel.pk.units import AMOUNT_UNITS, CONCENTRATION_UNITS

    p = sub.add_parser("import-nonmem", help="write the specification (TOML) of a NONMEM "
                                             "control stream (ADVAN1-4/11/12, see "
                                             "docs/population_pk.md)")
    p.add_argument("control_stream", metavar="RUN.mod", help="the NONMEM control stream")
    p.add_argument("-o", "--output", default=None, metavar="SPEC.toml",
                   help="the specification to write (default: print it)")
    p.add_argument("--time-unit", choices=("hour", "day", "week"), default=None,
                   help="unit of the dataset's TIME, which a control stream does not state "
                        "(default hour)")
    p.add_argument("--concentration-unit", choices=tuple(CONCENTRATION_UNITS), default=None,
                   help="unit of DV (default µg/mL = mg/L)")
    p.add_argument("--amount-unit", choices=tuple(AMOUNT_UNITS), default=None,
                   help="unit of AMT (default mg)")
    p.add_argument("--drug", default=None, help="the drug's name for plot labels")
    p.add_argument("--force", action="store_true", help="replace the output if it exists")
    p.set_defaults(handler=_import_nonmem)

    p = sub.add_parser("export-nonmem", help="write a NONMEM control stream of a "
                                             "specification, for a cross-check in NONMEM")
    p.add_argument("spec", metavar="SPEC.toml", help="the model specification")
    p.add_argument("-o", "--output", default=None, metavar="RUN.mod",
                   help="the control stream to write (default: print it)")
    p.add_argument("--data", default="data.csv", metavar="FILE",
                   help="the dataset file $DATA names (default data.csv)")
    p.add_argument("--occasions", type=int, default=None, metavar="K",
                   help="the number of occasions, numbered 1..K in the dataset's occasion "
                        "column: required for a specification with iov (one ETA per "
                        "occasion, $OMEGA BLOCK(1) SAME)")
    p.add_argument("--force", action="store_true", help="replace the output if it exists")
    p.set_defaults(handler=_export_nonmem)


def _seed_option(p) -> None:
    p.add_argument("--seed", "--random-seed", dest="random_seed", type=int, default=None,
                   help="the one random seed (default 0: the same input gives the same output)")


def register(subparsers) -> None:
    """Add ``pkmodel pk models``, ``pkmodel pk simulate``, ``pkmodel pk forecast``,
    ``pkmodel pk fit``, ``pkmodel pk compare``, ``pkmodel pk report``, ``pkmodel pk
    import-nonmem`` and ``pkmodel pk export-nonmem``."""
    from pkmodel.pk import MODELS

    pk = subparsers.add_parser("pk", help="population PK: models, simulate, forecast, "
                                          "fit, compare, report, import-nonmem, "
                                          "export-nonmem")
    sub = pk.add_subparsers(dest="pk_command", metavar="PK_COMMAND")
    pk.set_defaults(handler=None, help_parser=pk)
    names = ", ".join(MODELS)

    p = sub.add_parser("models", help="the published population PK models: population, "
                                      "covariates, reference")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_models)

    p = sub.add_parser("simulate", help="troughs under regimens for a patient or a population")
    p.add_argument("--pk-model", "--model", dest="model", default="fasanmade2009",
                   help=f"population PK model: {names} (default fasanmade2009; "
                        "`pkmodel pk models` describes them), or a population fit POPFIT.nc")
    p.add_argument("--regimen", "--regimens", dest="regimen", action="extend", nargs="+",
                   metavar="REGIMEN",
                   help="e.g. '10mg/kg q8w' or a name (standard, escalation, shortening_q6w, "
                        "shortening_q4w, escalation_q4w); several may follow, or repeat it "
                        "(default standard)")
    p.add_argument("--weight", type=positive_float, default=70.0,
                   help="body weight, kg (default 70)")
    p.add_argument("--albumin-g-l", "--albumin", dest="albumin_g_l", type=positive_float,
                   default=None, metavar="G_L",
                   help="serum albumin, g/L as in cohort tables (default: the model's "
                        "reference)")
    p.add_argument("--ati", action="store_true", help="antibodies to infliximab present")
    p.add_argument("--female", action="store_true", help="female (models with a sex effect)")
    p.add_argument("--immunomodulator", action="store_true",
                   help="concomitant immunomodulator (models with that effect)")
    p.add_argument("--weeks", type=positive_float, default=54.0, help="course length, weeks")
    p.add_argument("--switch-week", type=positive_float, default=None,
                   help="switch to --regimen at this week, from --switch-from before it")
    p.add_argument("--switch-from", default="standard",
                   help="regimen before the switch (default standard)")
    p.add_argument("--n-patients", type=nonnegative_int, default=0,
                   help="also simulate this many virtual patients' steady-state troughs")
    p.add_argument("--target", type=positive_float, default=5.0, help="target trough, µg/mL")
    _seed_option(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_simulate)

    p = sub.add_parser("forecast",
                       help="individual Bayesian estimation from troughs, forecast per regimen")
    p.add_argument("dataset", nargs="?", default=None,
                   help="NONMEM-style CSV (ID, TIME, AMT, RATE, DV, EVID, MDV, ...); default: "
                        "the shipped SIMULATED example (patients 101, 102, 103)")
    p.add_argument("--id", default=None, help="patient ID (needed when the file has several)")
    p.add_argument("--pk-model", "--model", dest="model", action="append",
                   help=f"population model (prior): {names}, or a population fit POPFIT.nc "
                        "(pkmodel pk fit); repeat it, or give 'average' for "
                        "all, to average the models by how well each explains the troughs "
                        "(default fasanmade2009)")
    p.add_argument("--regimen", "--regimens", dest="regimen", action="extend", nargs="+",
                   metavar="REGIMEN",
                   help="candidate regimens; several may follow, or repeat it (default: the five "
                        "named regimens)")
    p.add_argument("--target", type=positive_float, default=5.0, help="target trough, µg/mL")
    p.add_argument("--ci-prob", "--credible", dest="credible", type=probability, default=0.9,
                   help="credible interval width")
    p.add_argument("--method", choices=("map", "nuts"), default="map",
                   help="map (fast, default) or nuts (full MCMC)")
    p.add_argument("--n-doses", type=positive_int, default=None,
                   help="forecast the trough before dose N+1 after switching (default: steady "
                        "state)")
    p.add_argument("--weight", type=positive_float, default=None, help="weight, kg, if not in WT")
    p.add_argument("--time-unit", default="day", help="unit of TIME: day, hour or week")
    p.add_argument("--sep", default=",", type=separator,
                   help="CSV delimiter, one character (default ','; 'tab' for a tab)")
    p.add_argument("--draws", type=positive_int, default=1000, help="posterior draws (per chain)")
    p.add_argument("--tune", type=positive_int, default=1000, help="NUTS tuning steps")
    p.add_argument("--chains", type=positive_int, default=4, help="NUTS chains")
    _seed_option(p)
    p.add_argument("--strict", action="store_true",
                   help="refuse an implausible individual estimate (likely a unit slip in AMT, "
                        "DV or TIME) instead of warning")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_forecast)

    p = sub.add_parser("fit", help="fit a population PK model (Bayesian, NUTS) to a "
                                   "multi-patient NONMEM-style dataset")
    p.add_argument("dataset", help="NONMEM-style CSV (ID, TIME, AMT, RATE, DV, EVID, MDV, "
                                   "censoring and covariate columns)")
    p.add_argument("--spec", required=True, metavar="SPEC.toml",
                   help="the model specification (TOML; see docs/population_pk.md)")
    p.add_argument("-o", "--output", "--out", dest="output", required=True,
                   metavar="POPFIT.nc", help="the fitted model, netCDF")
    p.add_argument("--force", action="store_true", help="replace the output if it exists")
    add_sampler_options(p, draws=POPULATION_DRAWS, strict_also=(
        ", or the posterior medians say a unit slipped; refuse before sampling a dataset whose "
        "units look slipped (DV in ng/mL, AMT in µg, TIME in another unit than the "
        "specification's)"))
    p.add_argument("--ci-prob", "--credible", dest="credible", type=probability, default=0.9,
                   help="credible interval width")
    p.add_argument("--sep", default=",", type=separator,
                   help="CSV delimiter, one character (default ','; 'tab' for a tab)")
    p.add_argument("--prior", default=None, metavar="MODEL",
                   help=f"a published model as an informative prior ({names}): typical values, "
                        "omegas and matching covariate effects (see docs/population_pk.md)")
    p.add_argument("--prior-weight", type=positive_float, default=None, metavar="W",
                   help="how much the published model counts (default 1): its prior SDs "
                        "(0.2 on log typical values, 0.3 on log omega, 0.2 on thetas) are "
                        "divided by sqrt(W); W -> 0 leaves the specification's own priors")
    p.add_argument("--gof", default=None, metavar="PNG",
                   help="write the goodness-of-fit plots (DV vs PRED/IPRED, CWRES and IWRES vs "
                        "time and prediction)")
    p.add_argument("--vpc", default=None, metavar="PNG",
                   help="write the prediction-corrected visual predictive check (200 replicates)")
    p.add_argument("--plots", default=None, metavar="DIR",
                   help="write every figure into DIR (created if missing): gof.png, vpc.png, "
                        "etas.png and individuals_NN.png (DV, IPRED and PRED of 12 subjects a "
                        "page)")
    _seed_option(p)
    p.add_argument("--json", action="store_true",
                   help="print JSON: the summary rows (parameter, unit, mean, sd, median, "
                        "lower, upper, ess_bulk, ess_tail, r_hat), shrinkage, diagnostics")
    p.set_defaults(handler=_fit)

    p = sub.add_parser("compare", help="rank population fits of one dataset by PSIS-LOO "
                                       "(expected log predictive density), with k-hat checks")
    p.add_argument("fits", nargs="+", metavar="POPFIT.nc",
                   help="two or more fits of the same dataset, saved by `pkmodel pk fit`")
    p.add_argument("--level", choices=("subject", "observation"), default="subject",
                   help="leave out a subject (its random effects integrated out: how a new "
                        "patient arrives; default) or an observation")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_compare)

    p = sub.add_parser("report", help="write the HTML run report of a population PK fit (data, "
                                      "model and priors, convergence, parameters, GOF, pcVPC)")
    p.add_argument("fit", metavar="POPFIT.nc", help="a fit saved by `pkmodel pk fit`")
    p.add_argument("-o", "--output", required=True, metavar="REPORT.html",
                   help="the HTML file to write")
    p.add_argument("--force", action="store_true", help="replace an existing report")
    p.add_argument("--ci-prob", "--credible", dest="credible", type=probability, default=0.9,
                   help="credible interval width")
    p.add_argument("--replicates", type=positive_int, default=200,
                   help="replicates of the pcVPC (default 200)")
    p.add_argument("--seed", "--random-seed", dest="random_seed", type=int, default=None,
                   help="seed of the pcVPC's replicates (default: the fit's seed)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_report)

    _nonmem_parsers(sub)
