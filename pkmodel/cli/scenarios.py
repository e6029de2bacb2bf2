"""``pkmodel scenarios``: intensification regimens over a virtual population."""

from __future__ import annotations

import contextlib
import json

from pkmodel.cli.output import check_plot_path, emit_json
from pkmodel.disclaimer import DISCLAIMER
from pkmodel.errors import SpecificationError
from pkmodel.files import output_files
from pkmodel.validation import check_probability

__all__ = ["register"]

# The most virtual patients one command runs (it runs in bounded memory, chunk by chunk, but
# its run time grows with the number); more goes through the Python API (see _check_options).
MAX_PATIENTS = 1_000_000


def _check_options(args) -> None:
    """Refuse out-of-range options before any work (exit 2), never clamp them silently."""
    if args.population is None and not 1 <= args.n_patients <= MAX_PATIENTS:
        if args.n_patients < 1:
            raise SpecificationError(f"--n-patients must be at least 1, not {args.n_patients}")
        raise SpecificationError(
            f"--n-patients {args.n_patients:,} is more than one command runs "
            f"({MAX_PATIENTS:,}); for more, run several --seed values and pool the results, or "
            "call pkmodel.simulate_scenarios from Python with a dask.distributed client "
            "(client=..., chunk_size patients per task), which runs any number in bounded "
            "memory")
    if args.min_tl < 0:
        raise SpecificationError(f"--min-tl must be 0 (predict everyone) or a positive TL in "
                                 f"µg/mL, not {args.min_tl:g}")
    if args.chunk_size < 1:
        raise SpecificationError(f"--chunk-size must be at least 1 patient, not "
                                 f"{args.chunk_size}")
    for name in ("p_min", "credibility", "ci_prob"):
        check_probability(f"--{name.replace('_', '-')}", getattr(args, name))
    if args.draws is not None and args.draws < 1:
        raise SpecificationError(f"--posterior-draws must be at least 1, not {args.draws}")


@contextlib.contextmanager
def _client(address: str | None):
    """A dask.distributed client of the scheduler at ``address``, or None for local threads."""
    if address is None:
        yield None
        return
    try:
        from distributed import Client
    except ImportError:
        raise SpecificationError("--dask-scheduler needs the 'distributed' package: pip install "
                                 "distributed") from None
    try:
        client = Client(address, timeout=20)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SpecificationError(f"cannot reach the dask scheduler at {address!r} ({exc}); "
                                 "check the address and that the scheduler runs") from None
    try:
        yield client
    finally:
        client.close()


def _check_draws(args, fit) -> None:
    post = fit.tree["posterior"]
    total = int(post.sizes["chain"] * post.sizes["draw"])
    if args.draws is not None and args.draws > total:
        raise SpecificationError(f"--posterior-draws {args.draws:,} is more than the fit has "
                                 f"({total:,} "
                                 "posterior draws); give at most that, or omit "
                                 "--posterior-draws to use them all")


def _band_text(band: str) -> str:
    return "all bands" if band == "all" else f"{band} µg/mL"


def _row_text(r) -> str:
    """One regimen x band line of the text output."""
    where = f"  {r.regimen:<14} {_band_text(r.band):>14} (n={r.n_patients:>7,}): "
    if r.n_patients == 0:
        return where + "no patients in this band"
    nnt = ""
    if r.nnt == r.nnt:
        interval = (f" [{r.nnt_lower:.1f}, {r.nnt_upper:.1f}]" if r.nnt_lower == r.nnt_lower
                    else " (interval includes no difference)")
        nnt = f"  NNT {r.nnt:.1f}{interval}"
    return (where + f"{r.remission_rate_mean:.2f} [{r.remission_rate_lower:.2f}, "
            f"{r.remission_rate_upper:.2f}]  futile {r.fraction_futile:.1%}{nnt}")


def _strategy_map(items: list[str] | None) -> dict[str, str] | None:
    if not items:
        return None
    out = {}
    for item in items:
        regimen, sep, strategy = item.partition("=")
        if not sep or not regimen.strip() or not strategy.strip():
            raise SpecificationError(f"--map {item!r}: write REGIMEN=STRATEGY, e.g. "
                                     "'7.5mg/kg q8w=dose_escalation'")
        out[regimen.strip()] = strategy.strip()
    return out


def _scenarios(args) -> int:
    _check_options(args)
    inputs = [args.fit, args.population]
    fmt = check_plot_path(args.plot, force=args.force, inputs=inputs) if args.plot else None
    with output_files({"--plot": args.plot}, force=args.force, inputs=inputs) as out:
        return _scenarios_into(args, fmt, out)


def _scenarios_into(args, fmt, out) -> int:
    from pkmodel.response import load_fit
    from pkmodel.response.provenance import fit_status
    from pkmodel.scenarios import VirtualPopulation, scenario_table, simulate_scenarios

    fit = load_fit(args.fit)
    _check_draws(args, fit)
    status = fit_status(fit)
    population = args.population if args.population else VirtualPopulation(args.n_patients)
    with _client(args.dask_scheduler) as client:
        ds = simulate_scenarios(
            fit, population, args.regimens, pk_model=args.pk_model, random_seed=args.seed,
            strategy_map=_strategy_map(args.map), tl_bands_ug_ml=args.bands,
            min_tl_ug_ml=args.min_tl if args.min_tl > 0 else None, p_min=args.p_min,
            credibility=args.credibility, ci_prob=args.ci_prob, reference=args.reference,
            n_draws=args.draws, chunk_size=args.chunk_size, per_patient=False,
            client=client, progress=None if not args.json else False)
    table = scenario_table(ds)
    if args.plot:
        from pkmodel.plots.scenarios import plot_scenarios

        plot_scenarios(ds).savefig(out["--plot"], format=fmt, dpi=130)
    keys = ("pk_model", "random_seed", "baseline_regimen", "min_tl_ug_ml", "p_min",
            "credibility", "ci_prob", "target_tl_ug_ml", "reference_regimen", "level",
            "n_simulated", "n_excluded_below_min_tl", "n_above_fitted_range",
            "n_posterior_draws", "propagated", "not_propagated")
    settings = {k: ds.attrs[k] for k in keys}
    mapping = json.loads(ds.attrs["regimen_strategy"])
    if args.json:
        emit_json({"disclaimer": DISCLAIMER, **status, "settings": settings,
                   "regimen_strategy": mapping, "tl_units": "µg/mL",
                   "summary": table.to_dict(orient="records"),
                   **({"plot": str(args.plot)} if args.plot else {})})
        return 0
    print(DISCLAIMER, "\n")
    for line in status["warnings"]:
        print(f"WARNING: {line}")
    min_tl = settings["min_tl_ug_ml"]
    excluded = ("every patient predicted (no minimum TL: an extrapolation below the fitted "
                "range)" if min_tl != min_tl else
                f"{settings['n_excluded_below_min_tl']:,} with baseline TL below {min_tl:g} "
                "µg/mL not predicted")
    print(f"{settings['n_simulated']:,} virtual patients ({settings['pk_model']}); {excluded}; "
          f"{settings['n_posterior_draws']} posterior draws; seed {settings['random_seed']}")
    for m in mapping:
        print(f"  {m['regimen']} -> {m['strategy']} ({m['basis']})")
    ci = round(100 * args.ci_prob)
    for month, part in table.groupby("month", sort=True):
        print(f"\nMonth {month}: expected remission rate [{ci}% CrI], fraction futile, "
              f"NNT vs {settings['reference_regimen']} [{ci}% CrI], by baseline-TL band")
        for r in part.itertuples():
            print(_row_text(r))
    if args.plot:
        print(f"\nwrote {args.plot}")
    return 0


def register(subparsers) -> None:
    """Add ``pkmodel scenarios``."""
    p = subparsers.add_parser(
        "scenarios", help="expected remission and futility of intensification regimens over a "
                          "virtual population")
    p.add_argument("fit", help="a fit saved by `pkmodel fit`")
    p.add_argument("--regimen", "--regimens", dest="regimens", action="extend", nargs="+",
                   required=True, metavar="REGIMEN",
                   help="intensified regimens, e.g. '10mg/kg q8w' '5mg/kg q4w'; several may "
                        "follow, or repeat it")
    p.add_argument("--n-patients", type=int, default=10_000,
                   help=f"virtual patients (default population; default 10000, at most "
                        f"{MAX_PATIENTS:,}: beyond, see the Python API with dask)")
    p.add_argument("--population", metavar="CSV",
                   help="a table of patients instead (weight_kg, albumin_g_l, sex, disease, "
                        "immunomodulator, optional baseline_tl)")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed (default 0: the same input gives the same output)")
    p.add_argument("--pk-model", default="by_disease",
                   help="'by_disease' (default: Fasanmade 2011 for CD, 2009 for UC), one "
                        "published model (`pkmodel pk models` lists them), or a population "
                        "fit POPFIT.nc (`pkmodel pk fit`)")
    p.add_argument("--map", action="append", metavar="REGIMEN=STRATEGY",
                   help="predict a regimen the fitted cohort did not receive as this fitted "
                        "strategy (repeatable)")
    p.add_argument("--reference", help="regimen for rate differences and NNT (default: first)")
    p.add_argument("--bands", type=float, nargs="+", default=[5.0, 7.0, 9.0, 12.0],
                   metavar="UG_ML", help="inner edges of the baseline-TL bands, µg/mL")
    p.add_argument("--min-tl", type=float, default=3.0, metavar="UG_ML",
                   help="do not predict patients with a lower baseline TL (default 3; 0 "
                        "predicts everyone)")
    p.add_argument("--p-min", type=float, default=0.2, help="futility: remission probability")
    p.add_argument("--credibility", type=float, default=0.9, help="futility: credibility")
    p.add_argument("--ci-prob", type=float, default=0.9, help="credible interval width")
    p.add_argument("--posterior-draws", dest="draws", type=int, default=None,
                   help="how many of the fit's posterior draws to use (default all)")
    p.add_argument("--chunk-size", type=int, default=10_000, help="patients per dask chunk")
    p.add_argument("--dask-scheduler", metavar="ADDRESS",
                   help="run the chunks on this dask.distributed scheduler (e.g. "
                        "tcp://10.0.0.5:8786) instead of this machine's threads")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--plot", metavar="PNG", help="also write a plot")
    p.add_argument("--force", action="store_true", help="replace an existing plot")
    p.set_defaults(handler=_scenarios)
