"""Benchmark: the exposure-driven fit with TDM histories (the two-stage approach), in one run.

A cohort from the independent generator (``tests/exposure_truth.py``: the default PK model's
between-subject and inter-occasion variability, truth ``b_base`` -0.6, ``b_gain`` 1.2), about
1,000 fitted patients with exactly three troughs each in their histories. Times, in one run:

- the exposure gains of the cohort from one trough each (importance sampling from the prior at
  steady state) and from the histories (each patient's posterior mode and importance
  resampling under the actual doses), as a ratio;
- the whole fit with histories at the default settings (4 chains x 1,000 draws), with its
  convergence gate and the posterior of ``b_base`` and ``b_gain`` against the truth.

Target (issue "trough histories"): the two-stage fit of 1,000 patients with 3 troughs < 2 min.

    .venv/bin/python benchmarks/bench_exposure_history.py [--generated 4000] [--seed 31]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

TRUTH = {"b_base": -0.6, "b_gain": 1.2}
COHORT = {"alpha": 0.2, "sigma_centre": 0.3, "sigma_patient": 0.6, "remission_tl": "measured",
          "iov": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=int, default=4000,
                        help="patients generated (about a quarter are fitted)")
    parser.add_argument("--seed", type=int, default=31)
    args = parser.parse_args()
    from exposure_truth import simulate_exposure_cohort

    import pkmodel
    from pkmodel.response.design import build_design
    from pkmodel.response.exposure import Exposure

    frame, truth = simulate_exposure_cohort(args.generated, 5, **TRUTH, **COHORT, seed=args.seed,
                                            history_troughs=(3, 3))
    cohort = pkmodel.read_cohort(frame)
    n = cohort.data["patient_id"].nunique()
    assume = {"immunomodulator": 0}
    t0 = time.perf_counter()
    one = build_design(cohort, (), "center", None, exposure=Exposure(assume=assume))
    t_one = time.perf_counter() - t0
    spec = Exposure(assume=assume, history=truth["history"])
    t0 = time.perf_counter()
    hist = build_design(cohort, (), "center", None, exposure=spec)
    t_hist = time.perf_counter() - t0
    print(f"patients fitted: {n}, troughs per patient: "
          f"{hist.exposure['history']['troughs_per_patient']}")
    print(f"gains from one trough each:      {t_one:8.1f} s")
    print(f"gains from the histories:        {t_hist:8.1f} s  ({t_hist / t_one:.0f} x)")
    print(f"mean posterior SD of log gain:   one trough {np.mean(one.log_gain_sd):.3f}, "
          f"histories {np.mean(hist.log_gain_sd):.3f}")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pkmodel.RemissionModel(exposure=spec).fit(cohort, random_seed=1,
                                                        progressbar=False)
    t_fit = time.perf_counter() - t0
    post = fit.posterior
    print(f"whole fit with histories:        {t_fit:8.1f} s  (target < 120 s), gate "
          f"{'passed' if fit.diagnostics.converged else 'FAILED'}")
    for var, true in TRUTH.items():
        lo, med, hi = np.quantile(post[var].values, [0.05, 0.5, 0.95])
        print(f"{var}: median {med:.3f}, 90% interval {lo:.3f} to {hi:.3f} (truth {true})")


if __name__ == "__main__":
    main()
