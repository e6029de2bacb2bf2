"""Calibration of the exposure-driven model over replicate cohorts with known truth.

Each replicate is a cohort from the independent generator ``tests/exposure_truth.py`` (its own
PK code; b_base -0.6, b_gain 1.2, 4,500 generated patients of whom about 1,050 have TL >= 3 and
are fitted, 5 centres), fitted with the default settings. Printed per replicate: posterior means
and SDs of ``b_base`` and ``b_gain``, the posterior probability below the truth (uniform over
replicates when calibrated) and the convergence gate; then the mean estimates against the truth
and the spread of the means against the mean posterior SD.

    .venv/bin/python benchmarks/coverage_exposure.py [--replicates 8]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

TRUTH = {"b_base": -0.6, "b_gain": 1.2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=8)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from exposure_truth import simulate_exposure_cohort

    import pkmodel

    rows = []
    for seed in range(100, 100 + args.replicates):
        frame, _ = simulate_exposure_cohort(4500, 5, **TRUTH, alpha=0.2, sigma_centre=0.3,
                                            sigma_patient=0.6, seed=seed,
                                            remission_tl="measured")
        fit = pkmodel.RemissionModel(exposure={"assume": {"immunomodulator": 0}}).fit(
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


if __name__ == "__main__":
    main()
