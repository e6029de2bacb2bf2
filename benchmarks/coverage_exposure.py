"""Calibration of the exposure-driven model over replicate cohorts with known truth.

Each replicate is a cohort from the independent generator ``tests/exposure_truth.py`` (its own
PK code; b_base -0.6, b_gain 1.2, 5 centres). Three runs:

``recovery`` (the default): 4,500 generated patients of whom about 1,050 have TL >= 3 and are
fitted, with the default settings. Printed per replicate: posterior means and SDs of ``b_base``
and ``b_gain``, the posterior probability below the truth (uniform over replicates when
calibrated) and the convergence gate; then the mean estimates against the truth and the spread
of the means against the mean posterior SD.

``propagation``: the PK population itself is uncertain. Each replicate draws its true
population's typical values (CL, V1, Q, V2) log-normally around Fasanmade 2011's, log-SD
``--population-sd`` each, and generates its cohort from that population (every patient fitted,
whatever the trough, so that the cohorts keep their size); the fits use
Fasanmade 2011 as published, once with its population taken as known and once with
``population_draws`` = K models whose typical values are drawn from the same distribution (the
uncertainty the truth was drawn from; covariate effects, omegas and residual error as
published). Printed: per replicate, b_gain's posterior mean, SD and whether the 90% interval
covers the truth, for both; then the coverage, the root mean square of (mean - truth) / SD
(1 when calibrated) and the mean width of the 90% interval.

``sources``: one cohort; b_gain's 90% interval with the library model's population fixed, then
propagated with each kind of estimate drawn alone from its published RSEs or stated defaults
(:mod:`pkmodel.pk.published_uncertainty`: typical values, covariate coefficients, omega^2,
residual SDs) and with all of them: how much each source widens the interval.

    .venv/bin/python benchmarks/coverage_exposure.py [--replicates 8]
    .venv/bin/python benchmarks/coverage_exposure.py propagation [--replicates 8] [--k 4]
    .venv/bin/python benchmarks/coverage_exposure.py sources [--k 8]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

TRUTH = {"b_base": -0.6, "b_gain": 1.2}
ASSUME = {"immunomodulator": 0}
COHORT = {"alpha": 0.2, "sigma_centre": 0.3, "sigma_patient": 0.6, "remission_tl": "measured",
          "iov": True}  # the default PK model's inter-occasion variability on CL
PARAMETERS = ("cl", "v1", "q", "v2")


def recovery(args) -> None:
    """The default run: recovery of b_base and b_gain with the population known."""
    from exposure_truth import simulate_exposure_cohort

    import pkmodel

    rows = []
    for seed in range(100, 100 + args.replicates):
        frame, _ = simulate_exposure_cohort(4500, 5, **TRUTH, **COHORT, seed=seed)
        fit = pkmodel.RemissionModel(exposure={"assume": ASSUME}).fit(
            pkmodel.read_cohort(frame), random_seed=seed, progressbar=False)
        p = fit.posterior
        row = [float(p[v].mean()) for v in TRUTH] + [float(p[v].std()) for v in TRUTH]
        row += [float((p[v] < t).mean()) for v, t in TRUTH.items()]
        rows.append(row)
        print(f"seed {seed}: means {row[0]:.3f} {row[1]:.3f}, sds {row[2]:.3f} {row[3]:.3f}, "
              f"P(below truth) {row[4]:.2f} {row[5]:.2f}, gate {fit.diagnostics.converged}",
              flush=True)
    a = np.array(rows)
    for k, (v, t) in enumerate(TRUTH.items()):
        print(f"{v}: truth {t}, mean estimate {a[:, k].mean():.3f}, spread of estimates "
              f"{a[:, k].std(ddof=1):.3f} vs mean posterior SD {a[:, k + 2].mean():.3f}")


def _b_gain(fit) -> tuple[float, float, float, float]:
    """b_gain's posterior mean, SD and 90% interval."""
    draws = fit.posterior["b_gain"].values.ravel()
    lo, hi = np.quantile(draws, [0.05, 0.95])
    return float(draws.mean()), float(draws.std()), float(lo), float(hi)


def _fit(cohort, exposure: dict, args, seed: int):
    import pkmodel

    return pkmodel.RemissionModel(exposure={"assume": ASSUME, **exposure}).fit(
        cohort, draws=args.draws, tune=args.draws, chains=args.chains, random_seed=seed,
        progressbar=False)


def propagation(args) -> None:
    """Coverage of b_gain with the PK population fixed and propagated, when it is uncertain."""
    from exposure_truth import simulate_exposure_cohort

    import pkmodel
    from pkmodel.pk import get_model

    model = get_model("fasanmade2011")
    rng = np.random.default_rng(2026)
    draws = [dataclasses.replace(model, name=f"scaled{k}", aliases=(), typical={
        p: v * float(np.exp(args.population_sd * rng.standard_normal()))
        for p, v in model.typical.items()}) for k in range(args.k)]
    rows = {"fixed": [], "propagated": []}
    for seed in range(200, 200 + args.replicates):
        z = np.random.default_rng(seed).standard_normal(len(PARAMETERS))
        scale = dict(zip(PARAMETERS, np.exp(args.population_sd * z).tolist(), strict=True))
        frame, _ = simulate_exposure_cohort(args.patients, 5, **TRUTH, **COHORT, seed=seed,
                                            pk_scale=scale)
        # every patient fitted (no TL >= 3 rule): a slower true population leaves as many
        cohort = pkmodel.read_cohort(frame, min_tl_ug_ml=None)
        for name, exposure in (("fixed", {}), ("propagated", {"population_draws": draws})):
            start = time.perf_counter()
            fit = _fit(cohort, exposure, args, seed)
            mean, sd, lo, hi = _b_gain(fit)
            rows[name].append((mean, sd, lo, hi))
            print(f"seed {seed} {name}: {cohort.data['patient_id'].nunique()} patients, b_gain "
                  f"{mean:.3f} (SD {sd:.3f}, 90% {lo:.2f} to {hi:.2f}), covers "
                  f"{lo < TRUTH['b_gain'] < hi}, gate {fit.diagnostics.converged} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    t = TRUTH["b_gain"]
    for name, values in rows.items():
        a = np.array(values)
        cover = np.mean((a[:, 2] < t) & (t < a[:, 3]))
        rms = np.sqrt(np.mean(((a[:, 0] - t) / a[:, 1]) ** 2))
        print(f"{name}: 90% coverage {cover:.2f} over {len(a)} replicates, RMS z {rms:.2f}, "
              f"mean 90% width {np.mean(a[:, 3] - a[:, 2]):.3f}")


def sources(args) -> None:
    """b_gain's 90% interval with each source of the library model's uncertainty alone."""
    from exposure_truth import simulate_exposure_cohort

    import pkmodel
    from pkmodel.pk import get_model
    from pkmodel.pk.published_uncertainty import DEFAULT_RSE, published_model_draws

    model = get_model("fasanmade2011")
    frame, _ = simulate_exposure_cohort(args.patients, 5, **TRUTH, **COHORT, seed=300)
    cohort = pkmodel.read_cohort(frame)
    runs = {"fixed (published values)": {}}
    for kinds in [(k,) for k in DEFAULT_RSE] + [tuple(DEFAULT_RSE)]:
        label = "all" if len(kinds) > 1 else kinds[0]
        runs[f"propagated: {label}"] = {"population_draws": published_model_draws(
            model, args.k, random_seed=1, kinds=kinds)}
    base = None
    print(f"{cohort.data['patient_id'].nunique()} patients fitted, K = {args.k}")
    for label, exposure in runs.items():
        start = time.perf_counter()
        fit = _fit(cohort, exposure, args, 300)
        mean, sd, lo, hi = _b_gain(fit)
        base = base or hi - lo
        # the law of total variance over the draws: within (mean of the draws' variances) and
        # between (variance of the draws' means), the part the population's uncertainty adds
        per_draw = fit.posterior["b_gain"].values.reshape(max(fit.population_draws, 1), -1)
        within, between = np.mean(per_draw.var(axis=1)), np.var(per_draw.mean(axis=1))
        print(f"{label}: b_gain {mean:.3f}, SD {sd:.3f}, 90% interval {lo:.3f} to {hi:.3f}, "
              f"width {hi - lo:.3f} ({(hi - lo) / base:.2f} x fixed), within-draw SD "
              f"{np.sqrt(within):.3f}, between-draw SD {np.sqrt(between):.3f}, gate "
              f"{fit.diagnostics.converged} ({time.perf_counter() - start:.0f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", default="recovery",
                        choices=("recovery", "propagation", "sources"))
    parser.add_argument("--replicates", type=int, default=8)
    parser.add_argument("--k", type=int, default=8, help="population draws")
    parser.add_argument("--population-sd", type=float, default=0.3,
                        help="log-SD of the true population's typical values (propagation)")
    parser.add_argument("--patients", type=int, default=2000, help="generated per cohort")
    parser.add_argument("--draws", type=int, default=500, help="draws and tuning per chain")
    parser.add_argument("--chains", type=int, default=2)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    {"recovery": recovery, "propagation": propagation, "sources": sources}[args.run](args)


if __name__ == "__main__":
    main()
