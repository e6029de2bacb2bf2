"""Calibration of the default remission model over replicates of simulated cohorts.

Run from the repository root:

    .venv/bin/python benchmarks/coverage_remission.py [--sizes 500 2000] [--replicates 20]

For each size, ``--replicates`` cohorts are simulated with
:func:`pkmodel.response.simulation.simulate_cohort` (3 centres, TL above 10 µg/mL reported as
``>10``, about a fifth of TLs; replicate r draws its truth from a small set of truths:
strategy-specific slopes or not, weak or strong patient effect) and fitted with the default
settings (``RemissionModel().fit(cohort, random_seed=r)``: 4 chains x 1000 + 1000). Reported
per size: how many fits passed the convergence gate, and for each parameter how many 90%
equal-tailed intervals covered the truth, with a 95% Clopper-Pearson interval for the coverage
(a calibrated model covers 90%). Each replicate runs in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

TRUTHS = (  # (b_slope_strategy, sigma_patient, sigma_group)
    ((0.0, 0.0), 0.8, 0.4),
    ((0.0, 0.6), 0.8, 0.4),
    ((0.0, 0.0), 1.5, 0.6),
    ((0.0, 0.6), 0.3, 0.2),
)


def one_replicate(n_patients: int, replicate: int) -> dict:
    """Simulate, fit and score one cohort."""
    import warnings

    import numpy as np

    import pkmodel
    from pkmodel.response.simulation import TrueParameters, simulate_cohort

    slopes, sigma_patient, sigma_group = TRUTHS[replicate % len(TRUTHS)]
    truth = TrueParameters(b_slope_strategy=slopes, sigma_patient=sigma_patient,
                           sigma_group=sigma_group)
    cohort, effects = simulate_cohort(n_patients, 3, truth, upper_limit_ug_ml=10.0,
                                      random_seed=10_000 * n_patients + replicate,
                                      return_effects=True)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pkmodel.RemissionModel().fit(cohort, random_seed=replicate, progressbar=False)
    seconds = time.perf_counter() - start
    post = fit.posterior
    targets = {"mu_tl": (post["mu_tl"], truth.mu_tl),
               "sigma_tl": (post["sigma_tl"], truth.sigma_tl),
               "tau_month": (post["tau_month"], truth.tau_month[1]),
               "delta_strategy": (post["delta_strategy"], truth.delta_strategy[1]),
               "sigma_patient": (post["sigma_patient"], truth.sigma_patient)}
    for k, strategy in enumerate(truth.strategies):
        targets[f"slope[{k}]"] = (post["beta"] + post["b_slope_strategy"].sel(strategy=strategy),
                                  truth.beta + truth.b_slope_strategy[k])
    for c in range(3):
        targets[f"intercept[c{c}]"] = (post["alpha"] + post["a_group"].sel(group=f"c{c}"),
                                       truth.alpha + effects["a_group"][c])
    covered = {}
    for name, (draws, value) in targets.items():
        lo, hi = np.quantile(draws.values.ravel(), [0.05, 0.95])
        covered[name] = bool(lo <= value <= hi)
    d = fit.diagnostics
    return {"converged": d.converged, "divergences": d.divergences, "seconds": seconds,
            "covered": covered}


def _clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    from scipy.stats import beta

    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[500, 2000])
    parser.add_argument("--replicates", type=int, default=20)
    parser.add_argument("--one", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one_replicate(*args.one)))
        return
    for n in args.sizes:
        results = []
        for r in range(args.replicates):
            out = subprocess.run([sys.executable, __file__, "--one", str(n), str(r)],
                                 capture_output=True, text=True)
            if out.returncode:
                raise RuntimeError(f"size {n} replicate {r} failed:\n{out.stderr[-3000:]}")
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        passed = sum(r["converged"] for r in results)
        divergences = sum(r["divergences"] for r in results)
        seconds = sorted(r["seconds"] for r in results)
        print(f"\n{n:,} patients, 3 centres, {len(results)} replicates: {passed} passed the "
              f"gate, {divergences} divergences in all, fit time median "
              f"{seconds[len(seconds) // 2]:.0f} s")
        print("| parameter | 90% intervals covering the truth | coverage (95% CI) |")
        print("| --- | ---: | ---: |")
        names = list(results[0]["covered"])
        total_k = total_n = 0
        for name in names:
            k = sum(r["covered"][name] for r in results)
            total_k, total_n = total_k + k, total_n + len(results)
            lo, hi = _clopper_pearson(k, len(results))
            print(f"| {name} | {k} / {len(results)} | {k / len(results):.2f} "
                  f"({lo:.2f}-{hi:.2f}) |")
        lo, hi = _clopper_pearson(total_k, total_n)
        print(f"| all (not independent) | {total_k} / {total_n} | {total_k / total_n:.2f} "
              f"({lo:.2f}-{hi:.2f}) |", flush=True)


if __name__ == "__main__":
    main()
