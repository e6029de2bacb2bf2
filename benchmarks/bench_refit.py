"""Refit of a new cohort of the same design: warm same-data fit vs refit, in whole processes.

Run from the repository root:

    .venv/bin/python benchmarks/bench_refit.py [--repeats 2]

Each refit's cohort is the shipped one bootstrap-resampled by patient with new ids (a new
resample per repeat: the first seed from ``100 * repeat`` whose resample keeps both centres and
both strategies, the same shape). Every run is a fresh
Python process (import, design, compile or cache load, 4 chains x 1000 tuning + 1000 draws),
the modes alternating, with one shared, first empty, ``PKMODEL_CACHE_DIR``:

* ``warm``: the shipped cohort again, after an untimed fit of it filled the cache;
* ``refit``: the resampled cohort; the latent-TL model (``integrate_tl=False``) compiles it
  (its key covers the data), the integrated one (``integrate_tl=True``) loads the model
  compiled for the shipped cohort and points it at the new data.

It also fits the resampled cohort with the integrated model in a process with an empty cache
(a fresh compile on those data) and checks that its draws equal the refit's, draw for draw.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

FIT = """
import json, sys, time
import numpy as np, pandas as pd, pkmodel
integrate, which = sys.argv[1] == "1", sys.argv[2]
cohort = pkmodel.load_ungar2019()
if which.startswith("boot"):
    d = cohort.data
    ids = d["patient_id"].unique()
    for seed in range(100 * int(which[5:]), 100 * int(which[5:]) + 100):
        picks = np.random.default_rng(seed).choice(ids, size=ids.size, replace=True)
        boot = pd.concat([d[d["patient_id"] == p].assign(patient_id=f"boot{i}")
                          for i, p in enumerate(picks)], ignore_index=True)
        if boot["center"].nunique() == d["center"].nunique() and (
                boot["strategy"].nunique() == d["strategy"].nunique()):
            break
    cohort = pkmodel.read_cohort(boot)
fit = pkmodel.RemissionModel(integrate_tl=integrate).fit(cohort, random_seed=1,
                                                         progressbar=False)
if len(sys.argv) > 3:
    fit.posterior[["alpha", "beta", "mu_tl", "sigma_tl"]].to_netcdf(sys.argv[3])
print(json.dumps({"divergences": fit.diagnostics.divergences,
                  "converged": fit.diagnostics.converged}))
"""


def run(args: list[str], cache: str) -> tuple[float, dict]:
    """Wall time of one fit in a fresh interpreter, and the JSON it prints last."""
    env = dict(os.environ, PKMODEL_CACHE_DIR=cache)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", FIT, *args], env=env, capture_output=True,
                         text=True, check=True)
    return time.perf_counter() - start, json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    opts = parser.parse_args()
    import xarray as xr

    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "cache")
        for integrate in ("0", "1"):
            seconds, _ = run([integrate, "shipped"], cache)  # fills the cache (untimed)
            times[(integrate, "cold")] = [seconds]
        for repeat in range(opts.repeats):
            for integrate in ("0", "1"):
                for mode, cohort in (("warm", "shipped"), ("refit", f"boot:{repeat}")):
                    seconds, _ = run([integrate, cohort], cache)
                    times.setdefault((integrate, mode), []).append(seconds)
        served = os.path.join(tmp, "served.nc")
        fresh = os.path.join(tmp, "fresh.nc")
        run(["1", "boot:0", served], cache)
        run(["1", "boot:0", fresh], os.path.join(tmp, "empty"))
        same = xr.open_dataset(served).load().equals(xr.open_dataset(fresh).load())

    def med(key):
        return statistics.median(times[key])

    print("seconds per whole-process fit (median of", opts.repeats, "runs; cold: one run)")
    for integrate, label in (("0", "latent TL (default)"), ("1", "integrate_tl=True")):
        cold, warm, refit = med((integrate, "cold")), med((integrate, "warm")), \
            med((integrate, "refit"))
        print(f"{label:22s} cold {cold:6.1f}  warm {warm:6.1f}  refit {refit:6.1f}  "
              f"refit/warm {refit / warm:4.2f}")
    print(f"integrated refit / latent refit: {med(('1', 'refit')) / med(('0', 'refit')):.2f}")
    print(f"integrated warm / latent warm: {med(('1', 'warm')) / med(('0', 'warm')):.2f}")
    print(f"refit draws equal to a fresh compile's (same seed): {same}")


if __name__ == "__main__":
    main()
