"""Benchmark: steady-state troughs of 1,000,000 virtual patients x 4 regimens, closed form vs ODE.

For every published model in ``pkmodel.pk.MODELS``, the closed form (geometric series of the
analytic infusion solution, vectorised with numpy) is timed on a million virtual patients
(covariates and between-subject variability drawn from the model) under four regimens. The
reference is what one would do without it: integrate the same two-compartment ODEs with scipy's
``solve_ivp`` (LSODA, rtol 1e-8) through 30 dosing intervals, piecewise between infusion starts
and stops, for a sample of patients; the per-patient times give the speed-up ratio. Both
methods' troughs are compared on the sample.

    .venv/bin/python benchmarks/bench_pk.py [--patients 1000000] [--ode-patients 10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.integrate import solve_ivp

from pkmodel.pk import MODELS, PopulationModel, Regimen, steady_state_troughs

REGIMENS = [Regimen(5, 8), Regimen(10, 8), Regimen(5, 6), Regimen(5, 4)]


def virtual_population(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"weight_kg": np.clip(rng.lognormal(np.log(75), 0.2, n), 40, 150),
            "albumin_g_dl": np.clip(rng.normal(4.0, 0.4, n), 2.0, 5.5),
            "female": (rng.random(n) < 0.4).astype(float),
            "ati": (rng.random(n) < 0.07).astype(float)}


def ode_trough(cl, v1, q, v2, dose_mg, regimen: Regimen, n_intervals: int = 30) -> float:
    tau, dur = regimen.interval_days, regimen.infusion_days
    rate = dose_mg / dur

    def rhs(t, y, r):
        return [r - (cl + q) / v1 * y[0] + q / v2 * y[1], q / v1 * y[0] - q / v2 * y[1]]

    y = np.zeros(2)
    for k in range(n_intervals):
        start = k * tau
        y = solve_ivp(rhs, (start, start + dur), y, args=(rate,), method="LSODA", rtol=1e-8,
                      atol=1e-10).y[:, -1]
        y = solve_ivp(rhs, (start + dur, start + tau), y, args=(0.0,), method="LSODA",
                      rtol=1e-8, atol=1e-10).y[:, -1]
    return y[0] / v1


def bench_model(model: PopulationModel, n: int, n_ode: int, seed: int) -> dict:
    """Closed-form seconds for ``n`` patients (best of 3), ODE seconds for ``n_ode``, accuracy."""
    rng = np.random.default_rng(seed)
    cov = {k: v for k, v in virtual_population(n, rng).items()
           if k in model.covariates_used or k == "weight_kg"}
    steady_state_troughs(model, REGIMENS, {k: v[:1000] for k, v in cov.items()}, n_draws=1,
                         random_seed=1)  # warm-up
    times = []
    for repeat in range(3):
        start = time.perf_counter()
        closed = steady_state_troughs(model, REGIMENS, cov, n_draws=1, random_seed=repeat)
        times.append(time.perf_counter() - start)
    # ODE reference on a sample of the same covariates with their own random effects; the
    # closed form is re-run on exactly those parameters for the accuracy check
    eta = model.sample_eta((n_ode, 1), np.random.default_rng(2))
    sample = {k: v[:n_ode] for k, v in cov.items()}
    params = model.individual_parameters(
        {k: v[:, None] for k, v in sample.items() if k in model.covariates_used}, eta)
    closed_sample = steady_state_troughs(model, REGIMENS, sample, eta=eta).values
    start = time.perf_counter()
    ode = np.empty_like(closed_sample)
    for i in range(n_ode):
        p = [float(np.broadcast_to(getattr(params, k), params.shape).ravel()[i])
             for k in ("cl", "v1", "q", "v2")]
        for r, reg in enumerate(REGIMENS):
            ode[r, i, 0] = ode_trough(*p, reg.dose_mg_kg * sample["weight_kg"][i], reg)
    ode_s = time.perf_counter() - start
    return {"closed_s": min(times), "ode_s": ode_s,
            "rel": float(np.max(np.abs(ode / closed_sample - 1))),
            "median": float(np.median(closed.sel(regimen="5 mg/kg q8w")))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--ode-patients", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"steady-state troughs of {args.patients:,} virtual patients x {len(REGIMENS)} "
          f"regimens ({', '.join(r.label for r in REGIMENS)}), with BSV; ODE reference "
          f"(scipy solve_ivp, LSODA, 30 doses) on {args.ode_patients} patients")
    print("| model | closed form, s (best of 3) | ODE s per patient | speed-up per patient | "
          "max rel. diff. vs ODE | median 5 mg/kg q8w trough, µg/mL |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for model in MODELS.values():
        r = bench_model(model, args.patients, args.ode_patients, args.seed)
        per_closed = r["closed_s"] / args.patients
        per_ode = r["ode_s"] / args.ode_patients
        print(f"| {model.name} | {r['closed_s']:.3f} | {per_ode:.2e} | "
              f"{per_ode / per_closed:,.0f} x | {r['rel']:.1e} | {r['median']:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
