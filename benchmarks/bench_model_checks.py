"""Speed of the model checks of a population fit (issue 27's targets).

* PSIS-LOO of a population fit of 60 subjects (leaving out subjects, and observations): < 5 s;
* ``pkmodel pk report`` of a fit of 100 subjects, per-subject plots included (9 pages): < 30 s;
* what the predictive groups (log likelihood per observation and per subject, replicates) add
  to the fit itself.

One fit of each size (the specification of tests/test_pk_population.py, 2 chains x 500 draws;
not meant to pass the gate, only to be timed). Usage::

    .venv/bin/python benchmarks/bench_model_checks.py
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_pk_population import SAMPLES_DAYS, SPEC_TOML, TRUTH  # noqa: E402

from pkmodel.cli.main import main  # noqa: E402
from pkmodel.pk.population import fit_population, read_spec, simulate_dataset  # noqa: E402
from pkmodel.pk.population.comparison import loo  # noqa: E402
from pkmodel.pk.population.likelihood import predictive_groups  # noqa: E402


def _fit(spec, n_subjects: int):
    sim = simulate_dataset(spec, TRUTH, n_subjects=n_subjects, dose_times_days=[0, 14],
                           sample_times_days=SAMPLES_DAYS, dose_mg_kg=5, random_seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        fit = fit_population(sim.frame, spec, draws=500, tune=500, chains=2, random_seed=1)
    return fit, time.perf_counter() - start


def main_() -> None:
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "model.toml").write_text(SPEC_TOML, encoding="utf-8")
        spec = read_spec(folder / "model.toml")
        fit, seconds = _fit(spec, 60)
        start = time.perf_counter()
        predictive_groups(spec, fit.data, fit.posterior, 1)
        groups = time.perf_counter() - start
        print(f"fit of 60 subjects: {seconds:.1f} s, of which the predictive groups "
              f"{groups:.1f} s")
        for level in ("subject", "observation"):
            start = time.perf_counter()
            loo(fit, level)
            print(f"LOO of 60 subjects, leaving out one {level} at a time: "
                  f"{time.perf_counter() - start:.2f} s (target < 5 s)")
        fit, seconds = _fit(spec, 100)
        fit.save(folder / "popfit.nc")
        start = time.perf_counter()
        main(["pk", "report", str(folder / "popfit.nc"), "-o", str(folder / "report.html")])
        print(f"pk report of 100 subjects (9 pages of subjects): "
              f"{time.perf_counter() - start:.1f} s (target < 30 s)")


if __name__ == "__main__":
    main_()
